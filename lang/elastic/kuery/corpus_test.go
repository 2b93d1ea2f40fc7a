package kuery

import (
	"sort"
	"strings"
	"testing"

	"github.com/ruledex/ruledex/internal/elasticq"
	"github.com/ruledex/ruledex/rule"
)

// TestCorpus parses every kuery and lucene query of the Elastic rules and reports the
// clean share (no diagnostic, no opaque node) and the share with at least one predicate.
func TestCorpus(t *testing.T) {
	qs := elasticq.Load(t)
	byLang := map[string]int{}
	for _, q := range qs {
		byLang[q.Lang]++
	}
	t.Logf("queries by language: %v", byLang)
	// Independent count (grep of `language = "kuery"` / "lucene" in rules/ and
	// rules_building_block/, every one of which has a query).
	if byLang["kuery"] != 792 || byLang["lucene"] != 1 {
		t.Errorf("extracted %d kuery and %d lucene queries, want 792 and 1", byLang["kuery"], byLang["lucene"])
	}
	for _, lang := range []string{"kuery", "lucene"} {
		var n, clean, withPred int
		codes := map[string]int{}
		var bad []string
		for _, q := range qs {
			if q.Lang != lang {
				continue
			}
			n++
			root, diags := Parse(q.Text, lang == "lucene", rule.Pos{File: q.File, Line: q.Line, Col: 1})
			opaque := false
			rule.Walk(root, func(m *rule.Node, _ bool) bool {
				if m.Op == rule.OpOpaque {
					opaque = true
				}
				return true
			})
			for _, d := range diags {
				codes[d.Code]++
			}
			if len(diags) == 0 && !opaque {
				clean++
			} else if len(bad) < 40 {
				msg := q.File
				if len(diags) > 0 {
					msg = diags[0].String()
				}
				bad = append(bad, msg)
			}
			if len(rule.Preds(root)) > 0 {
				withPred++
			}
		}
		if n == 0 {
			t.Fatalf("no %s queries", lang)
		}
		t.Logf("%s: %d queries, clean %d (%.1f%%), with a predicate %d (%.1f%%), diagnostics %v",
			lang, n, clean, 100*float64(clean)/float64(n), withPred, 100*float64(withPred)/float64(n), codes)
		sort.Strings(bad)
		if float64(clean) < 0.99*float64(n) {
			t.Errorf("%s clean share %.1f%% < 99%%:\n%s", lang, 100*float64(clean)/float64(n), strings.Join(bad, "\n"))
		}
	}
}
