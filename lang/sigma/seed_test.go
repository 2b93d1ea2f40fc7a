package sigma

import (
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/rule"
)

const seedPath = "windows-bits/win-os-BITS abuse for payload download (command).yaml"

// TestSeed checks the seed page (../shared/seed/rule-page.txt) against the real file.
func TestSeed(t *testing.T) {
	data, err := os.ReadFile(corpustest.Path(t, "sigma", "mdecrevoisier", seedPath))
	if err != nil {
		t.Fatal(err)
	}
	src := rule.Source{Repo: "github.com/mdecrevoisier/SIGMA-detection-rules", Path: seedPath}
	rules, diags := Parser{}.Parse(src, data)
	if len(diags) > 0 || len(rules) != 1 {
		t.Fatalf("got %d rules, diags %v", len(rules), diags)
	}
	r := rules[0]
	if len(r.Diagnostics) > 0 {
		t.Errorf("diagnostics: %v", r.Diagnostics)
	}
	got := map[string]any{
		"title": r.Title, "status": r.Status, "severity": r.Severity, "authors": r.Authors,
		"logsource": r.LogSource, "tactics": r.Tactics, "techniques": r.Techniques,
		"condition": r.Condition, "type": r.Type, "class": r.Class, "language": r.Language,
		"bodylang": r.BodyLang, "falsepositives": r.FalsePositives, "nrefs": len(r.References),
	}
	want := map[string]any{
		"title": "BITS payload downloaded via commandline", "status": "experimental", "severity": "medium",
		"authors":    []string{"mdecrevoisier"},
		"logsource":  rule.LogSource{Product: "windows", Category: "process_creation"},
		"tactics":    []string{"exfiltration", "lateral-movement", "command-and-control", "persistence"},
		"techniques": []string{"T1048", "T1570", "T1105", "T1197"},
		"condition":  "selection", "type": "rule", "class": rule.Detection, "language": rule.Sigma,
		"bodylang": "yaml", "falsepositives": []string{"None"}, "nrefs": 7,
	}
	// The seed has no id: it gets one from its content, whatever the Source says.
	again, _ := Parser{}.Parse(rule.Source{Repo: "elsewhere", Path: "x/y.yml"}, data)
	if len(r.ID) != 16 || len(again) != 1 || again[0].ID != r.ID {
		t.Errorf("content id %q not stable across sources", r.ID)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("metadata (-want +got):\n%s", d)
	}
	if r.Body != string(data) {
		t.Errorf("body is not the file verbatim")
	}
	if r.Description != `Detects scenarios where an attacker downloads a payload by abusing BITS software. For more precise information, inspect "Bits-client" event log and search for ID 59 and 60.` {
		t.Errorf("description %q", r.Description)
	}
	wantStages := []struct {
		kind  rule.StageKind
		label string
		text  string
	}{
		{rule.StageCondition, "condition", "selection"},
		{rule.StageSelection, "selection", "selection:\n  NewProcessName|endswith: '\\bitsadmin.exe'\n  CommandLine|contains:\n  - '/transfer'\n  - '/download'"},
	}
	if len(r.Stages) != len(wantStages) {
		t.Fatalf("%d stages, want %d: %+v", len(r.Stages), len(wantStages), r.Stages)
	}
	for i, w := range wantStages {
		s := r.Stages[i]
		if s.Index != i || s.Kind != w.kind || s.Label != w.label || s.Text != w.text || s.Negated || s.Alt != 0 {
			t.Errorf("stage %d = %d %s %q %q, want %s %q %q", i, s.Index, s.Kind, s.Label, s.Text, w.kind, w.label, w.text)
		}
	}
	preds := rule.Preds(r.Stages[1].Node)
	var gotPreds []rule.Pred
	for _, p := range preds {
		q := *p.Pred
		q.Pos = rule.Pos{}
		gotPreds = append(gotPreds, q)
	}
	wantPreds := []rule.Pred{
		{Field: "NewProcessName", Kind: rule.EndsW, Values: []rule.Value{{S: `\bitsadmin.exe`}}, Native: "NewProcessName|endswith"},
		{Field: "CommandLine", Kind: rule.Match, Values: []rule.Value{{S: "/transfer"}, {S: "/download"}}, Native: "CommandLine|contains"},
	}
	if d := cmp.Diff(wantPreds, gotPreds); d != "" {
		t.Errorf("predicates (-want +got):\n%s", d)
	}
	if p := preds[0].Pred.Pos; p.File != seedPath || p.Line != 27 || p.Col != 5 {
		t.Errorf("first predicate at %+v, want line 27 col 5", p)
	}
}
