package kuery

import (
	"strings"
	"testing"

	"github.com/ruledex/ruledex/internal/elasticq"
	"github.com/ruledex/ruledex/rule"
)

// seed adds up to n real queries of language lang, preferring short ones, and the
// table-test snippets.
func seed(f *testing.F, lang string, n int, extra ...string) {
	added := 0
	for _, q := range elasticq.Load(f) {
		if q.Lang == lang && len(q.Text) < 1500 && added < n {
			f.Add(q.Text)
			added++
		}
	}
	for _, s := range extra {
		f.Add(s)
	}
}

// checkParse: Parse terminates without panicking, returns a tree, and locates every
// diagnostic inside the query.
func checkParse(t *testing.T, q string, lucene bool) {
	at := rule.Pos{File: "f", Line: 7, Col: 3}
	n, diags := Parse(q, lucene, at)
	if n == nil {
		t.Fatal("nil tree")
	}
	lines := strings.Count(q, "\n")
	for _, d := range diags {
		if d.Pos.File != "f" || d.Pos.Line < 7 || d.Pos.Line > 7+lines || d.Pos.Col < 1 {
			t.Fatalf("diagnostic outside the query: %s", d)
		}
	}
	rule.Walk(n, func(m *rule.Node, _ bool) bool {
		if m.Op == rule.OpPred && m.Pred == nil {
			t.Fatal("pred node without predicate")
		}
		if m.Op == rule.OpNot && len(m.Children) != 1 {
			t.Fatal("not node without one child")
		}
		return true
	})
}

func FuzzKuery(f *testing.F) {
	seed(f, "kuery", 60, "a : (x or (y and not z)", `a:{ b : "c\" }`, `\`, `not not not`, "a < ", `"\u12`)
	f.Fuzz(func(t *testing.T, q string) { checkParse(t, q, false) })
}

func FuzzLucene(f *testing.F) {
	seed(f, "lucene", 5, "a:[1 TO", "+-!a", `/x\/`, "a:(b OR (c AND", `_exists_:`, "x~2^3", "a:{* TO *}")
	f.Fuzz(func(t *testing.T, q string) { checkParse(t, q, true) })
}

// BenchmarkParse parses every kuery and lucene query of the corpus once per iteration
// and reports queries per second.
func BenchmarkParse(b *testing.B) {
	var qs []elasticq.Query
	for _, q := range elasticq.Load(b) {
		if q.Lang == "kuery" || q.Lang == "lucene" {
			qs = append(qs, q)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, q := range qs {
			Parse(q.Text, q.Lang == "lucene", rule.Pos{File: q.File, Line: q.Line})
		}
	}
	b.ReportMetric(float64(len(qs)*b.N)/b.Elapsed().Seconds(), "queries/s")
}
