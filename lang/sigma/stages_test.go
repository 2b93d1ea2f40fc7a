package sigma

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/rule"
)

// stageLine summarizes a stage: "index alt kind label [not]".
func stageLines(r *rule.Rule) []string {
	var out []string
	for _, s := range r.Stages {
		l := fmt.Sprintf("%d %d %s %s", s.Index, s.Alt, s.Kind, s.Label)
		if s.Negated {
			l += " [not]"
		}
		out = append(out, l)
	}
	return out
}

func TestStages(t *testing.T) {
	tests := []struct {
		cond string
		want []string
	}{
		{"a", []string{"0 0 condition condition", "1 0 selection a"}},
		{"a and not b", []string{"0 0 condition condition", "1 0 selection a", "2 0 selection not b [not]"}},
		{"all of sel_* and not 1 of filter_*", []string{"0 0 condition condition",
			"1 0 selection sel_1", "2 0 selection sel_2", "3 0 quantified not 1 of filter_* [not]"}},
		{"1 of sel_*", []string{"0 0 condition condition", "1 0 quantified 1 of sel_*"}},
		{"any of sel_* and a", []string{"0 0 condition condition", "1 0 quantified any of sel_*", "2 0 selection a"}},
		{"not all of filter_*", []string{"0 0 condition condition", "1 0 quantified not all of filter_* [not]"}},
		{"a or (b and not c)", []string{"0 0 condition condition", "1 1 selection a", "2 2 selection b", "3 2 selection not c [not]"}},
		{"a and (b or c)", []string{"0 0 condition condition", "1 0 selection a", "2 0 quantified (b or c)"}},
		{"a and not (b or c)", []string{"0 0 condition condition", "1 0 selection a", "2 0 quantified not (b or c) [not]"}},
		{"a or b or c", []string{"0 0 condition condition", "1 1 selection a", "2 2 selection b", "3 3 selection c"}},
		{"[a, b and c]", []string{"0 0 condition condition", "1 1 selection a", "2 2 selection b", "3 2 selection c"}},
		{"a | count() by F > 3", []string{"0 0 condition condition", "1 0 selection a", "2 0 aggregation count() by F > 3"}},
		{"a AND NOT b", []string{"0 0 condition condition", "1 0 selection a", "2 0 selection not b [not]"}},
		{"NOT 1 OF filter_* AND ALL OF THEM", []string{"0 0 condition condition", "1 0 quantified not 1 of filter_* [not]",
			"2 0 selection a", "3 0 selection b", "4 0 selection c", "5 0 selection sel_1", "6 0 selection sel_2", "7 0 selection filter_1", "8 0 selection filter_2"}},
	}
	for _, tc := range tests {
		t.Run(tc.cond, func(t *testing.T) {
			r := parseOne(t, condRule(tc.cond))
			if d := cmp.Diff(tc.want, stageLines(r)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
			// Every stage's Node is part of Root: conjuncts are the very nodes of the tree.
			inRoot := map[*rule.Node]bool{}
			rule.Walk(r.Root, func(n *rule.Node, _ bool) bool { inRoot[n] = true; return true })
			for _, s := range r.Stages[1:] {
				if s.Kind == rule.StageAggregation {
					continue
				}
				if s.Node == nil || !inRoot[s.Node] {
					t.Errorf("stage %d %q: node not in Root", s.Index, s.Label)
				}
				if s.Negated != (s.Node != nil && s.Node.Op == rule.OpNot) {
					t.Errorf("stage %d %q: Negated %v but node %s", s.Index, s.Label, s.Negated, s.Node.Op)
				}
			}
		})
	}
}

func TestStageText(t *testing.T) {
	const doc = `title: t
logsource:
    category: process_creation
detection:
    selection:
        - Image|endswith: "\\x.exe"
          CommandLine|contains:
              - a
              - "it's"
        - ParentImage: y
    keywords:
        - 'evil'
        - 42
    filter_main:
        EventID: 4688
        User: null
        Empty: ''
        Enabled: true
    filter_other:
        Field|re: '^a.*'
    condition: selection and keywords and not 1 of filter_*
`
	r := parseOne(t, doc)
	want := []string{
		"selection and keywords and not 1 of filter_*",
		"selection:\n- Image|endswith: '\\x.exe'\n  CommandLine|contains:\n  - 'a'\n  - 'it''s'\n- ParentImage: 'y'",
		"keywords:\n- 'evil'\n- 42",
		"filter_main:\n  EventID: 4688\n  User: null\n  Empty: ''\n  Enabled: true\nfilter_other:\n  Field|re: '^a.*'",
	}
	var got []string
	for _, s := range r.Stages {
		got = append(got, s.Text)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestCorrelation(t *testing.T) {
	// Real data: a rule and a value_count correlation on it in one file.
	const path = "windows-os/win-os-brutforce enumeration with unexisting users.yaml"
	data, err := os.ReadFile(corpustest.Path(t, "sigma", "mdecrevoisier", path))
	if err != nil {
		t.Fatal(err)
	}
	rules, diags := Parser{}.Parse(rule.Source{Repo: "r", Path: path}, data)
	if len(diags) > 0 || len(rules) != 2 {
		t.Fatalf("%d rules, diags %v", len(rules), diags)
	}
	base, corr := rules[0], rules[1]
	if base.Name != "login_non_existing_user" || base.Type != "rule" || base.Source.Index != 0 || base.Source.Line != 1 {
		t.Errorf("first rule: name %q type %q index %d line %d", base.Name, base.Type, base.Source.Index, base.Source.Line)
	}
	if corr.Type != "correlation" || corr.Source.Index != 1 || corr.Source.Line != 27 || corr.Root != nil {
		t.Errorf("correlation: type %q index %d line %d root %v", corr.Type, corr.Source.Index, corr.Source.Line, corr.Root)
	}
	if len(corr.ID) != 16 || corr.ID == base.ID {
		t.Errorf("ids %q %q", base.ID, corr.ID)
	}
	want := &rule.Correlation{Type: "value_count", Rules: []string{"login_non_existing_user"}, GroupBy: []string{"Computer"},
		Timespan: "30m", Conditions: []rule.Threshold{{Op: "gte", Value: 20}}, Field: "TargetUserName"}
	if d := cmp.Diff(want, corr.Correlation); d != "" {
		t.Errorf("correlation (-want +got):\n%s", d)
	}
	if corr.Timeframe != "30m" || corr.Severity != "high" || corr.Condition != "gte: 20\nfield: TargetUserName" {
		t.Errorf("timeframe %q severity %q condition %q", corr.Timeframe, corr.Severity, corr.Condition)
	}
	if len(corr.Stages) != 2 || corr.Stages[1].Kind != rule.StageCorrelation || corr.Stages[1].Aggregation == nil {
		t.Fatalf("stages %+v", corr.Stages)
	}
	agg := *corr.Stages[1].Aggregation
	if fmt.Sprint(agg) != fmt.Sprint(rule.Aggregation{Func: "value_count", Field: "TargetUserName", GroupBy: []string{"Computer"}, Op: ">=", Value: "20", Timespan: "30m"}) {
		t.Errorf("aggregation %+v", agg)
	}
	if !strings.HasPrefix(corr.Stages[1].Text, "correlation:\n  type: 'value_count'\n  rules:\n  - 'login_non_existing_user'") {
		t.Errorf("stage text %q", corr.Stages[1].Text)
	}
	// Bodies are each document's own text, verbatim.
	if !strings.HasPrefix(string(data), base.Body) || !strings.HasSuffix(strings.TrimSpace(string(data)), strings.TrimSpace(corr.Body)) {
		t.Errorf("bodies are not the documents' text")
	}
	if strings.Contains(base.Body, "correlation:") || !strings.HasPrefix(corr.Body, "title: Brutforce enumeration with non existing users (login) Count") {
		t.Errorf("bodies split wrong: %q / %q", base.Body, corr.Body)
	}
}

func TestCorrelationForms(t *testing.T) {
	tests := []struct {
		name, corr, diags string
		check             func(c *rule.Correlation) string
	}{
		{"event_count", "  type: event_count\n  rules: [a]\n  group-by: [Host]\n  timespan: 1h\n  condition:\n    gte: 100\n", "",
			func(c *rule.Correlation) string { return fmt.Sprint(c.Type, c.Conditions, c.GroupBy) }},
		{"range", "  type: event_count\n  rules: [a]\n  timespan: 1h\n  condition:\n    gt: 100\n    lte: 200\n", "",
			func(c *rule.Correlation) string { return fmt.Sprint(c.Conditions) }},
		{"temporal", "  type: temporal\n  rules: [a, b]\n  group-by: [User]\n  timespan: 5m\n", "",
			func(c *rule.Correlation) string { return fmt.Sprint(c.Type, c.Rules) }},
		{"temporal_ordered expression", "  type: temporal_ordered\n  rules: [a, b]\n  timespan: 5m\n  condition: a AND b\n", "",
			func(c *rule.Correlation) string { return fmt.Sprint(c.Type, c.Rules) }},
		{"value_sum", "  type: value_sum\n  rules: [a]\n  timespan: 1d\n  condition:\n    field: bytes\n    gt: 1000000\n", "",
			func(c *rule.Correlation) string { return fmt.Sprint(c.Field, c.Conditions) }},
		{"value_avg", "  type: value_avg\n  rules: [a]\n  timespan: 1d\n  condition:\n    field: size\n    gt: 10\n", "",
			func(c *rule.Correlation) string { return c.Field }},
		{"value_percentile", "  type: value_percentile\n  rules: [a]\n  timespan: 24h\n  condition:\n    field: image\n    lte: 1\n", "",
			func(c *rule.Correlation) string { return c.Type }},
		{"aliases", "  type: temporal\n  rules: [a, b]\n  group-by: [ip]\n  timespan: 10s\n  aliases:\n    ip:\n      a: destination.ip\n      b: source.ip\n", "",
			func(c *rule.Correlation) string { return fmt.Sprint(c.Aliases) }},
		{"generate", "  type: temporal\n  rules: [a]\n  timespan: 10s\n  generate: true\n", "",
			func(c *rule.Correlation) string { return fmt.Sprint(c.Generate) }},
		{"unknown type", "  type: event_sum\n  rules: [a]\n  timespan: 1h\n  condition:\n    gt: 1\n", "e:sigma/correlation/unknown-type", nil},
		{"missing rules", "  type: event_count\n  timespan: 1h\n  condition:\n    gt: 1\n", "e:sigma/correlation/missing-rules", nil},
		{"missing timespan", "  type: event_count\n  rules: [a]\n  condition:\n    gt: 1\n", "e:sigma/correlation/missing-timespan", nil},
		{"missing condition", "  type: event_count\n  rules: [a]\n  timespan: 1h\n", "e:sigma/correlation/missing-condition", nil},
		{"value_count needs field", "  type: value_count\n  rules: [a]\n  timespan: 1h\n  condition:\n    gt: 1\n", "e:sigma/correlation/missing-field", nil},
		{"bad comparison", "  type: event_count\n  rules: [a]\n  timespan: 1h\n  condition:\n    more: 1\n", "e:sigma/correlation/condition", nil},
	}
	want := map[string]string{
		"event_count": "event_count[{gte 100}] [Host]", "range": "[{gt 100} {lte 200}]", "temporal": "temporal[a b]",
		"temporal_ordered expression": "temporal_ordered[a b]", "value_sum": "bytes[{gt 1e+06}]", "value_avg": "size",
		"value_percentile": "value_percentile", "aliases": "map[ip:map[a:destination.ip b:source.ip]]", "generate": "true",
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := parseOne(t, "title: c\ncorrelation:\n"+tc.corr)
			if got := codes(r); got != tc.diags {
				t.Errorf("diagnostics %q, want %q (%v)", got, tc.diags, r.Diagnostics)
			}
			if tc.check != nil {
				if got := tc.check(r.Correlation); got != want[tc.name] {
					t.Errorf("got %s, want %s", got, want[tc.name])
				}
			}
			if r.Type != "correlation" || len(r.Stages) != 2 {
				t.Errorf("type %q, %d stages", r.Type, len(r.Stages))
			}
		})
	}
}

func TestFilterDocument(t *testing.T) {
	// The specification's own example (tests/filter/filter_1.yml).
	const doc = `title: Filter Administrator account
description: The valid administrator account start with adm_
logsource:
    category: process_creation
    product: windows
filter:
    rules:
        - 6f3e2987-db24-4c78-a860-b4f4095a7095 # Data Compressed - rar.exe
        - df0841c0-9846-4e9f-ad8a-7df91571771b # Login on jump host
    selection:
        User|startswith: 'adm_'
    condition: selection
`
	if !(Parser{}).Detect("f.yml", []byte(doc)) {
		t.Error("Detect rejects a filter document")
	}
	r := parseOne(t, doc)
	if r.Type != "filter" || len(r.Diagnostics) > 0 {
		t.Fatalf("type %q diags %v", r.Type, r.Diagnostics)
	}
	if got := show(r.Root); got != "$selection" {
		t.Errorf("root %s", got)
	}
	if got := show(r.Root.Children[0]); got != `User starts_with "adm_"` {
		t.Errorf("selection %s", got)
	}
	if r.Extra["filter.rules"] != "6f3e2987-db24-4c78-a860-b4f4095a7095\ndf0841c0-9846-4e9f-ad8a-7df91571771b" {
		t.Errorf("filter rules %q", r.Extra["filter.rules"])
	}
}

func TestGlobalCollection(t *testing.T) {
	// Real data: a legacy `action: global` collection from SigmaHQ unsupported rules.
	const path = "unsupported/windows/win_remote_service.yml"
	data, err := os.ReadFile(corpustest.Path(t, "sigma", "sigmahq", path))
	if err != nil {
		t.Fatal(err)
	}
	rules, diags := Parser{}.Parse(rule.Source{Repo: "r", Path: path}, data)
	if len(diags) > 0 || len(rules) != 2 {
		t.Fatalf("%d rules, diags %v", len(rules), diags)
	}
	for i, r := range rules {
		if r.Title != "Remote Service Creation" || r.ID != "4a3a2b96-d7fc-4cb9-80e4-4a545fe95f46" || r.Source.Index != i {
			t.Errorf("rule %d: title %q id %q index %d", i, r.Title, r.ID, r.Source.Index)
		}
		if len(r.Diagnostics) > 0 {
			t.Errorf("rule %d: %v", i, r.Diagnostics)
		}
		if r.Body != string(data) {
			t.Errorf("rule %d: a collection member's body is the whole collection", i)
		}
		if r.Timeframe != "30s" {
			t.Errorf("rule %d: timeframe %q", i, r.Timeframe)
		}
	}
	wantLS := []rule.LogSource{{Product: "windows", Service: "security"}, {Product: "windows", Service: "system"}}
	wantSel2 := []string{`EventID eq "4697"#number`, `EventID eq "7045"#number`}
	for i, r := range rules {
		if !cmp.Equal(r.LogSource, wantLS[i]) {
			t.Errorf("rule %d logsource %+v", i, r.LogSource)
		}
		if got := show(r.Root); got != "or(and($selection1, not($filter1)), $selection2)" {
			t.Errorf("rule %d root %s", i, got)
		}
		var sel2 string
		rule.Walk(r.Root, func(n *rule.Node, _ bool) bool {
			if n.Op == rule.OpRef && n.Name == "selection2" {
				sel2 = show(n.Children[0])
			}
			return true
		})
		if sel2 != wantSel2[i] {
			t.Errorf("rule %d selection2 %s", i, sel2)
		}
	}
}

func TestMetadata(t *testing.T) {
	const doc = `title: Meta
id: 11111111-2222-3333-4444-555555555555
name: meta_rule
status: test
description: |
    Two lines
    of text.
author: Florian Roth (Nextron Systems), Markus Neis, oscd.community; Tim Shelton
date: 2023/01/02
modified: 2024-02-03
references:
    - https://example.com/a
tags:
    - attack.credential-access
    - attack.Command_and_control
    - attack.t1558.004
    - attack.T1059
    - attack.g0007
    - attack.s0002
    - cve.2021-44228
    - attack.credential_access
related:
    - id: 22222222-2222-3333-4444-555555555555
      type: derived
logsource:
    product: windows
    service: security
    definition: Requirements text
fields:
    - CommandLine
    - User
falsepositives: Admin activity
level: high
license: DRL
simulation:
    - type: atomic-red-team
custom_thing: 1
detection:
    sel:
        EventID: 4769
    condition: sel
`
	r := parseOne(t, doc)
	got := map[string]any{
		"id": r.ID, "name": r.Name, "status": r.Status, "desc": r.Description, "authors": r.Authors,
		"date": r.Date, "modified": r.Modified, "refs": r.References, "tactics": r.Tactics, "techniques": r.Techniques,
		"related": r.Related, "logsource": r.LogSource, "fp": r.FalsePositives, "level": r.Severity,
		"extra": r.Extra, "diags": codes(r), "tags": len(r.Tags),
	}
	want := map[string]any{
		"id": "11111111-2222-3333-4444-555555555555", "name": "meta_rule", "status": "test", "desc": "Two lines\nof text.\n",
		"authors": []string{"Florian Roth (Nextron Systems)", "Markus Neis", "oscd.community", "Tim Shelton"},
		"date":    "2023/01/02", "modified": "2024-02-03", "refs": []string{"https://example.com/a"},
		"tactics":    []string{"credential-access", "command-and-control"},
		"techniques": []string{"T1558.004", "T1059"},
		"related":    []rule.Related{{ID: "22222222-2222-3333-4444-555555555555", Type: "derived"}},
		"logsource":  rule.LogSource{Product: "windows", Service: "security", Definition: "Requirements text"},
		"fp":         []string{"Admin activity"}, "level": "high",
		"extra": map[string]string{"fields": "CommandLine\nUser", "license": "DRL",
			"simulation": "- type: atomic-red-team", "custom_thing": "1"},
		"diags": "w:sigma/meta/unknown-key", "tags": 8,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestDocumentErrors(t *testing.T) {
	tests := []struct {
		name, text, diags string
		rules             int
		line              int
	}{
		{"yaml syntax", "title: x\ndetection:\n  sel: [a\n  condition: sel\n", "e:sigma/yaml/syntax", 1, 0},
		{"no detection", "title: x\nlogsource:\n  product: windows\n", "e:sigma/detection/missing", 1, 1},
		{"no condition", "title: x\ndetection:\n  sel:\n    A: b\n", "e:sigma/condition/missing", 1, 2},
		{"empty condition", "title: x\ndetection:\n  sel:\n    A: b\n  condition:\n", "e:sigma/condition/missing", 1, 0},
		{"not a mapping", "- a\n- b\n", "e:sigma/yaml/not-mapping", 1, 1},
		{"detection not a mapping", "title: x\ndetection: sel\n", "e:sigma/detection/type", 1, 2},
		{"null selection", "title: x\ndetection:\n  sel:\n  condition: sel\n", "e:sigma/detection/empty", 1, 3},
		{"unused null selection", "title: x\ndetection:\n  sel:\n    A: b\n  filter:\n  condition: sel\n", "w:sigma/detection/empty-unused", 1, 5},
		{"empty list selection", "title: x\ndetection:\n  sel: []\n  condition: sel\n", "e:sigma/detection/empty", 1, 3},
		{"missing title", "detection:\n  sel:\n    A: b\n  condition: sel\n", "w:sigma/meta/missing-title", 1, 1},
		{"duplicate key", "title: x\ntitle: y\ndetection:\n  sel:\n    A: b\n  condition: sel\n", "w:sigma/yaml/duplicate-key", 1, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rules, diags := Parser{}.Parse(rule.Source{Path: "t.yml"}, []byte(tc.text))
			if len(rules) != tc.rules {
				t.Fatalf("%d rules, want %d (diags %v)", len(rules), tc.rules, diags)
			}
			r := rules[0]
			if got := codes(r); got != tc.diags {
				t.Errorf("diagnostics %q, want %q (%v)", got, tc.diags, r.Diagnostics)
			}
			for _, d := range r.Diagnostics {
				if d.Pos.File != "t.yml" || d.Pos.Line == 0 || (tc.line != 0 && d.Pos.Line != tc.line) {
					t.Errorf("diagnostic at %+v, want line %d", d.Pos, tc.line)
				}
			}
			if r.Title == "" || r.ID == "" || r.Body != tc.text {
				t.Errorf("rule lacks title %q, id %q or body", r.Title, r.ID)
			}
		})
	}
}

func TestYAMLErrorLine(t *testing.T) {
	// Real data: mdecrevoisier's SMB dump rule has a tab where YAML forbids one.
	const path = "windows-os/win-os-dump file transfered over SMB share.yaml"
	data, err := os.ReadFile(corpustest.Path(t, "sigma", "mdecrevoisier", path))
	if err != nil {
		t.Fatal(err)
	}
	rules, _ := Parser{}.Parse(rule.Source{Path: path}, data)
	if len(rules) != 1 || len(rules[0].Diagnostics) != 1 {
		t.Fatalf("rules %d", len(rules))
	}
	d := rules[0].Diagnostics[0]
	lines := strings.Split(string(data), "\n")
	if d.Code != "sigma/yaml/syntax" || d.Pos.Line < 1 || d.Pos.Line > len(lines) || !strings.Contains(lines[d.Pos.Line-1], "\t") {
		t.Errorf("diagnostic %s; line %d is %q", d, d.Pos.Line, lines[max(0, min(d.Pos.Line, len(lines))-1)])
	}
	if rules[0].Title == "" || rules[0].Title == "win-os-dump file transfered over SMB share" {
		t.Errorf("title %q not read from the broken file", rules[0].Title)
	}
}

func TestMultiDocumentLines(t *testing.T) {
	const text = "title: one\ndetection:\n  a:\n    X: 1\n  condition: a\n---\n# comment\ntitle: two\ndetection:\n  b:\n    Y: 2\n  condition: b and c\n"
	rules, diags := Parser{}.Parse(rule.Source{Path: "m.yml"}, []byte(text))
	if len(diags) > 0 || len(rules) != 2 {
		t.Fatalf("%d rules %v", len(rules), diags)
	}
	if rules[1].Source.Line != 8 || rules[1].Source.Index != 1 || rules[1].Title != "two" {
		t.Errorf("second rule line %d index %d", rules[1].Source.Line, rules[1].Source.Index)
	}
	if len(rules[1].Diagnostics) != 1 || rules[1].Diagnostics[0].Pos.Line != 12 || rules[1].Diagnostics[0].Pos.Col != 20 {
		t.Errorf("diagnostic %v, want line 12 col 20", rules[1].Diagnostics)
	}
	if p := rules[1].Stages[1].Node.Pos; p.Line != 10 {
		t.Errorf("stage pos %+v", p)
	}
	if rules[0].Body != "title: one\ndetection:\n  a:\n    X: 1\n  condition: a\n" {
		t.Errorf("body %q", rules[0].Body)
	}
}

func TestConditionPositions(t *testing.T) {
	tests := []struct {
		name, cond string
		line, col  int
	}{
		{"plain", "  condition: a and missing", 6, 20},
		{"quoted", "  condition: 'a and missing'", 6, 21},
		{"folded plain", "  condition:\n    a and\n    (b or missing)", 8, 11},
		{"block", "  condition: >\n    a and\n    a and missing", 8, 11},
		{"list item", "  condition:\n    - a\n    - b and missing", 8, 13},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text := "title: t\ndetection:\n  a:\n    X: 1\n  b: [k]\n" + tc.cond + "\n"
			rules, _ := Parser{}.Parse(rule.Source{Path: "p.yml"}, []byte(text))
			r := rules[0]
			if len(r.Diagnostics) != 1 || r.Diagnostics[0].Code != "sigma/condition/unknown-ref" {
				t.Fatalf("diagnostics %v", r.Diagnostics)
			}
			if p := r.Diagnostics[0].Pos; p.Line != tc.line || p.Col != tc.col {
				t.Errorf("at %d:%d, want %d:%d", p.Line, p.Col, tc.line, tc.col)
			}
			lines := strings.Split(text, "\n")
			if got := lines[tc.line-1][tc.col-1:]; !strings.HasPrefix(got, "missing") {
				t.Errorf("test case points at %q", got)
			}
		})
	}
}

func TestCollectionActions(t *testing.T) {
	// Legacy collections (Sigma 1 specification): global merges into each following
	// document, repeat re-uses the previous document with overrides, reset clears global.
	const text = `action: global
title: Collection
status: test
detection:
  sel:
    EventID: 1
  condition: sel
---
logsource:
  product: windows
detection:
  sel2:
    Image: x
  condition: sel and sel2
---
action: repeat
logsource:
  product: linux
---
action: reset
---
title: Alone
detection:
  a:
    X: 1
  condition: a
`
	rules, diags := Parser{}.Parse(rule.Source{Path: "c.yml"}, []byte(text))
	if len(diags) > 0 || len(rules) != 3 {
		t.Fatalf("%d rules %v", len(rules), diags)
	}
	want := []struct{ title, product, root, status string }{
		{"Collection", "windows", "and($sel, $sel2)", "test"},
		{"Collection", "linux", "and($sel, $sel2)", "test"},
		{"Alone", "", "$a", ""},
	}
	for i, w := range want {
		r := rules[i]
		if r.Title != w.title || r.LogSource.Product != w.product || show(r.Root) != w.root || r.Status != w.status || len(r.Diagnostics) > 0 {
			t.Errorf("rule %d: %q %q %s %q %v", i, r.Title, r.LogSource.Product, show(r.Root), r.Status, r.Diagnostics)
		}
		if r.Source.Index != i {
			t.Errorf("rule %d index %d", i, r.Source.Index)
		}
	}
	if rules[2].Source.Line != 22 {
		t.Errorf("third rule line %d", rules[2].Source.Line)
	}
	if rules[0].Body != text || rules[1].Body != text || rules[2].Body != "title: Alone\ndetection:\n  a:\n    X: 1\n  condition: a\n" {
		t.Errorf("bodies: collection members get the whole file, a rule after reset its own document")
	}
}

func TestHostileYAML(t *testing.T) {
	laughs := "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n" +
		"d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n" +
		"title: laughs\ndetection:\n  sel:\n    X: *f\n  s2: *f\n  condition: sel or s2\n"
	tests := []struct{ name, text, code string }{
		{"deep flow sequence", "title: x\ndetection:\n  sel: " + strings.Repeat("[", 20000) + "\n", "sigma/yaml/syntax"},
		{"deep flow mapping", "title: x\ndetection:\n  sel: " + strings.Repeat("{a: ", 20000) + "\n", "sigma/yaml/syntax"},
		{"alias expansion", laughs, "sigma/value/type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rules, _ := Parser{}.Parse(rule.Source{Path: "h.yml"}, []byte(tc.text))
			if len(rules) != 1 || !rules[0].HasErrors() {
				t.Fatalf("want one rule with errors, got %d", len(rules))
			}
			found := false
			for _, d := range rules[0].Diagnostics {
				found = found || (d.Code == tc.code && d.Pos.Line > 0)
			}
			if !found {
				t.Errorf("no located %s in %v", tc.code, rules[0].Diagnostics)
			}
			if len(rules[0].Body) != len(tc.text) {
				t.Errorf("body not verbatim")
			}
		})
	}
}

func TestCorrelationUnresolved(t *testing.T) {
	const text = "title: base\nname: failed_login\ndetection:\n  a:\n    EventID: 4625\n  condition: a\n---\n" +
		"title: corr\ncorrelation:\n  type: event_count\n  rules:\n    - failed_logins\n    - failed_login\n    - 5638f7c0-ac70-491d-8465-2a65075e0d86\n  timespan: 1h\n  condition:\n    gte: 10\n"
	rules, _ := Parser{}.Parse(rule.Source{Path: "u.yml"}, []byte(text))
	if len(rules) != 2 {
		t.Fatalf("%d rules", len(rules))
	}
	if got := codes(rules[1]); got != "w:sigma/correlation/unresolved" {
		t.Errorf("diagnostics %q (%v)", got, rules[1].Diagnostics)
	} else if !strings.Contains(rules[1].Diagnostics[0].Message, `"failed_logins"`) {
		t.Errorf("message %q", rules[1].Diagnostics[0].Message)
	}
}

func TestCRLF(t *testing.T) {
	data, err := os.ReadFile(corpustest.Path(t, "sigma", "mdecrevoisier", seedPath))
	if err != nil {
		t.Fatal(err)
	}
	crlf := strings.ReplaceAll(string(data), "\n", "\r\n") + "\r\n---\r\n" + strings.ReplaceAll(condRule("a and missing"), "\n", "\r\n")
	if !(Parser{}).Detect("x.yml", []byte(crlf)) {
		t.Error("Detect rejects CRLF")
	}
	rules, diags := Parser{}.Parse(rule.Source{Path: "x.yml"}, []byte(crlf))
	if len(diags) > 0 || len(rules) != 2 {
		t.Fatalf("%d rules %v", len(rules), diags)
	}
	if rules[0].Stages[1].Text != "selection:\n  NewProcessName|endswith: '\\bitsadmin.exe'\n  CommandLine|contains:\n  - '/transfer'\n  - '/download'" {
		t.Errorf("stage text %q", rules[0].Stages[1].Text)
	}
	if !strings.HasPrefix(crlf, rules[0].Body) || !strings.HasSuffix(rules[0].Body, "level: medium\r\n") {
		t.Errorf("body not verbatim: ...%q", rules[0].Body[max(0, len(rules[0].Body)-30):])
	}
	d := rules[1].Diagnostics
	if len(d) != 1 || d[0].Pos.Line != 56 || d[0].Pos.Col != 20 {
		t.Errorf("diagnostics %v, want 56:20 (34 seed lines, a marker, condition on line 21 of the second document)", d)
	}
}
