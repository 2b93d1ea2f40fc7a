package spl

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ruledex/ruledex/rule"
)

// render prints a predicate tree compactly: and(...), or(...), not(...), opaque(text),
// and predicates as `field kind v1|v2 [transforms]`; glob values are prefixed with ~.
func render(n *rule.Node) string {
	if n == nil {
		return "<nil>"
	}
	switch n.Op {
	case rule.OpAnd, rule.OpOr:
		var parts []string
		for _, c := range n.Children {
			parts = append(parts, render(c))
		}
		return string(n.Op) + "(" + strings.Join(parts, ", ") + ")"
	case rule.OpNot:
		return "not(" + render(n.Children[0]) + ")"
	case rule.OpOpaque:
		return "opaque(" + n.Text + ")"
	case rule.OpPred:
		p := n.Pred
		var vs []string
		for _, v := range p.Values {
			s := v.S
			if v.Wild {
				s = "~" + s
			}
			vs = append(vs, s)
		}
		out := strings.TrimSpace(fmt.Sprintf("%s %s %s", p.Field, p.Kind, strings.Join(vs, "|")))
		if len(p.Transforms) > 0 {
			out += " [" + strings.Join(p.Transforms, ",") + "]"
		}
		return out
	}
	return string(n.Op)
}

func codes(ds []rule.Diagnostic) string {
	var out []string
	for _, d := range ds {
		out = append(out, string(d.Severity)+" "+d.Code)
	}
	return strings.Join(out, "; ")
}

// Snippets are taken from (or reduced from) ESCU detections and macros in the corpus.
func TestSearchPredicates(t *testing.T) {
	tests := []struct {
		name, search, want string
	}{
		{"implicit and", `index=main process_name=bitsadmin.exe`,
			"and(index eq main, process_name eq bitsadmin.exe)"},
		{"or binds tighter than implied and", `a=1 b=2 OR c=3`,
			"and(a eq 1, or(b eq 2, c eq 3))"},
		{"or binds tighter than explicit and", `a=1 AND b=2 OR c=3`,
			"and(a eq 1, or(b eq 2, c eq 3))"},
		{"not binds tighter than or", `NOT a=1 OR b=2`,
			"or(not(a eq 1), b eq 2)"},
		{"parentheses", `(a=1 b=2) OR c=3`,
			"or(and(a eq 1, b eq 2), c eq 3)"},
		{"sysmon macro shape", `sourcetype=XmlWinEventLog:Microsoft-Windows-Sysmon/Operational OR source=XmlWinEventLog:Microsoft-Windows-Sysmon/Operational EventCode=1`,
			"and(or(sourcetype eq XmlWinEventLog:Microsoft-Windows-Sysmon/Operational, source eq XmlWinEventLog:Microsoft-Windows-Sysmon/Operational), EventCode eq 1)"},
		{"same field ORs merge", `Processes.process_name=cmd.exe OR Processes.process_name=powershell.exe`,
			"Processes.process_name eq cmd.exe|powershell.exe"},
		{"lower-case or is a term", `a=1 or b=2`,
			"and(a eq 1, keyword or, b eq 2)"},
		{"contains", `Processes.process=*-s*`, "Processes.process match -s"},
		{"starts with", `SourceUser="NT AUTHORITY\\*"`, `SourceUser starts_with NT AUTHORITY\`},
		{"ends with quoted", `Image ="*\\spoolsv.exe"`, `Image ends_with \spoolsv.exe`},
		{"ends with unquoted", `ProcessName=*\\ScreenConnect.Service.exe`, `ProcessName ends_with \ScreenConnect.Service.exe`},
		{"glob", `TargetFilename=*lsass*.dmp`, "TargetFilename glob ~*lsass*.dmp"},
		{"glob with backslash before star", `Filesystem.file_path="C:\\Users\\*\\AppData"`,
			`Filesystem.file_path glob ~C:\Users\\*\AppData`},
		{"question mark is literal", `x=a*b?`, `x glob ~a*b\?`},
		{"question mark inside match", `x=*a?b*`, `x match a?b`},
		{"exists", `Registry.registry_value_data=*`, "Registry.registry_value_data is_not_null"},
		{"not exists", `user!=*`, "user is_null"},
		{"ne literal", `Processes.process_name!=svchost.exe`, "Processes.process_name ne svchost.exe"},
		{"ne pattern", `process_name!=procdump*.exe`, "not(process_name glob ~procdump*.exe)"},
		{"NOT IN", `NOT ImageLoaded IN ("*\\Program Files*","*\\system32\\*")`,
			`not(ImageLoaded match \Program Files|\system32\)`},
		{"IN mixed kinds", `Processes.process IN ("*transfer*", "*addfile*", "bits.exe", "http*")`,
			"or(Processes.process match transfer|addfile, Processes.process eq bits.exe, Processes.process starts_with http)"},
		{"IN quoted field", `"result.status" IN ("FAILURE,authFail", "UNSUCCESSFUL_ATTEMPT")`,
			"result.status eq FAILURE,authFail|UNSUCCESSFUL_ATTEMPT"},
		{"IN unquoted values", `operation IN (NetrServerPasswordSet2,NetrServerReqChallenge)`,
			"operation eq NetrServerPasswordSet2|NetrServerReqChallenge"},
		{"quoted field and value", `"operationName"="Add member to role"`, "operationName eq Add member to role"},
		{"escaped quotes outside strings", `requestObject.x=*\"privileged\":true*`, `requestObject.x match "privileged":true`},
		{"escaped quote in string", `"properties.newValue"="\"Application Administrator\""`,
			`properties.newValue eq "Application Administrator"`},
		{"keywords", `EventCode=7040 "disabled" attach*`, "and(EventCode eq 7040, keyword disabled, keyword ~attach*)"},
		{"CASE and TERM", `host=CASE(LOCALHOST) TERM(segfault)`, "and(host eq LOCALHOST [cased], keyword segfault)"},
		{"comparisons", `index_number >= 0 count>5 x<2`, "and(index_number ge 0, count gt 5, x lt 2)"},
		{"time modifiers are not filters", `earliest=-24h latest=now index=x`, "index eq x"},
		{"search star", `*`, "<nil>"},
		{"IPv6 value", `sourceIPs{}!=::1`, "sourceIPs{} ne ::1"},
		{"comment", "```skip | this``` a=1", "a eq 1"},
		{"spaces around equals", `eventType = security.threat.detected`, "eventType eq security.threat.detected"},
	}
	m := NewMacroSet()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, root, diags := m.ParseSearch(tt.search)
			if got := render(root); got != tt.want {
				t.Errorf("ParseSearch(%s)\n got %s\nwant %s", tt.search, got, tt.want)
			}
			if len(diags) > 0 {
				t.Errorf("unexpected diagnostics: %v", diags)
			}
		})
	}
}

// Number-typed values: unquoted numbers only, so "4688" (quoted) stays a string.
func TestSearchValueTypes(t *testing.T) {
	_, root, _ := NewMacroSet().ParseSearch(`EventCode=4688 Status="1" GrantedAccess=0x1f3fff`)
	preds := rule.Preds(root)
	want := []rule.ValueType{rule.Number, "", ""}
	for i, pp := range preds {
		if got := pp.Pred.Values[0].Type; got != want[i] {
			t.Errorf("%s: type %q, want %q", pp.Pred.Native, got, want[i])
		}
	}
}

func TestWherePredicates(t *testing.T) {
	tests := []struct {
		name, where, want, diag string
	}{
		{"like contains", `like(process, "%-enc%")`, "process match -enc [cased]", ""},
		{"like folded", `like(lower(process), "%-enc%")`, "process match -enc", ""},
		{"LIKE operator", `AllowUserConsentForRiskyApps like "%true%"`, "AllowUserConsentForRiskyApps match true [cased]", ""},
		{"LIKE function with space", `LIKE (severity, "%MEDIUM%")`, "severity match MEDIUM [cased]", ""},
		{"like underscore is one character", `like(process_exec, "%id_rsa%")`, "process_exec glob ~*id?rsa* [cased]", ""},
		{"like prefix", `like(x, "C:\\Windows\\%")`, `x starts_with C:\Windows\ [cased]`, ""},
		{"match", `match(process,"(?i)[\-|\/][Ss]{1}")`, `process regex (?i)[\-|\/][Ss]{1} [cased,i]`, ""},
		{"eq", `process_name == "cmd.exe"`, "process_name eq cmd.exe [cased]", ""},
		{"single equals", `process_name="cmd.exe"`, "process_name eq cmd.exe [cased]", ""},
		{"ne", `process_name != "cmd.exe"`, "process_name ne cmd.exe [cased]", ""},
		{"literal on the left", `5 < count`, "count gt 5", ""},
		{"IN", `process_name IN ("a.exe", "b.exe")`, "process_name eq a.exe|b.exe [cased]", ""},
		{"in()", `in(process_name, "a.exe", "b.exe")`, "process_name eq a.exe|b.exe [cased]", ""},
		{"NOT IN", `NOT process_name IN ("a.exe")`, "not(process_name eq a.exe [cased])", ""},
		{"isnotnull", `isnotnull(registry_value_data)`, "registry_value_data is_not_null", ""},
		{"isnull negated", `NOT isnull(x)`, "not(x is_null)", ""},
		{"and binds tighter than or", `a="1" OR b="2" AND c="3"`,
			"or(a eq 1 [cased], and(b eq 2 [cased], c eq 3 [cased]))", ""},
		{"cidrmatch", `cidrmatch("10.0.0.0/8", src)`, "src cidr 10.0.0.0/8", ""},
		{"searchmatch", `searchmatch("x=1 y=*z*")`, "and(x eq 1, y match z)", ""},
		{"field vs field", `parent_process_name != process_name`, "not(parent_process_name fieldref process_name)", ""},
		{"quoted field", `'ModifiedProperties{}.Name' == "x"`, "ModifiedProperties{}.Name eq x [cased]", ""},
		{"unmodelled function", `len(process) > 200`, "opaque(len(process) > 200)", "warning spl/where/opaque"},
		{"arithmetic", `count>(avg + stdev*2)`, "opaque(count>(avg + stdev*2))", "warning spl/where/opaque"},
	}
	m := NewMacroSet()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stages, _, diags := m.ParseSearch(`index=x | where ` + tt.where)
			var st *rule.Stage
			for i := range stages {
				if stages[i].Op == "where" {
					st = &stages[i]
				}
			}
			if st == nil {
				t.Fatalf("no where stage in %+v", stages)
			}
			if got := render(st.Node); got != tt.want {
				t.Errorf("where %s\n got %s\nwant %s", tt.where, got, tt.want)
			}
			if got := codes(diags); got != tt.diag {
				t.Errorf("diagnostics %q, want %q", got, tt.diag)
			}
		})
	}
}

func TestPipelineStages(t *testing.T) {
	search := "| tstats `security_content_summariesonly` count min(_time) as firstTime max(_time) as lastTime " +
		`from datamodel=Endpoint.Processes where Processes.process_name=bitsadmin.exe Processes.process IN ("*transfer*") ` +
		"by Processes.dest Processes.user Processes.process | `drop_dm_object_name(Processes)` " +
		`| stats count by dest | where count > 5 | table dest count | lookup foo bar | rex field=x "(?<y>.*)" | ` +
		"`security_content_ctime(firstTime)`"
	m := NewMacroSet()
	m.Add(Macro{Name: "security_content_summariesonly", Definition: "summariesonly=true"})
	m.Add(Macro{Name: "security_content_ctime", Args: []string{"field"}, Definition: `convert timeformat="%Y" ctime($field$)`})
	res := m.parseSearchText(search, textLocator(search))

	var ops []string
	for _, s := range res.stages {
		ops = append(ops, fmt.Sprintf("%d:%s:%s", s.Index, s.Kind, s.Op))
	}
	want := "0:condition:, 1:parameter:macros, 2:pipeline:tstats, 3:pipeline:rename, 4:pipeline:stats, " +
		"5:aggregation:where, 6:pipeline:table, 7:pipeline:lookup, 8:pipeline:rex, 9:pipeline:convert"
	if got := strings.Join(ops, ", "); got != want {
		t.Errorf("stages\n got %s\nwant %s", got, want)
	}
	if got := render(res.root); got != "and(Processes.process_name eq bitsadmin.exe, Processes.process match transfer)" {
		t.Errorf("root %s", got)
	}
	if got := strings.Join(res.dataModels, ","); got != "Endpoint.Processes,Processes" {
		t.Errorf("data models %s", got)
	}
	agg := res.stages[5].Aggregation
	if agg == nil || agg.Func != "count" || agg.Op != ">" || agg.Value != "5" || strings.Join(agg.GroupBy, ",") != "dest" {
		t.Errorf("where count > 5 aggregation = %+v", agg)
	}
	if res.stages[5].Node != nil {
		t.Errorf("aggregate threshold left a predicate: %s", render(res.stages[5].Node))
	}
	tst := res.stages[2]
	if tst.Aggregation == nil || tst.Aggregation.Func != "count" ||
		strings.Join(tst.Aggregation.GroupBy, ",") != "Processes.dest,Processes.user,Processes.process" {
		t.Errorf("tstats aggregation = %+v", tst.Aggregation)
	}
	if got := strings.Join(res.groupBy, ","); got != "Processes.dest,Processes.user,Processes.process" {
		t.Errorf("group by %s", got)
	}
	if got := strings.Join(res.outputs, ","); got != "dest,count" {
		t.Errorf("outputs %s", got)
	}
	// A command produced wholly by a macro shows its expansion and names the macro.
	if s := res.stages[9]; s.Text != `convert timeformat="%Y" ctime(firstTime)` || !strings.Contains(s.Label, "security_content_ctime(firstTime)") {
		t.Errorf("macro stage = %q / %q", s.Label, s.Text)
	}
	// A command written in the search shows its original text, macro calls included.
	if s := res.stages[2]; !strings.HasPrefix(s.Text, "tstats `security_content_summariesonly` count") {
		t.Errorf("tstats stage text = %q", s.Text)
	}
	if len(res.diags) != 0 {
		t.Errorf("diagnostics: %v", res.diags)
	}
}

func TestOutputsFollowRenames(t *testing.T) {
	m := NewMacroSet()
	res := m.parseSearchText("| tstats count min(_time) as firstTime from datamodel=Endpoint.Registry where Registry.registry_path=*x* by Registry.dest Registry.user | `drop_dm_object_name(Registry)` | rename dest as host | eval risk=1, y = 2 | fields - firstTime",
		textLocator(""))
	if got := strings.Join(res.outputs, ","); got != "count,host,user,risk,y" {
		t.Errorf("outputs %s", got)
	}
}

func TestUnknownCommandIsOpaqueStage(t *testing.T) {
	stages, root, diags := NewMacroSet().ParseSearch(`index=x a=1 | fromjson body | cyberchef infield=x`)
	if render(root) != "and(index eq x, a eq 1)" {
		t.Errorf("root %s", render(root))
	}
	if got := codes(diags); got != "warning spl/command/unknown; warning spl/command/unknown" {
		t.Errorf("diags %s", got)
	}
	if stages[2].Kind != rule.StageOpaque || stages[2].Text != "fromjson body" {
		t.Errorf("stage 2 = %+v", stages[2])
	}
}

func TestRecovery(t *testing.T) {
	// Broken input never fails the search: each problem is a located warning.
	tests := []struct{ search, want, diag string }{
		{`a=1 (b=2`, "and(a eq 1, b eq 2)", "warning spl/search/unbalanced"},
		{`a=1 ) b=2`, "and(a eq 1, b eq 2)", "warning spl/search/unbalanced"},
		{`a=1 OR`, "a eq 1", "warning spl/search/dangling-or"},
		{`a= `, "opaque(a=)", "warning spl/search/unexpected"},
		{`x IN ("a", "b"`, "x eq a|b", "warning spl/search/unbalanced"},
		{`"unterminated a=1`, "keyword unterminated a=1", ""},
		{`a=1 | where (b="2"`, "and(a eq 1, b eq 2 [cased])", ""},
		{`a=1 | where b="2" c`, "and(a eq 1, b eq 2 [cased], opaque(c))", "warning spl/where/trailing"},
		{"a=1 | | search b=2", "and(a eq 1, b eq 2)", "warning spl/pipeline/empty-command"},
	}
	for _, tt := range tests {
		stages, root, diags := NewMacroSet().ParseSearch(tt.search)
		if got := render(root); got != tt.want {
			t.Errorf("%s: root %s, want %s", tt.search, got, tt.want)
		}
		if got := codes(diags); got != tt.diag {
			t.Errorf("%s: diags %q, want %q", tt.search, got, tt.diag)
		}
		if len(stages) < 2 {
			t.Errorf("%s: %d stages", tt.search, len(stages))
		}
	}
}

func TestDiagnosticPositions(t *testing.T) {
	_, _, diags := NewMacroSet().ParseSearch("a=1\n| where len(x) > 2")
	if len(diags) != 1 || diags[0].Pos.Line != 2 || diags[0].Pos.Col != 9 {
		t.Errorf("diags = %+v, want one at 2:9", diags)
	}
}

func TestJoinSubsearchFilters(t *testing.T) {
	// Reduced from ESCU process_writing_dynamicwrapperx.yml.
	search := `| tstats count FROM datamodel=Endpoint.Processes by Processes.process_guid | rename Processes.* AS * ` +
		`| join process_guid [| tstats count FROM datamodel=Endpoint.Filesystem where Filesystem.file_name="dynwrapx.dll" by Filesystem.process_guid | rename Filesystem.* AS *] ` +
		`| join type=left dest [search sourcetype=x y=1]`
	res := NewMacroSet().parseSearchText(search, textLocator(search))
	// The inner join's subsearch filters Filesystem events, not the Processes events
	// the main search reads: it stays in the join stage, out of Root.
	if res.root != nil {
		t.Errorf("root %s", render(res.root))
	}
	var joins []string
	for _, s := range res.stages {
		if s.Op == "join" {
			joins = append(joins, render(s.Node))
		}
	}
	if got := strings.Join(joins, "; "); got != "Filesystem.file_name eq dynwrapx.dll; <nil>" {
		t.Errorf("join stages %s", got)
	}
	if got := strings.Join(res.dataModels, ","); got != "Endpoint.Processes,Processes,Endpoint.Filesystem,Filesystem" {
		t.Errorf("data models %s", got)
	}
	if len(res.diags) != 0 {
		t.Errorf("diags %v", res.diags)
	}
}

func TestAggregationTimespan(t *testing.T) {
	tests := []struct{ search, span string }{
		// windows_data_destruction_recursive_exec_files_deletion.yml, reduced.
		{`EventCode IN ("23","26") | bin _time span=2m | stats count by user, dest | where count >=100`, "2m"},
		{`| tstats count from datamodel=Web by _time span=2m Web.url | search count > 5`, "2m"},
		{`a=1 | stats count by user | where count > 5`, ""},
	}
	for _, tt := range tests {
		res := NewMacroSet().parseSearchText(tt.search, textLocator(tt.search))
		var agg *rule.Aggregation
		for _, s := range res.stages {
			if s.Kind == rule.StageAggregation {
				agg = s.Aggregation
			}
		}
		if agg == nil || agg.Timespan != tt.span || res.timeframe != tt.span {
			t.Errorf("%s: aggregation %+v, timeframe %q; want span %q", tt.search, agg, res.timeframe, tt.span)
		}
	}
}
