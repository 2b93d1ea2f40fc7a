package winevent

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/lang/sigma"
	"github.com/ruledex/ruledex/rule"
)

// TestAbsentFields: on real corpus rules, the fields none of the Sysmon events a rule
// reads carries, and silence where the data cannot vouch for that (or every field is
// carried somewhere, even when no one event carries them all).
func TestAbsentFields(t *testing.T) {
	c := catalog(t)
	tests := []struct {
		path   []string
		absent []string // field: events
	}{
		// The rule's own comment: "Sysmon EID 3 doesn't contain CommandLine nor ParentImage".
		{[]string{"sigmahq", "rules", "windows", "network_connection", "net_connection_win_python.yml"},
			[]string{"CommandLine: Microsoft-Windows-Sysmon 3", "ParentImage: Microsoft-Windows-Sysmon 3"}},
		// SigmaHQ keeps it under unsupported/: Sysmon 6 has no ImagePath.
		{[]string{"sigmahq", "unsupported", "windows", "driver_load_invoke_obfuscation_clip+_services.yml"},
			[]string{"ImagePath: Microsoft-Windows-Sysmon 6"}},
		// Not Sysmon's: EventData is not a field of Security 4688 in the event data, but
		// the data holds old versions of some Security events, so it is not claimed.
		{[]string{"mdecrevoisier", "windows-defender", "defender-critical security components disabled (command).yaml"}, nil},
		// Pins Sysmon's 12-14 (registry_event) and tests Security 4657's NewProcessName:
		// Sysmon's registry events call it Image.
		{[]string{"mdecrevoisier", "windows-os", "win-os-netsh helper DLL registration abuse (Reg via Sysmon).yaml"},
			[]string{"NewProcessName: Microsoft-Windows-Sysmon 12, Microsoft-Windows-Sysmon 13, Microsoft-Windows-Sysmon 14"}},
		// A service the event data does not map (IIS configuration) pinning ID 29: that
		// Sysmon has an event 29 is a coincidence, not the rule's event.
		{[]string{"sigmahq", "rules", "windows", "builtin", "iis-configuration", "win_iis_module_added.yml"}, nil},
		// Every field is Sysmon 1's (or 4688's, renamed).
		{[]string{"sigmahq", "rules", "windows", "process_creation", "proc_creation_win_bitsadmin_download.yml"}, nil},
		// Two pinned events, each with its own fields: no single event has all, but each
		// field is carried by one of them, so nothing is absent.
		{[]string{"mdecrevoisier", "windows-active_directory", "win-ad-netsync attack.yaml"}, nil},
	}
	for _, tt := range tests {
		name := tt.path[len(tt.path)-1]
		t.Run(name, func(t *testing.T) {
			p := corpustest.Path(t, append([]string{"sigma"}, tt.path...)...)
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			rules, _ := sigma.Parser{}.Parse(rule.Source{Repo: "corpus", Path: p}, data)
			if len(rules) != 1 {
				t.Fatalf("%d rules", len(rules))
			}
			var got []string
			for _, a := range c.AbsentFields(rules[0]) {
				got = append(got, a.Field+": "+strings.Join(a.Events, ", "))
			}
			if !slices.Equal(got, tt.absent) {
				t.Errorf("absent %q, want %q", got, tt.absent)
			}
		})
	}
}
