package yaral

import (
	"testing"

	"github.com/ruledex/ruledex/rule"
)

// FuzzParse: any input parses without an internal error (the recover in Parse would
// hide a panic as yaral/internal), every diagnostic is located in the file, and
// every rule has a body, an id and a condition stage.
func FuzzParse(f *testing.F) {
	n := 0
	for _, cf := range corpusFiles(f) {
		// Small files keep the fuzzer fast; a spread of folders gives the coverage.
		if len(cf.data) < 2500 && n < 40 {
			f.Add(cf.data)
			n++
		}
	}
	for _, s := range []string{
		"rule a {\nevents:\n any $e.x = /a\\/b/ nocase\n not $e.y in regex %l\n $e.z = $p\nmatch:\n $p over 5m\ncondition:\n #e > 2\n}",
		"rule a { events: $e1.f = $x $e2.g = $x $e1.metadata.event_timestamp.seconds < $e2.metadata.event_timestamp.seconds match: $x over 1h outcome: $risk_score = max(10) condition: $e1 and $e2 }",
		"rule a {\nmeta:\n k = \"unterminated\nevents:\n re.regex(strings.to_lower($e.f), `x`) = false\ncondition:\n !$e\n}",
		"/* c */ rule a { events: ((((( condition: $e",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, diags := Parser{}.Parse(rule.Source{Path: "f.yaral"}, data)
		for _, r := range rs {
			diags = append(diags, r.Diagnostics...)
			if r.ID == "" || r.Body == "" || len(r.Stages) == 0 || r.Stages[0].Kind != rule.StageCondition {
				t.Fatalf("rule %q incomplete: id %q, %d stages", r.Name, r.ID, len(r.Stages))
			}
		}
		if len(rs) == 0 && len(diags) == 0 {
			t.Fatal("no rule and no diagnostic")
		}
		for _, d := range diags {
			if d.Code == "yaral/internal" {
				t.Fatalf("internal error: %s", d.Message)
			}
			if d.Pos.File != "f.yaral" || d.Pos.Line == 0 {
				t.Fatalf("diagnostic not located: %v", d)
			}
		}
	})
}
