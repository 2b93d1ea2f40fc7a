package esql

import (
	"sort"
	"strings"
	"testing"

	"github.com/ruledex/ruledex/internal/elasticq"
	"github.com/ruledex/ruledex/rule"
)

func opaqueIn(q *Query) bool {
	if q.Root == nil && len(q.Stages) == 0 {
		return true
	}
	found := false
	check := func(n *rule.Node) {
		rule.Walk(n, func(m *rule.Node, _ bool) bool {
			if m.Op == rule.OpOpaque {
				found = true
			}
			return true
		})
	}
	check(q.Root)
	for _, s := range q.Stages {
		if s.Kind == rule.StageOpaque {
			found = true
		}
		check(s.Node)
	}
	return found
}

// TestCorpus parses every ES|QL query of the Elastic rules and hunting files and
// reports, for rules and hunting queries apart: clean share (no diagnostic, nothing
// opaque), share with a predicate in Root, and share that is an aggregation.
func TestCorpus(t *testing.T) {
	qs := elasticq.Load(t)
	type tally struct{ n, clean, rootPred, anyPred, agg, computed int }
	tl := map[string]*tally{"rules": {}, "hunting": {}}
	codes := map[string]int{}
	var bad []string
	for _, cq := range qs {
		if cq.Lang != "esql" {
			continue
		}
		kind := "rules"
		if strings.HasPrefix(cq.File, "hunting/") {
			kind = "hunting"
		}
		tt := tl[kind]
		tt.n++
		q := Parse(cq.Text, rule.Pos{File: cq.File, Line: cq.Line, Col: 1})
		for _, d := range q.Diags {
			codes[d.Code]++
		}
		if len(q.Diags) == 0 && !opaqueIn(q) {
			tt.clean++
		} else {
			msg := cq.File
			if len(q.Diags) > 0 {
				msg = q.Diags[0].String()
			}
			bad = append(bad, msg)
		}
		if len(rule.Preds(q.Root)) > 0 {
			tt.rootPred++
		}
		for _, s := range q.Stages {
			if len(rule.Preds(s.Node)) > 0 {
				tt.anyPred++
				break
			}
		}
		if q.Aggregation {
			tt.agg++
		}
		if len(q.Computed) > 0 {
			tt.computed++
		}
	}
	pct := func(a, b int) float64 { return 100 * float64(a) / float64(max(b, 1)) }
	for _, k := range []string{"rules", "hunting"} {
		tt := tl[k]
		t.Logf("esql %s: %d queries, clean %d (%.1f%%), root predicate %d (%.1f%%), any predicate %d (%.1f%%), aggregation %d, computed columns %d",
			k, tt.n, tt.clean, pct(tt.clean, tt.n), tt.rootPred, pct(tt.rootPred, tt.n), tt.anyPred, pct(tt.anyPred, tt.n), tt.agg, tt.computed)
	}
	t.Logf("diagnostics: %v", codes)
	sort.Strings(bad)
	if len(bad) > 40 {
		bad = bad[:40]
	}
	// Hunting files are notes as much as queries: some keep a Markdown fence tag before
	// FROM or do not parse in ES|QL itself (`=` for `==`, a trailing `or`), and those
	// are reported as warnings, so the bar is lower there.
	// Independent count: grep -l 'language = "esql"' over rules/ and rules_building_block/.
	if tl["rules"].n != 212 {
		t.Errorf("extracted %d ES|QL rules, want 212", tl["rules"].n)
	}
	if r := tl["rules"]; float64(r.clean) < 0.99*float64(r.n) {
		t.Errorf("rules clean share %.1f%% < 99%%:\n%s", pct(r.clean, r.n), strings.Join(bad, "\n"))
	}
	if h := tl["hunting"]; float64(h.clean) < 0.85*float64(h.n) {
		t.Errorf("hunting clean share %.1f%% < 85%%:\n%s", pct(h.clean, h.n), strings.Join(bad, "\n"))
	}
}
