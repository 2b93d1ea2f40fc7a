package page

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/rule"
)

// Names as the ATT&CK bundle gives them (../shared/corpus/attack/enterprise-attack.json).
var (
	tactics = []catalog.Tactic{
		{Short: "persistence", ID: "TA0003", Name: "Persistence", Order: 3},
		{Short: "defense-evasion", ID: "TA0005", Name: "Defense Evasion", Order: 5},
		{Short: "lateral-movement", ID: "TA0008", Name: "Lateral Movement", Order: 8},
		{Short: "command-and-control", ID: "TA0011", Name: "Command and Control", Order: 11},
		{Short: "exfiltration", ID: "TA0010", Name: "Exfiltration", Order: 12},
	}
	techniques = []catalog.Technique{
		{ID: "T1197", Name: "BITS Jobs", Tactics: []string{"defense-evasion", "persistence"}},
		{ID: "T1105", Name: "Ingress Tool Transfer", Tactics: []string{"command-and-control"}},
		{ID: "T1048", Name: "Exfiltration Over Alternative Protocol", Tactics: []string{"exfiltration"}},
		{ID: "T1570", Name: "Lateral Tool Transfer", Tactics: []string{"lateral-movement"}},
		{ID: "T1086", Name: "PowerShell", Tactics: []string{"execution"}, Revoked: true, RevokedBy: "T1059.001"},
	}
)

func TestAttackRows(t *testing.T) {
	tests := []struct {
		name      string
		tac, tech []string
		noData    bool
		want      []string
	}{
		{"seed: rule order, technique under the named tactic only",
			[]string{"exfiltration", "lateral-movement", "command-and-control", "persistence"}, []string{"T1048", "T1570", "T1105", "T1197"}, false,
			[]string{"Exfiltration: T1048 Exfiltration Over Alternative Protocol", "Lateral Movement: T1570 Lateral Tool Transfer",
				"Command and Control: T1105 Ingress Tool Transfer", "Persistence: T1197 BITS Jobs"}},
		{"tactic without technique, technique without named tactic, revoked and unknown ids",
			[]string{"exfiltration"}, []string{"T1197", "T1086", "T9999"}, false,
			[]string{"Exfiltration:", "Persistence (untagged): T1197 BITS Jobs", "Defense Evasion (untagged): T1197 BITS Jobs",
				"Execution (untagged): T1086 PowerShell revoked by T1059.001", ": T9999 unknown"}},
		{"no ATT&CK data: names spelled from short names, techniques unplaced",
			[]string{"command-and-control"}, []string{"T1105"}, true,
			[]string{"Command and Control:", ": T1105"}},
	}
	for _, tt := range tests {
		r := &rule.Rule{Tactics: tt.tac, Techniques: tt.tech}
		var rows []AttackRow
		if tt.noData {
			rows = attackRows(r, nil, nil)
		} else {
			rows = attackRows(r, tactics, techniques)
		}
		var got []string
		for _, row := range rows {
			s := row.Tactic.Name
			if row.Tactic.Short != "" && !row.Tactic.Named {
				s += " (untagged)"
			}
			s += ":"
			for _, tq := range row.Techniques {
				s += " " + tq.ID
				if tq.Name != "" {
					s += " " + tq.Name
				}
				if tq.Revoked {
					s += " revoked by " + tq.RevokedBy
				}
				if tq.Unknown {
					s += " unknown"
				}
			}
			got = append(got, s)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

func pred(field string, kind rule.Kind, vals ...string) *rule.Node {
	p := &rule.Pred{Field: field, Kind: kind}
	for _, v := range vals {
		p.Values = append(p.Values, rule.Value{S: v})
	}
	return rule.Leaf(p)
}

// alternativesRule is `(a and not f) or b`, written by hand.
func alternativesRule() *rule.Rule {
	a := rule.Ref("a", pred("Image", rule.EndsW, `\x.exe`))
	f := rule.Not(rule.Ref("f", pred("User", rule.Eq, "SYSTEM", "LOCAL SERVICE")))
	b := rule.Ref("b", pred("CommandLine", rule.Match, "-enc", " -e "))
	r := &rule.Rule{ID: "r1", Language: rule.Sigma, Title: "Alt", Status: "test", Type: "rule",
		LogSource: rule.LogSource{Product: "windows", Category: "process_creation"},
		Stages: []rule.Stage{
			{Index: 0, Kind: rule.StageCondition, Label: "condition", Text: "(a and not f) or b"},
			{Index: 1, Alt: 1, Kind: rule.StageSelection, Label: "a", Text: "a:\n  Image|endswith: '\\x.exe'", Node: a},
			{Index: 2, Alt: 1, Kind: rule.StageSelection, Label: "not f", Negated: true, Text: "f:\n  User:\n  - SYSTEM", Node: f},
			{Index: 3, Alt: 2, Kind: rule.StageSelection, Label: "b", Text: "b:\n  CommandLine|contains: ...", Node: b},
		},
		Indicators: []rule.Indicator{
			{Field: "Image", Canonical: "Image", Kind: rule.EndsW, Value: `\x.exe`, Key: "k-x", Stage: 1},
			{Field: "User", Canonical: "User", Kind: rule.Eq, Value: "SYSTEM", Key: "k-sys", Stage: 2, Negated: true},
			{Field: "CommandLine", Canonical: "CommandLine", Kind: rule.Match, Value: "-enc", Key: "k-enc", Stage: 3},
			{Field: "CommandLine", Canonical: "CommandLine", Kind: rule.Match, Value: " -e ", Key: "k-e", Stage: 3},
		},
	}
	return r
}

func TestBuildRuleSections(t *testing.T) {
	r := alternativesRule()
	counts := map[string]catalog.Count{
		"k-x":   {Key: "k-x", Total: 5, ByLanguage: []catalog.LangCount{{Language: rule.Sigma, Rules: 4}, {Language: rule.Kusto, Rules: 1}}},
		"k-enc": {Key: "k-enc", Total: 1, ByLanguage: []catalog.LangCount{{Language: rule.Sigma, Rules: 1}}},
	}
	p := BuildRule(r, Input{Counts: counts})
	if p.URL != "/rules/sigma/r1/" || p.Alternatives != 2 {
		t.Errorf("url %q alternatives %d", p.URL, p.Alternatives)
	}
	wantMeta := []MetaItem{{Label: "Status", Value: "test"}, {Label: "Log source", Value: "product windows, category process_creation"}}
	if diff := cmp.Diff(wantMeta, p.Meta); diff != "" {
		t.Errorf("meta (-want +got):\n%s", diff)
	}
	wantEx := []ExclusionRow{{Stage: 2, StageLabel: "not f", Field: "User", Kind: rule.Eq, Values: []string{"LOCAL SERVICE", "SYSTEM"}}}
	if diff := cmp.Diff(wantEx, p.Exclusions); diff != "" {
		t.Errorf("exclusions (-want +got):\n%s", diff)
	}
	// Rows by field, values sorted, exclusions left out, counts only when shared.
	var got []string
	for _, row := range p.Indicators {
		for _, v := range row.Values {
			got = append(got, row.Field+" "+string(row.Kind)+" "+v.Value+" | "+v.CorpusText())
		}
	}
	want := []string{"CommandLine match  -e  | ", "CommandLine match -enc | ", `Image ends_with \x.exe | corpus 5 (sigma 4, kusto 1)`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("indicators (-want +got):\n%s", diff)
	}

	var buf bytes.Buffer
	if err := WriteText(&buf, p); err != nil {
		t.Fatal(err)
	}
	text := buf.String()
	for _, w := range []string{
		"Stage 0: condition\n\n(a and not f) or b\n\nAlternative 1 of 2 (the rule matches when any one alternative holds)\n\nStage 1: a\n",
		"\nStage 2: not f\n",
		"\nAlternative 2 of 2 (the rule matches when any one alternative holds)\n\nStage 3: b\n",
		"\nExclusions\n\nStage   Field   Kind   Excluded values\nnot f   User    eq     LOCAL SERVICE\n                       SYSTEM\n",
		"\nField         Kind        Values\nCommandLine   match       ' -e '\n                          -enc\n",
		`Image         ends_with   \x.exe   corpus 5 (sigma 4, kusto 1)`,
	} {
		if !strings.Contains(text, w) {
			t.Errorf("text lacks %q\n--- text:\n%s", w, text)
		}
	}
	// Empty sections are left out.
	for _, absent := range []string{"References", "MITRE ATT&CK", "Event coverage", "Output fields", "Diagnostics", "Rule body"} {
		if strings.Contains(text, absent) {
			t.Errorf("empty section %q shown", absent)
		}
	}
}

func TestBannerForNonDetections(t *testing.T) {
	for _, c := range []rule.Class{rule.VendorFeed, rule.BuildingBlock, rule.Hunting} {
		if BuildRule(&rule.Rule{Class: c}, Input{}).Banner == "" {
			t.Errorf("class %s: no banner", c)
		}
	}
	if b := BuildRule(&rule.Rule{Class: rule.Detection}, Input{}).Banner; b != "" {
		t.Errorf("detection has banner %q", b)
	}
}

// TestIndicatorRowsOrderFixed: rows of one field written in two cases (SPL rules test
// eventType and eventtype) come in one order every time, so two exports of a catalog
// are the same files.
func TestIndicatorRowsOrderFixed(t *testing.T) {
	r := &rule.Rule{}
	for _, f := range []string{"eventtype", "eventType", "EventType", "Web.url", "web.url"} {
		r.Indicators = append(r.Indicators, rule.Indicator{Field: f, Canonical: "EventType", Kind: rule.Eq, Value: "v-" + f, Key: f})
	}
	want := []string{"EventType", "eventType", "eventtype", "Web.url", "web.url"}
	for range 50 {
		var got []string
		for _, row := range indicators(r, nil) {
			got = append(got, row.Field)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Fatalf("row order (-want +got):\n%s", d)
		}
	}
}
