package kql

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ruledex/ruledex/fieldmap"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/rule"
)

type collStats struct {
	files, rules, staged, clean, indicators, vendor, variants int
	failures                                                  []string
	noInd                                                     []string
}

// parseCorpus parses every file under corpus/kql that the parser detects.
func parseCorpus(tb testing.TB) (map[string]*collStats, []*rule.Rule) {
	tb.Helper()
	root := corpustest.Path(tb, "kql")
	stats := map[string]*collStats{}
	var all []*rule.Rule
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		coll, inner, _ := strings.Cut(rel, "/")
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var ps Parser
		if !ps.Detect(inner, data) {
			return nil
		}
		st := stats[coll]
		if st == nil {
			st = &collStats{}
			stats[coll] = st
		}
		st.files++
		rs, _ := ps.Parse(rule.Source{Repo: "corpus/kql/" + coll, Path: inner}, data)
		for _, r := range rs {
			all = append(all, r)
			st.rules++
			if len(r.Stages) > 1 {
				st.staged++
			}
			if len(r.Stages) > 1 && !r.HasErrors() {
				st.clean++
			} else {
				msg := rel + ": " + r.Title
				for _, d := range r.Diagnostics {
					if d.Severity == rule.Error {
						msg += "\n    " + d.String()
						break
					}
				}
				st.failures = append(st.failures, msg)
			}
			if len(fieldmap.Default().Indicators(r)) > 0 {
				st.indicators++
			} else {
				st.noInd = append(st.noInd, rel+": "+r.Title)
			}
			if r.Class == rule.VendorFeed {
				st.vendor++
			}
			if len(r.Bodies) > 0 {
				st.variants++
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return stats, all
}

// TestCorpus is the acceptance test of issue 4 for KQL: at least 95% of the queries
// become rules with a stage beyond the condition and no error, 85% with an indicator.
func TestCorpus(t *testing.T) {
	stats, _ := parseCorpus(t)
	var names []string
	for k := range stats {
		names = append(names, k)
	}
	sort.Strings(names)
	var tot collStats
	for _, n := range names {
		s := stats[n]
		t.Logf("%-15s files %4d rules %4d clean %4d (%.1f%%) indicators %4d (%.1f%%) vendor-feed %d variants %d",
			n, s.files, s.rules, s.clean, pct(s.clean, s.rules), s.indicators, pct(s.indicators, s.rules), s.vendor, s.variants)
		tot.files += s.files
		tot.rules += s.rules
		tot.clean += s.clean
		tot.indicators += s.indicators
		if os.Getenv("KQL_VERBOSE") != "" {
			for _, f := range s.failures {
				t.Logf("  fail %s", f)
			}
			for _, f := range s.noInd {
				t.Logf("  no indicator %s", f)
			}
		}
	}
	t.Logf("%-15s files %4d rules %4d clean %4d (%.1f%%) indicators %4d (%.1f%%)", "total",
		tot.files, tot.rules, tot.clean, pct(tot.clean, tot.rules), tot.indicators, pct(tot.indicators, tot.rules))
	for _, n := range []string{"alexverboon", "azure-sentinel", "bert-janp", "falconfriday", "jkerai1", "m365-defender", "reprise99", "slimkql"} {
		if stats[n] == nil || stats[n].rules == 0 {
			t.Errorf("collection %s: no rules", n)
		}
	}
	if p := pct(tot.clean, tot.rules); p < 95 {
		t.Errorf("clean rules %.1f%% < 95%%", p)
	}
	if p := pct(tot.indicators, tot.rules); p < 85 {
		t.Errorf("rules with indicators %.1f%% < 85%%", p)
	}
}

func pct(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

// BenchmarkParseKQLCorpus parses every KQL file of the corpus; rules/s is reported.
func BenchmarkParseKQLCorpus(b *testing.B) {
	root := corpustest.Path(b, "kql")
	type file struct {
		rel  string
		data []byte
	}
	var files []file
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		data, err := os.ReadFile(p)
		if err == nil && (Parser{}).Detect(filepath.ToSlash(rel), data) {
			files = append(files, file{filepath.ToSlash(rel), data})
		}
		return nil
	})
	var bytes int64
	for _, f := range files {
		bytes += int64(len(f.data))
	}
	b.SetBytes(bytes)
	b.ResetTimer()
	rules := 0
	for i := 0; i < b.N; i++ {
		for _, f := range files {
			rs, _ := Parser{}.Parse(rule.Source{Path: f.rel}, f.data)
			rules += len(rs)
		}
	}
	b.ReportMetric(float64(rules)/b.Elapsed().Seconds(), "rules/s")
}
