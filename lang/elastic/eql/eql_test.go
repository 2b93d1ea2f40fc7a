package eql

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ruledex/ruledex/rule"
)

// predStrings renders every predicate of n as "[not ]field kind v1|v2 [t1,t2]", the
// notation the expectations below are written in by hand.
func predStrings(n *rule.Node) []string {
	var out []string
	for _, pp := range rule.Preds(n) {
		p := pp.Pred
		var vs []string
		for _, v := range p.Values {
			vs = append(vs, v.S)
		}
		s := fmt.Sprintf("%s %s %s [%s]", p.Field, p.Kind, strings.Join(vs, "|"), strings.Join(p.Transforms, ","))
		if pp.Negated {
			s = "not " + s
		}
		out = append(out, s)
	}
	return out
}

// The conditions below are taken from rules of ../shared/corpus/elastic/detection-rules
// (file named per case), cut to the part each case pins.
func TestPredicateSemantics(t *testing.T) {
	tests := []struct {
		name, q string
		want    []string
	}{
		// rules_building_block/command_and_control_bitsadmin_activity.toml: `:` is
		// case-insensitive (no cased transform) and process.args is an array (elem).
		{"colon is case-insensitive", `process where process.name : "bitsadmin.exe"`,
			[]string{`process.name eq bitsadmin.exe []`}},
		{"args are elements", `process where process.args : ("*Transfer*", "AddFile")`,
			[]string{`process.args match Transfer [elem]`, `process.args eq AddFile [elem]`}},
		// rules/macos/persistence_creation_modif_launch_deamon_sequence.toml: == is cased.
		{"double equals is cased", `process where process.name == "launchctl" and process.args == "load"`,
			[]string{`process.name eq launchctl [cased]`, `process.args eq load [cased,elem]`}},
		{"not equal is cased", `process where process.code_signature.trusted != true and user.name != "root"`,
			[]string{`process.code_signature.trusted ne true []`, `user.name ne root [cased]`}},
		// On an array, != means no element equals the value.
		{"not equal on an array", `process where process.parent.args != "-c"`,
			[]string{`not process.parent.args eq -c [cased,elem]`}},
		{"null tests", `authentication where auditd.data.addr != null and process.parent.name == null`,
			[]string{`auditd.data.addr is_not_null  []`, `process.parent.name is_null  []`}},
		// Wildcard shapes: EQL strings are escaped, so "C:\\Windows\\*" is C:\Windows\*.
		{"prefix and suffix patterns", `process where process.executable : ("C:\\Windows\\*", "*\\rundll32.exe")`,
			[]string{`process.executable starts_with C:\Windows\ []`, `process.executable ends_with \rundll32.exe []`}},
		{"other patterns are globs with escaped backslashes", `file where file.path : "?:\\Users\\*\\AppData\\*.exe"`,
			[]string{`file.path glob ?:\Users\\*\AppData\\*.exe []`}},
		{"star alone is existence", `process where process.name : "*"`,
			[]string{`process.name is_not_null  []`}},
		// rules/windows/defense_evasion_suspicious_execution_from_mounted_device.toml style like.
		{"like is cased, like~ is not", `process where process.executable like "C:\\Windows\\*" and not process.name like~ "*.tmp"`,
			[]string{`process.executable starts_with C:\Windows\ [cased]`, `not process.name ends_with .tmp []`}},
		// rules/_deprecated/defense_evasion_whitespace_padding_in_command_line.toml: EQL
		// regexes are anchored.
		{"regex is anchored and cased", `process where process.command_line regex ".*[ ]{20,}.*"`,
			[]string{`process.command_line regex ^(?:.*[ ]{20,}.*)$ [cased]`}},
		{"regex~ is case-insensitive", `process where process.name regex~ "x[0-9]+"`,
			[]string{`process.name regex ^(?:x[0-9]+)$ [i]`}},
		{"in is cased, in~ and numbers are not", `process where event.type in ("start", "process_started") and process.name in~ ("a.exe") and destination.port in (20, 21)`,
			[]string{`event.type in start|process_started [cased,elem]`, `process.name in a.exe []`, `destination.port in 20|21 []`}},
		{"not in", `process where process.name not in ("a", "b")`,
			[]string{`not process.name in a|b [cased]`}},
		// rules/integrations/aws/persistence_aws_attempt_to_register_virtual_mfa_device.toml:
		// a space between a function and its arguments.
		{"functions", `any where startsWith (aws.cloudtrail.user_identity.access_key_id, "ASIA") and stringContains~(process.command_line, "x", "y") and cidrmatch(destination.ip, "10.0.0.0/8")`,
			[]string{`aws.cloudtrail.user_identity.access_key_id starts_with ASIA [cased]`, `process.command_line match x|y []`, `destination.ip cidr 10.0.0.0/8 []`}},
		{"wildcard function", `process where wildcard(process.name, "a*b", "c*")`,
			[]string{`process.name glob a*b [cased]`, `process.name starts_with c [cased]`}},
		{"ranges", `process where process.args_count >= 2 and file.size < -1`,
			[]string{`process.args_count ge 2 []`, `file.size lt -1 []`}},
		{"field against field", `process where process.name == process.parent.name and process.name : process.Ext.effective_parent.name`,
			[]string{`process.name fieldref process.parent.name [cased]`, `process.name fieldref process.Ext.effective_parent.name []`}},
		// rules/windows/*: startswith~(process.Ext.effective_parent.name, process.parent.name).
		{"function on two fields", `process where startswith~(process.Ext.effective_parent.name, process.parent.name) and stringContains(process.executable, process.command_line)`,
			[]string{`process.Ext.effective_parent.name fieldref process.parent.name [startswith]`, `process.executable fieldref process.command_line [contains,cased]`}},
		// rules/integrations/azure/persistence_entra_id_device_registration_to_prt_chain.toml
		{"backquoted segment", "any where azure.target_resources.`0`.display_name like \"DESKTOP-*\"",
			[]string{"azure.target_resources.`0`.display_name starts_with DESKTOP- [cased]"}},
		{"optional field and escapes", `process where ?process.parent.name : "a\"b" and process.name : """C:\raw"""`,
			[]string{`process.parent.name eq a"b []`, `process.name eq C:\raw []`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := Parse(tc.q, rule.Pos{Line: 1, Col: 1})
			for _, d := range q.Diags {
				t.Errorf("unexpected diagnostic %v", d)
			}
			got := predStrings(q.Root)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("predicates of %s\n got: %q\nwant: %q", tc.q, got, tc.want)
			}
		})
	}
}

func TestStagesAndCategories(t *testing.T) {
	// rules/linux/*: a sequence with runs and a tail pipe.
	q := Parse(`sequence by host.id, related.user with maxspan=5s
  [authentication where event.action == "authenticated" and event.outcome == "failure"] with runs=10
  [authentication where event.outcome == "success"] by source.ip
  until [process where event.type == "end"] | tail 1`, rule.Pos{Line: 20, Col: 1})
	if len(q.Diags) != 0 {
		t.Fatalf("diagnostics: %v", q.Diags)
	}
	if q.Kind != "sequence" || q.Root != nil {
		t.Errorf("kind %q root %v, want a sequence without Root", q.Kind, q.Root)
	}
	c := q.Correlation
	if c == nil || c.Type != "temporal_ordered" || c.Timespan != "5s" || strings.Join(c.GroupBy, ",") != "host.id,related.user,source.ip" {
		t.Fatalf("correlation %+v", c)
	}
	var labels []string
	for i, st := range q.Stages {
		if st.Index != i+1 {
			t.Errorf("stage %d has index %d", i, st.Index)
		}
		labels = append(labels, fmt.Sprintf("%s:%s:%v", st.Kind, st.Label, st.Negated))
	}
	want := []string{
		"selection:[authentication] with runs=10:false",
		"selection:[authentication] by source.ip:false",
		"selection:until [process]:true",
		"correlation:sequence:false",
		"pipeline:tail:false",
	}
	if strings.Join(labels, "\n") != strings.Join(want, "\n") {
		t.Errorf("stages\n got %q\nwant %q", labels, want)
	}
	if q.Stages[1].Pos.Line != 22 || q.Stages[1].Pos.Col != 3 {
		t.Errorf("second sub-query at %+v, want line 22 col 3", q.Stages[1].Pos)
	}
	if strings.Join(q.Categories, ",") != "authentication,process" {
		t.Errorf("categories %v", q.Categories)
	}

	// A single-event query: one stage per top-level conjunct, negated ones marked.
	q = Parse("process where event.type == \"start\" and\n not process.name : \"x.exe\" | head 5", rule.Pos{Line: 3, Col: 1})
	labels = nil
	for _, st := range q.Stages {
		labels = append(labels, fmt.Sprintf("%s:%s:%v:%d", st.Kind, st.Label, st.Negated, st.Pos.Line))
	}
	want = []string{`selection:event.type == "start":false:3`, `selection:not process.name : "x.exe":true:4`, "pipeline:head:false:4"}
	if strings.Join(labels, "\n") != strings.Join(want, "\n") {
		t.Errorf("stages\n got %q\nwant %q", labels, want)
	}

	q = Parse(`sample by host.id [process where process.name : "a"] [network where true]`, rule.Pos{})
	if q.Correlation == nil || q.Correlation.Type != "temporal" || len(q.Stages) != 3 {
		t.Errorf("sample: %+v, %d stages", q.Correlation, len(q.Stages))
	}
}

func TestTolerance(t *testing.T) {
	tests := []struct {
		name, q  string
		sev      rule.Severity
		code     string
		line     int
		opaqueIn bool // the Root still holds an opaque node
	}{
		{"syntax error is located", "process where\n  process.name : ", rule.Error, "eql/syntax", 11, true},
		{"descendant of", `process where descendant of [process where process.name : "x"] and process.name : "y"`, rule.Warning, "eql/join", 10, true},
		{"computed comparison", `process where length(process.command_line) > 255`, rule.Warning, "eql/computed", 10, true},
		{"unknown function", `process where between(process.name, "a", "b") : "c"`, rule.Warning, "eql/computed", 10, true},
		{"list as a condition", `process where not ("a", "b")`, rule.Warning, "eql/expr/not-boolean", 10, true},
		{"bad sub-query keeps the others", "sequence [process where ] [file where file.name : \"x\"]", rule.Error, "eql/syntax", 10, false},
		{"unknown pipe", `process where true | frobnicate 3`, rule.Warning, "eql/pipe/unknown", 10, false},
		{"empty backquoted name", "process where ``=0", rule.Error, "eql/syntax", 10, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := Parse(tc.q, rule.Pos{File: "x.toml", Line: 10, Col: 1})
			if len(q.Diags) == 0 {
				t.Fatal("no diagnostic")
			}
			d := q.Diags[0]
			if d.Severity != tc.sev || d.Code != tc.code || d.Pos.Line != tc.line || d.Pos.File != "x.toml" {
				t.Errorf("diagnostic %v, want %s %s at line %d", d, tc.sev, tc.code, tc.line)
			}
			if len(q.Stages) == 0 {
				t.Error("no stage: the query was lost")
			}
			hasOpaque := false
			rule.Walk(q.Root, func(n *rule.Node, _ bool) bool {
				hasOpaque = hasOpaque || n.Op == rule.OpOpaque
				return true
			})
			if hasOpaque != tc.opaqueIn {
				t.Errorf("opaque node in Root: %v, want %v", hasOpaque, tc.opaqueIn)
			}
		})
	}
	// The valid sub-query of a broken sequence keeps its predicates.
	q := Parse("sequence [process where ] [file where file.name : \"x\"]", rule.Pos{Line: 1})
	var preds []string
	for _, st := range q.Stages {
		preds = append(preds, predStrings(st.Node)...)
	}
	if strings.Join(preds, ";") != "file.name eq x []" {
		t.Errorf("predicates kept %q", preds)
	}
}
