package engine

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/lang/kql"
	"github.com/ruledex/ruledex/rule"
	"github.com/ruledex/ruledex/winevent"
)

// A KQL rule runs on Windows events through the field map: Defender's FileName is the
// file name of Sysmon's Image (4688's NewProcessName), ProcessCommandLine is
// CommandLine, and `has` is a term test. The rule is m365-defender's "Backup deletion".
func TestKQLRuleOnWindowsEvents(t *testing.T) {
	dir := corpustest.Dir(t)
	path := filepath.Join(dir, "kql", "m365-defender", "Ransomware", "Backup deletion.md")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rules, _ := kql.Parser{}.Parse(rule.Source{Repo: "kql", Path: "Backup deletion.md"}, data)
	if len(rules) != 1 {
		t.Fatalf("parsed %d rules", len(rules))
	}
	cat, err := winevent.Load(corpustest.Path(t, "events"))
	if err != nil {
		t.Fatal(err)
	}
	m, skipped := Compile(rules, Options{Router: CatalogRouter{Catalog: cat}})
	if len(skipped) > 0 {
		t.Fatalf("skipped: %s", skipped[0].Reason)
	}
	sysmon := func(image, cmd string) []string {
		return []string{"Channel", "Microsoft-Windows-Sysmon/Operational", "EventID", "1", "Image", image, "CommandLine", cmd}
	}
	tests := []struct {
		name string
		kv   []string
		want bool
		via  string
	}{
		{"Sysmon 1", sysmon(`C:\Windows\System32\wbem\WMIC.exe`, "wmic shadowcopy delete /nointeractive"), true, ""},
		{"has is a term test", sysmon(`C:\Windows\System32\wbem\WMIC.exe`, "wmic shadowcopies delete"), false, ""},
		{"FileName is the file name, not a suffix", sysmon(`C:\x\notwmic.exe`, "wmic shadowcopy delete"), false, ""},
		{"Security 4688 names", []string{"Channel", "Security", "EventID", "4688", "NewProcessName", `C:\Windows\System32\wbem\WMIC.exe`,
			"CommandLine", "wmic shadowcopy delete"}, true, "Security 4688"},
		{"Sysmon 3 is not a process event", []string{"Channel", "Microsoft-Windows-Sysmon/Operational", "EventID", "3",
			"Image", `C:\Windows\System32\wbem\WMIC.exe`, "CommandLine", "wmic shadowcopy delete"}, false, ""},
		{"Defender-style JSON keeps its own names", []string{"FileName", "wmic.exe", "ProcessCommandLine", "wmic shadowcopy delete"}, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := m.Match(ev(tc.kv...), nil)
			if got := len(out) == 1; got != tc.want {
				t.Fatalf("matched %v, want %v", got, tc.want)
			}
			if tc.want && out[0].Via != tc.via {
				t.Errorf("via %q, want %q", out[0].Via, tc.via)
			}
		})
	}
}
