package spl

import (
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/rule"
)

// FuzzParseSearch feeds arbitrary searches through expansion (with the ESCU macros and a
// cycle) and parsing. The parser recovers from its own panics into an spl/internal
// error, so the target fails on that diagnostic rather than relying on a crash.
func FuzzParseSearch(f *testing.F) {
	_, files := escuFiles(f)
	for i, ef := range files {
		if i%40 != 0 { // ~45 real searches of every shape
			continue
		}
		var d struct {
			Search string `yaml:"search"`
		}
		if yaml.Unmarshal(ef.data, &d) == nil && d.Search != "" {
			f.Add(d.Search)
		}
	}
	for _, s := range []string{
		"`sysmon` EventCode=1 NOT (a=1 OR b IN (\"*x*\", y*)) | where like(lower(p), \"%a_b%\") AND NOT isnull(q)",
		"`loop_a` | `drop_dm_object_name(Processes)` | `security_content_ctime(firstTime)`",
		"| tstats count from datamodel=Endpoint.Processes where Processes.process=\"*\\\\x\\\\*\" by Processes.dest | where count > 5",
		"a=\"unterminated | b=`m(\"x\", | ```comment",
		"x=*\\\"y\\\":true* [search z=1 | stats count] | eval a=if(b==\"c\", 1, 0), d='e f'",
		"| where match(x, \"(?i)a|b\") OR searchmatch(\"k=v*\") OR cidrmatch(\"10.0.0.0/8\", ip)",
	} {
		f.Add(s)
	}
	m := NewMacroSet()
	if _, err := m.LoadTree(corpustest.Path(f, "spl", "splunk")); err != nil {
		f.Fatal(err)
	}
	m.Add(Macro{Name: "loop_a", Definition: "x=1 `loop_b`"})
	m.Add(Macro{Name: "loop_b", Definition: "`loop_a` `loop_b`"})
	f.Fuzz(func(t *testing.T, s string) {
		start := time.Now()
		stages, root, diags := m.ParseSearch(s)
		if el := time.Since(start); el > 2*time.Second {
			t.Errorf("ParseSearch took %v on %d bytes", el, len(s))
		}
		for _, d := range diags {
			if d.Code == "spl/internal" {
				t.Fatalf("parser panicked on %q: %s", s, d.Message)
			}
			if d.Severity == rule.Error {
				t.Errorf("error diagnostic on %q: %v", s, d)
			}
		}
		if len(stages) == 0 || stages[0].Kind != rule.StageCondition || stages[0].Text != s {
			t.Fatalf("stage 0 is not the search as written: %+v", stages)
		}
		for i, st := range stages {
			if st.Index != i {
				t.Errorf("stage %d has index %d", i, st.Index)
			}
		}
		for _, pp := range rule.Preds(root) {
			if pp.Pred.Field == "" && pp.Pred.Kind != rule.Keyword {
				t.Errorf("predicate without field: %+v", pp.Pred)
			}
			if pp.Pred.Pos.Line < 1 || pp.Pred.Pos.Col < 1 {
				t.Errorf("predicate without position: %+v", pp.Pred)
			}
		}
	})
}

// BenchmarkParseESCU parses every ESCU detection (macros loaded once, as an ingest does).
func BenchmarkParseESCU(b *testing.B) {
	root, files := escuFiles(b)
	p := &Parser{}
	if err := p.Begin(root); err != nil {
		b.Fatal(err)
	}
	var bytes int64
	for _, f := range files {
		bytes += int64(len(f.data))
	}
	b.SetBytes(bytes)
	b.ResetTimer()
	rules := 0
	for i := 0; i < b.N; i++ {
		for _, f := range files {
			rs, _ := p.Parse(rule.Source{Repo: "github.com/splunk/security_content", Path: f.rel}, f.data)
			rules += len(rs)
		}
	}
	b.ReportMetric(float64(rules)/b.Elapsed().Seconds(), "rules/s")
}

// BenchmarkBeginESCU measures loading the macros of the ESCU tree.
func BenchmarkBeginESCU(b *testing.B) {
	root := corpustest.Path(b, "spl", "splunk")
	for i := 0; i < b.N; i++ {
		p := &Parser{}
		if err := p.Begin(root); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseSearchESCU is the SPL part alone (expansion, stages, predicates), without
// the YAML decoding that dominates BenchmarkParseESCU.
func BenchmarkParseSearchESCU(b *testing.B) {
	root, files := escuFiles(b)
	m := NewMacroSet()
	if _, err := m.LoadTree(root); err != nil {
		b.Fatal(err)
	}
	var searches []string
	for _, ef := range files {
		var d struct {
			Search string `yaml:"search"`
		}
		if yaml.Unmarshal(ef.data, &d) == nil {
			searches = append(searches, d.Search)
		}
	}
	b.ResetTimer()
	n := 0
	for i := 0; i < b.N; i++ {
		for _, s := range searches {
			m.ParseSearch(s)
			n++
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "searches/s")
}
