package neighbors

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ruledex/ruledex/fieldmap"
	"github.com/ruledex/ruledex/ingest"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/lang/elastic"
	"github.com/ruledex/ruledex/lang/kql"
	"github.com/ruledex/ruledex/lang/sigma"
	"github.com/ruledex/ruledex/lang/spl"
	"github.com/ruledex/ruledex/lang/yaral"
	"github.com/ruledex/ruledex/rule"
	"github.com/ruledex/ruledex/winevent"
)

var (
	corpusOnce  sync.Once
	corpusRules []*rule.Rule
)

// sigmaCorpus parses every Sigma rule of the shared corpus once per test binary.
func sigmaCorpus(tb testing.TB) []*rule.Rule {
	tb.Helper()
	root := corpustest.Path(tb, "sigma")
	corpusOnce.Do(func() {
		var p sigma.Parser
		seen := map[string]bool{}
		filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, path)
			if !p.Detect(rel, data) {
				return nil
			}
			rules, _ := p.Parse(rule.Source{Repo: "corpus", Path: rel}, data)
			for _, r := range rules {
				if seen[Key(r)] { // deprecated copies reuse ids; keep the first
					continue
				}
				seen[Key(r)] = true
				corpusRules = append(corpusRules, r)
			}
			return nil
		})
	})
	if len(corpusRules) < 3000 {
		tb.Fatalf("parsed only %d Sigma rules from %s", len(corpusRules), root)
	}
	return corpusRules
}

func byTitle(tb testing.TB, rules []*rule.Rule, title string) *rule.Rule {
	tb.Helper()
	for _, r := range rules {
		if r.Title == title && !strings.Contains(r.Source.Path, "deprecated") {
			return r
		}
	}
	tb.Fatalf("no rule titled %q", title)
	return nil
}

func related(m map[string][]Relation, from, to string) (Relation, bool) {
	for _, r := range m[from] {
		if r.Key == to {
			return r, true
		}
	}
	return Relation{}, false
}

func TestCorpusPairs(t *testing.T) {
	f := corpusFixture(t)
	rules, res := f.rules, f.res
	t.Logf("%d rules: %d classes", len(rules), len(res.Classes))

	newPS := byTitle(t, rules, "New PowerShell Instance Created")
	altPipe := byTitle(t, rules, "Alternate PowerShell Hosts Pipe")
	rel, ok := related(res.Stricter, Key(newPS), Key(altPipe))
	if !ok {
		t.Fatalf("%q should list %q as stricter; stricter = %v", newPS.Title, altPipe.Title, res.Stricter[Key(newPS)])
	}
	if !strings.Contains(rel.Difference, "adds 2 filters") {
		t.Errorf("difference = %q, want it to say the two added filters", rel.Difference)
	}
	if _, ok := related(res.Broader, Key(altPipe), Key(newPS)); !ok {
		t.Errorf("%q should list %q as broader", altPipe.Title, newPS.Title)
	}

	// The reference site claims this pair is related; an event from
	// C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe writing a module matches
	// the first rule and is filtered out by the second, so neither contains the other.
	mod := byTitle(t, rules, "PowerShell Module File Created")
	modNon := byTitle(t, rules, "PowerShell Module File Created By Non-PowerShell Process")
	for _, m := range []map[string][]Relation{res.Stricter, res.Broader, res.Equivalent} {
		if _, ok := related(m, Key(mod), Key(modNon)); ok {
			t.Errorf("claimed a relation between %q and %q", mod.Title, modNon.Title)
		}
		if _, ok := related(m, Key(modNon), Key(mod)); ok {
			t.Errorf("claimed a relation between %q and %q", modNon.Title, mod.Title)
		}
	}
}

func BenchmarkComputeCorpus(b *testing.B) {
	rules := sigmaCorpus(b)
	fm := fieldmap.Default()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		Compute(fm, rules, Options{})
	}
	b.ReportMetric(float64(len(rules)), "rules")
}

// allLanguages parses the whole corpus (Sigma, KQL, SPL, Elastic, YARA-L) as ingest would.
func allLanguages(tb testing.TB) []*rule.Rule {
	tb.Helper()
	root := corpustest.Dir(tb)
	sp := &spl.Parser{}
	if err := sp.Begin(filepath.Join(root, "spl")); err != nil {
		tb.Fatal(err)
	}
	parsers := []ingest.Parser{sigma.Parser{}, kql.Parser{}, sp, elastic.Parser{}, yaral.Parser{}}
	var out []*rule.Rule
	for _, dir := range []string{"sigma", "kql", "spl", "elastic", "yaral"} {
		base := filepath.Join(root, dir)
		filepath.WalkDir(base, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(base, path)
			rel = filepath.ToSlash(rel)
			for _, p := range parsers {
				if p.Detect(rel, data) {
					rules, _ := p.Parse(rule.Source{Repo: dir, Path: rel}, data)
					out = append(out, rules...)
					break
				}
			}
			return nil
		})
	}
	if len(out) < 8000 {
		tb.Fatalf("parsed only %d rules from the corpus", len(out))
	}
	return out
}

// BenchmarkComputeAllLanguages is issue 6's speed target: all neighbors of the whole
// corpus (~9,000 rules in three languages) in at most 10 s on 2 cores.
func BenchmarkComputeAllLanguages(b *testing.B) {
	rules := allLanguages(b)
	cat, err := winevent.Load(corpustest.Path(b, "events"))
	if err != nil {
		b.Fatal(err)
	}
	opts := Options{Coverage: coverageKeys(cat)}
	fm := fieldmap.Default()
	b.ResetTimer()
	var res *Result
	for i := 0; i < b.N; i++ {
		res = Compute(fm, rules, opts)
	}
	pairs := 0
	for _, rs := range res.Stricter {
		pairs += len(rs)
	}
	b.ReportMetric(float64(len(rules)), "rules")
	b.ReportMetric(float64(pairs), "stricter-pairs")
}
