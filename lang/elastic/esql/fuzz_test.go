package esql

import (
	"strings"
	"testing"

	"github.com/ruledex/ruledex/internal/elasticq"
	"github.com/ruledex/ruledex/rule"
)

// FuzzESQL: Parse terminates without panicking on any input, numbers its stages in
// order, locates every diagnostic inside the query, and keeps Root within the stages'
// predicates (every Root predicate is one a stage holds).
func FuzzESQL(f *testing.F) {
	added := 0
	for _, q := range elasticq.Load(f) {
		if q.Lang == "esql" && len(q.Text) < 2500 && added < 60 {
			f.Add(q.Text)
			added++
		}
	}
	for _, s := range []string{
		`from x | where a == (`, `from x | stats | where`, `| | |`, `from x | where a like ("`,
		`from x | eval a = """`, `from x | where not not not`, "from x /* ", `from x | where f(((((`,
		`from x | dissect a "%{`, `from x | where kql("a : (")`, `from x | rename a as`, "from x | where a :: ",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		q := Parse(src, rule.Pos{File: "f", Line: 4, Col: 2})
		if q == nil {
			t.Fatal("nil query")
		}
		lines := strings.Count(src, "\n")
		for _, d := range q.Diags {
			if d.Pos.File != "f" || d.Pos.Line < 4 || d.Pos.Line > 4+lines {
				t.Fatalf("diagnostic outside the query: %s", d)
			}
		}
		inStages := map[*rule.Pred]bool{}
		for i, s := range q.Stages {
			if s.Index != i+1 {
				t.Fatalf("stage %d has index %d", i, s.Index)
			}
			for _, p := range rule.Preds(s.Node) {
				inStages[p.Pred] = true
			}
		}
		for _, p := range rule.Preds(q.Root) {
			if !inStages[p.Pred] {
				t.Fatalf("root predicate %+v in no stage", p.Pred)
			}
		}
	})
}

// BenchmarkParse parses every ES|QL query of the corpus once per iteration.
func BenchmarkParse(b *testing.B) {
	var qs []elasticq.Query
	for _, q := range elasticq.Load(b) {
		if q.Lang == "esql" {
			qs = append(qs, q)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, q := range qs {
			Parse(q.Text, rule.Pos{File: q.File, Line: q.Line})
		}
	}
	b.ReportMetric(float64(len(qs)*b.N)/b.Elapsed().Seconds(), "queries/s")
}
