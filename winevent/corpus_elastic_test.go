package winevent

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/lang/elastic"
)

// Elastic rules route by the log source their parser derives and test ECS fields through
// their canonical names (issue 10 §5: a process start covers Sysmon 1 and 4688, explicit
// event codes pin the events).
func TestCoverageElasticCorpus(t *testing.T) {
	c := catalog(t)
	tests := []struct {
		name string
		path []string
		want []string
	}{
		// process where event.type == "start" testing process.name and process.args, which
		// 4688 carries as NewProcessName and CommandLine.
		{"process start", []string{"rules_building_block", "command_and_control_bitsadmin_activity.toml"}, []string{sysmon1, sec4688}},
		// ?process.pe.original_file_name is OriginalFileName, which 4688 lacks.
		{"original file name", []string{"rules", "windows", "collection_winrar_encryption.toml"}, []string{sysmon1}},
		// any where event.code == "4738": the event code pins the event.
		{"event code", []string{"rules", "windows", "credential_access_disable_kerberos_preauth.toml"},
			[]string{"Microsoft-Windows-Security-Auditing 4738 A user account was changed."}},
		// A Linux rule names no Windows event.
		{"linux", []string{"rules", "linux", "impact_esxi_process_kill.toml"}, nil},
	}
	for _, tc := range tests {
		path := corpustest.Path(t, append([]string{"elastic", "detection-rules"}, tc.path...)...)
		r := parseWith(t, elastic.Parser{}, path)[0]
		if d := cmp.Diff(tc.want, rows(c.Coverage(r))); d != "" {
			t.Errorf("%s (-want +got):\n%s\nlog source %+v", tc.name, d, r.LogSource)
		}
	}
}
