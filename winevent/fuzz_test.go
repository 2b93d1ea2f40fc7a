package winevent

import (
	"strings"
	"testing"

	"github.com/ruledex/ruledex/rule"
)

// FuzzCoverage feeds arbitrary log sources, table names, data sources and pinned
// values through Route, RouteRule, Coverage and AbsentFields: nothing may panic, every
// row must name a provider and an event, and a field is claimed absent only from Sysmon
// events. Seeds are spellings from the real corpora.
func FuzzCoverage(f *testing.F) {
	seeds := []struct{ cat, svc, table, ds, field, value string }{
		{"process_creation", "", "", "", "NewProcessName", `\bitsadmin.exe`},
		{"", "security", "", "", "EventID", "4688"},
		{"", "system", "", "", "Provider_Name", "Service Control Manager"},
		{"registry_set", "", "", "", "Details", "DWORD (0x00000001)"},
		{"", "", "DeviceProcessEvents", "", "FileName", "bitsadmin.exe"},
		{"", "", "_Im_ProcessCreate", "", "TargetProcessName", "x"},
		{"", "", "DeviceEvents", "", "ActionType", "NamedPipeEvent"},
		{"", "", "SecurityEvent", "", "EventID", "4624"},
		{"", "", "", "Sysmon EventID 1 AND Windows Event Log Security 4688", "process_name", "x"},
		{"", "", "", "NTLM Operational 8004,8005,8006", "", ""},
		{"pipe_created", "sysmon", "Event", "Windows Event Log Defender 1121", "EventID", "-1"},
		{"network_connection", "", "", "", "CommandLine", "python"}, // absent from Sysmon 3
	}
	for _, s := range seeds {
		f.Add(s.cat, s.svc, s.table, s.ds, s.field, s.value)
	}
	c := catalog(f)
	f.Fuzz(func(t *testing.T, cat, svc, table, ds, field, value string) {
		ls := rule.LogSource{Product: "windows", Category: cat, Service: svc}
		root := pred(field, rule.Eq, value)
		for _, r := range []*rule.Rule{
			sigmaRule(ls, root),
			pipeline(rule.Kusto, rule.LogSource{Tables: []string{table}}, root),
			pipeline(rule.Splunk, rule.LogSource{DataSources: []string{ds}, DataModels: []string{table}}, root),
		} {
			_ = c.Route(r.LogSource)
			_ = c.RouteRule(r)
			for _, row := range c.Coverage(r) {
				if row.Provider == "" || (row.Known && row.Title == "") {
					t.Fatalf("bad row %+v for %+v", row, r.LogSource)
				}
			}
			// A field is absent only from Sysmon events, and only one the rule tests.
			for _, a := range c.AbsentFields(r) {
				if a.Field != field || len(a.Events) == 0 {
					t.Fatalf("absent %+v for a rule testing %q", a, field)
				}
				for _, e := range a.Events {
					if !strings.HasPrefix(e, sysmonProvider+" ") {
						t.Fatalf("absent %q claimed of %s", a.Field, e)
					}
				}
			}
		}
	})
}
