package winevent

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/lang/sigma"
	"github.com/ruledex/ruledex/rule"
)

// parseSigma parses one real corpus file with the Sigma parser.
func parseSigma(t testing.TB, elem ...string) *rule.Rule {
	t.Helper()
	p := corpustest.Path(t, append([]string{"sigma"}, elem...)...)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	rules, diags := sigma.Parser{}.Parse(rule.Source{Repo: "test", Path: filepath.Base(p)}, data)
	if len(rules) != 1 || len(diags) > 0 {
		t.Fatalf("%s: %d rules, diags %v", p, len(rules), diags)
	}
	return rules[0]
}

// rows renders coverage as "Provider EventID Title" lines for compact comparison.
func rows(rs []CoverageRow) []string {
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%s %d %s", r.Provider, r.EventID, r.Title))
	}
	return out
}

const (
	sysmon1  = "Microsoft-Windows-Sysmon 1 Process Create"
	sec4688  = "Microsoft-Windows-Security-Auditing 4688 A new process has been created."
	sysmon17 = "Microsoft-Windows-Sysmon 17 Pipe Created"
	sysmon18 = "Microsoft-Windows-Sysmon 18 Pipe Connected"
)

func TestCoverageSigmaCorpus(t *testing.T) {
	c := catalog(t)
	tests := []struct {
		name string
		path []string
		want []string
	}{
		// The seed tests NewProcessName, which Sysmon 1 lacks: only the native event fits.
		{"seed", []string{"mdecrevoisier", "windows-bits", "win-os-BITS abuse for payload download (command).yaml"}, []string{sec4688}},
		// Image, CommandLine and ParentImage all exist in 4688 after renaming.
		{"Image/CommandLine/ParentImage", []string{"sigmahq", "rules", "windows", "process_creation", "proc_creation_win_cmd_sticky_key_like_backdoor_execution.yml"},
			[]string{sysmon1, sec4688}},
		// OriginalFileName has no 4688 counterpart.
		{"OriginalFileName", []string{"sigmahq", "rules", "windows", "process_creation", "proc_creation_win_bitsadmin_download.yml"}, []string{sysmon1}},
		{"pipe_created", []string{"sigmahq", "rules", "windows", "pipe_created", "pipe_created_adfs_namedpipe_connection_uncommon_tool.yml"},
			[]string{sysmon17, sysmon18}},
	}
	for _, tc := range tests {
		r := parseSigma(t, tc.path...)
		if d := cmp.Diff(tc.want, rows(c.Coverage(r))); d != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, d)
		}
	}
}

// Hand-built IR for forms the tests need exactly.
func pred(field string, kind rule.Kind, vals ...string) *rule.Node {
	p := &rule.Pred{Field: field, Kind: kind}
	for _, v := range vals {
		p.Values = append(p.Values, rule.Value{S: v})
	}
	return rule.Leaf(p)
}

func sigmaRule(ls rule.LogSource, root *rule.Node) *rule.Rule {
	return &rule.Rule{Language: rule.Sigma, LogSource: ls, Root: root,
		Stages: []rule.Stage{{Index: 1, Kind: rule.StageSelection, Label: "selection", Node: root}}}
}

// pipeline builds a KQL/SPL-like rule: predicates live only in stage nodes.
func pipeline(lang rule.Language, ls rule.LogSource, stages ...*rule.Node) *rule.Rule {
	r := &rule.Rule{Language: lang, LogSource: ls}
	r.Stages = append(r.Stages, rule.Stage{Index: 0, Kind: rule.StageCondition})
	for i, n := range stages {
		r.Stages = append(r.Stages, rule.Stage{Index: i + 1, Kind: rule.StagePipeline, Op: "where", Node: n})
	}
	return r
}

func TestCoverageForms(t *testing.T) {
	c := catalog(t)
	win := func(cat, svc string) rule.LogSource {
		return rule.LogSource{Product: "windows", Category: cat, Service: svc}
	}
	tests := []struct {
		name string
		r    *rule.Rule
		want []string
	}{
		{"keyword-only", sigmaRule(win("process_creation", ""), pred("", rule.Keyword, "mimikatz")), nil},
		{"product-only", sigmaRule(win("", ""), pred("CommandLine", rule.Match, "x")), nil},
		{"service without EventID", sigmaRule(win("", "security"), pred("ObjectName", rule.Match, "x")), nil},
		{"service security pins 4624 and 4625", sigmaRule(win("", "security"),
			rule.And(rule.Or(pred("EventID", rule.Eq, "4624"), pred("EventID", rule.Eq, "4625")), pred("LogonType", rule.Eq, "3"))),
			[]string{"Microsoft-Windows-Security-Auditing 4624 An account was successfully logged on.",
				"Microsoft-Windows-Security-Auditing 4625 An account failed to log on."}},
		{"1102 belongs to Eventlog", sigmaRule(win("", "security"), pred("EventID", rule.Eq, "1102")),
			[]string{"Microsoft-Windows-Eventlog 1102 The audit log was cleared."}},
		{"negated EventID is not a pin", sigmaRule(win("process_creation", ""),
			rule.And(pred("Image", rule.EndsW, `\x.exe`), rule.Not(pred("EventID", rule.Eq, "4688")))), []string{sysmon1, sec4688}},
		{"system + Provider_Name + EventID", sigmaRule(win("", "system"),
			rule.And(pred("Provider_Name", rule.Eq, "Service Control Manager"), pred("EventID", rule.Eq, "7045"), pred("ImagePath", rule.Match, "x"))),
			[]string{"Service Control Manager 7045 A service was installed in the system."}},
		{"pinned ID unknown to the data", sigmaRule(win("", "system"),
			rule.And(pred("Provider_Name", rule.Eq, "Service Control Manager"), pred("EventID", rule.Eq, "7036"))),
			[]string{"Service Control Manager 7036 "}},
		{"product windows + unique EventID", sigmaRule(win("", ""), pred("EventID", rule.Eq, "4104")),
			[]string{"Microsoft-Windows-PowerShell 4104 Creating Scriptblock text (script block logging)"}},
		{"registry_set Details", sigmaRule(win("registry_set", ""), rule.And(pred("TargetObject", rule.Match, `\Run\`), pred("Details", rule.Match, "x"))),
			[]string{"Microsoft-Windows-Sysmon 13 Registry value set", "Microsoft-Windows-Security-Auditing 4657 A registry value was modified."}},
		{"registry_event NewName picks 14", sigmaRule(win("registry_event", ""), pred("NewName", rule.Match, "x")),
			[]string{"Microsoft-Windows-Sysmon 14 Registry object renamed"}},
		{"network_connection Initiated", sigmaRule(win("network_connection", ""), rule.And(pred("Initiated", rule.Eq, "true"), pred("DestinationPort", rule.Eq, "4444"))),
			[]string{"Microsoft-Windows-Sysmon 3 Network connection detected", "Microsoft-Windows-Security-Auditing 5156 The Windows Filtering Platform has permitted a connection."}},
		{"unknown field keeps the logsource candidates", sigmaRule(win("process_creation", ""), pred("NoSuchField", rule.Eq, "x")), []string{sysmon1}},
		{"ps_script: PowerShellCore borrows the title", sigmaRule(win("ps_script", ""), pred("ScriptBlockText", rule.Match, "x")), []string{
			"Microsoft-Windows-PowerShell 4104 Creating Scriptblock text (script block logging)",
			"PowerShellCore 4104 Creating Scriptblock text (script block logging)"}},
		{"hash part", sigmaRule(win("image_load", ""), pred("Imphash", rule.Eq, "abc")), []string{"Microsoft-Windows-Sysmon 7 Image loaded"}},

		// KQL: the parser puts tables in LogSource.Tables and where-clauses in stages.
		{"DeviceProcessEvents", pipeline(rule.Kusto, rule.LogSource{Tables: []string{"DeviceProcessEvents"}},
			rule.And(pred("FileName", rule.Eq, "bitsadmin.exe"), pred("ProcessCommandLine", rule.Match, "/transfer"))), []string{sysmon1, sec4688}},
		{"DeviceProcessEvents OriginalFileName", pipeline(rule.Kusto, rule.LogSource{Tables: []string{"DeviceProcessEvents"}},
			pred("ProcessVersionInfoOriginalFileName", rule.Eq, "bitsadmin.exe")), []string{sysmon1}},
		{"SecurityEvent EventID 4688", pipeline(rule.Kusto, rule.LogSource{Tables: []string{"SecurityEvent"}},
			pred("EventID", rule.Eq, "4688"), pred("CommandLine", rule.Match, "x")), []string{sec4688}},
		{"SecurityEvent in", pipeline(rule.Kusto, rule.LogSource{Tables: []string{"SecurityEvent"}},
			pred("EventID", rule.In, "4624", "4625")), []string{"Microsoft-Windows-Security-Auditing 4624 An account was successfully logged on.",
			"Microsoft-Windows-Security-Auditing 4625 An account failed to log on."}},
		{"SecurityEvent without EventID", pipeline(rule.Kusto, rule.LogSource{Tables: []string{"SecurityEvent"}}, pred("Account", rule.Match, "x")), nil},
		{"imProcessCreate", pipeline(rule.Kusto, rule.LogSource{Tables: []string{"imProcessCreate"}}, pred("TargetProcessName", rule.EndsW, "x")), []string{sysmon1, sec4688}},
		{"_Im_ProcessCreate original name", pipeline(rule.Kusto, rule.LogSource{Tables: []string{"_Im_ProcessCreate"}}, pred("TargetProcessFileOriginalName", rule.Eq, "x")), []string{sysmon1}},
		{"imAuthentication", pipeline(rule.Kusto, rule.LogSource{Tables: []string{"imAuthentication"}}, pred("EventResult", rule.Eq, "Failure")),
			[]string{"Microsoft-Windows-Security-Auditing 4624 An account was successfully logged on.", "Microsoft-Windows-Security-Auditing 4625 An account failed to log on."}},
		{"Event table", pipeline(rule.Kusto, rule.LogSource{Tables: []string{"Event"}},
			rule.And(pred("Source", rule.Eq, "Microsoft-Windows-Sysmon"), pred("EventID", rule.Eq, "1"))), []string{sysmon1}},
		{"DeviceEvents named pipes", pipeline(rule.Kusto, rule.LogSource{Tables: []string{"DeviceEvents"}},
			rule.And(pred("ActionType", rule.Eq, "NamedPipeEvent"), pred("FileName", rule.Match, "x"))), []string{sysmon17, sysmon18}},
		{"DeviceEvents task family", pipeline(rule.Kusto, rule.LogSource{Tables: []string{"DeviceEvents"}},
			pred("ActionType", rule.StartsW, "ScheduledTask")), []string{
			"Microsoft-Windows-Security-Auditing 4698 A scheduled task was created.",
			"Microsoft-Windows-Security-Auditing 4699 A scheduled task was deleted.",
			"Microsoft-Windows-Security-Auditing 4700 A scheduled task was enabled.",
			"Microsoft-Windows-Security-Auditing 4701 A scheduled task was disabled.",
			"Microsoft-Windows-Security-Auditing 4702 A scheduled task was updated."}},
		{"DeviceEvents excluded action", pipeline(rule.Kusto, rule.LogSource{Tables: []string{"DeviceEvents"}},
			rule.Not(pred("ActionType", rule.Eq, "NamedPipeEvent"))), nil},
		{"DeviceEvents without ActionType", pipeline(rule.Kusto, rule.LogSource{Tables: []string{"DeviceEvents"}}, pred("FileName", rule.Eq, "x")), nil},
		{"SigninLogs", pipeline(rule.Kusto, rule.LogSource{Tables: []string{"SigninLogs"}}, pred("ResultType", rule.Eq, "0")), nil},

		// SPL: ESCU data_source first, then CIM data models.
		{"ESCU data_source", pipeline(rule.Splunk, rule.LogSource{DataModels: []string{"Endpoint.Processes"},
			DataSources: []string{"Sysmon EventID 1", "Windows Event Log Security 4688", "CrowdStrike ProcessRollup2"}},
			pred("Processes.process_name", rule.Eq, "x")), []string{sysmon1, sec4688}},
		{"ESCU AND", pipeline(rule.Splunk, rule.LogSource{DataSources: []string{"Sysmon EventID 1 AND Sysmon EventID 11"}}),
			[]string{sysmon1, "Microsoft-Windows-Sysmon 11 File created"}},
		// The logsource map names Security-Netlogon as the NTLM/Operational provider.
		{"ESCU NTLM", pipeline(rule.Splunk, rule.LogSource{DataSources: []string{"NTLM Operational 8004,8005,8006"}}),
			[]string{"Microsoft-Windows-Security-Netlogon 8004 ", "Microsoft-Windows-Security-Netlogon 8005 ", "Microsoft-Windows-Security-Netlogon 8006 "}},
		{"ESCU Linux", pipeline(rule.Splunk, rule.LogSource{DataSources: []string{"Sysmon for Linux EventID 1"}}), nil},
		{"Endpoint.Processes", pipeline(rule.Splunk, rule.LogSource{DataModels: []string{"Endpoint.Processes"}},
			pred("Processes.process_name", rule.Eq, "x")), []string{sysmon1, sec4688}},
		{"Endpoint.Processes original_file_name", pipeline(rule.Splunk, rule.LogSource{DataModels: []string{"Endpoint.Processes"}},
			pred("Processes.original_file_name", rule.Eq, "x")), []string{sysmon1}},
	}
	for _, tc := range tests {
		if d := cmp.Diff(tc.want, rows(c.Coverage(tc.r))); d != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, d)
		}
	}
}

func TestRouteRuleRenames(t *testing.T) {
	c := catalog(t)
	r := parseSigma(t, "sigmahq", "rules", "windows", "process_creation", "proc_creation_win_cmd_sticky_key_like_backdoor_execution.yml")
	ts := c.RouteRule(r)
	if len(ts) != 2 || !ts[1].Native || ts[1].Field("ParentImage") != "ParentProcessName" {
		t.Fatalf("RouteRule = %+v", ts)
	}
	// Keyword rules still route (an engine can scan the events), they just list no coverage.
	kw := sigmaRule(rule.LogSource{Product: "windows", Category: "process_creation"}, pred("", rule.Keyword, "x"))
	if len(c.RouteRule(kw)) == 0 {
		t.Error("keyword rule has no route")
	}
}

func TestCoverageNeverPanics(t *testing.T) {
	c := catalog(t)
	for _, r := range []*rule.Rule{
		{},
		{Language: rule.Kusto, LogSource: rule.LogSource{Tables: []string{"", "im", "_Im_"}}},
		{Language: rule.Splunk, LogSource: rule.LogSource{DataSources: []string{"", " AND ", "Sysmon EventID x"}, DataModels: []string{""}}},
		sigmaRule(rule.LogSource{Service: "security"}, rule.And(pred("EventID", rule.Eq, "-1"), &rule.Node{Op: rule.OpPred})),
	} {
		_ = c.Coverage(r)
	}
	if strings.Contains(fmt.Sprint(c.Coverage(&rule.Rule{})), "panic") {
		t.Fatal()
	}
}

func TestCoverageFields(t *testing.T) {
	c := catalog(t)
	uses := func(rs []CoverageRow) map[string][]string {
		out := map[string][]string{}
		for _, r := range rs {
			k := fmt.Sprint(r.EventID)
			for _, u := range r.Fields {
				out[k] = append(out[k], u.RuleField+">"+u.EventField)
			}
		}
		return out
	}
	sticky := parseSigma(t, "sigmahq", "rules", "windows", "process_creation", "proc_creation_win_cmd_sticky_key_like_backdoor_execution.yml")
	kql := pipeline(rule.Kusto, rule.LogSource{Tables: []string{"DeviceProcessEvents"}},
		rule.And(pred("FileName", rule.Eq, "bitsadmin.exe"), pred("ProcessCommandLine", rule.Match, "/transfer"), pred("DeviceName", rule.Eq, "x")))
	hashes := sigmaRule(rule.LogSource{Product: "windows", Category: "process_creation"}, rule.And(pred("sha256", rule.Eq, "x"), pred("image", rule.EndsW, "x")))
	tests := []struct {
		name string
		r    *rule.Rule
		want map[string][]string
	}{
		{"sigma", sticky, map[string][]string{
			"1":    {"ParentImage>ParentImage", "Image>Image", "CommandLine>CommandLine"},
			"4688": {"ParentImage>ParentProcessName", "Image>NewProcessName", "CommandLine>CommandLine"},
		}},
		// DeviceName has no counterpart in either event and is left out.
		{"kql", kql, map[string][]string{
			"1":    {"FileName>Image", "ProcessCommandLine>CommandLine"},
			"4688": {"FileName>NewProcessName", "ProcessCommandLine>CommandLine"},
		}},
		{"hash part and case", hashes, map[string][]string{"1": {"sha256>Hashes", "image>Image"}}},
		// ESCU: data_source names the events, the data model names the columns.
		{"spl", pipeline(rule.Splunk, rule.LogSource{DataModels: []string{"Endpoint.Processes"},
			DataSources: []string{"Sysmon EventID 1", "Windows Event Log Security 4688"}},
			rule.And(pred("Processes.process_name", rule.Eq, "x"), pred("Processes.parent_process", rule.Match, "y"))), map[string][]string{
			"1":    {"Processes.process_name>Image", "Processes.parent_process>ParentCommandLine"},
			"4688": {"Processes.process_name>NewProcessName"},
		}},
	}
	for _, tc := range tests {
		if d := cmp.Diff(tc.want, uses(c.Coverage(tc.r))); d != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, d)
		}
	}
}
