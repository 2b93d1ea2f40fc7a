package translate

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ruledex/ruledex/fieldmap"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/lang/elastic"
	"github.com/ruledex/ruledex/lang/kql"
	"github.com/ruledex/ruledex/lang/sigma"
	"github.com/ruledex/ruledex/lang/spl"
	"github.com/ruledex/ruledex/lang/yaral"
	"github.com/ruledex/ruledex/rule"
	"github.com/ruledex/ruledex/source"
)

// parser is what the lang packages provide (as ingest.Parser; ingest is not imported
// so the test stays at translate's level).
type parser interface {
	Language() rule.Language
	Detect(path string, data []byte) bool
	Parse(src rule.Source, data []byte) ([]*rule.Rule, []rule.Diagnostic)
}

type rootAware interface{ Begin(root string) error }

func testParsers() []parser {
	return []parser{sigma.Parser{}, kql.Parser{}, &spl.Parser{}, elastic.Parser{}, yaral.Parser{}}
}

// testReader parses a translation back with the parser of its language.
func testReader(ps []parser) Reader {
	return func(lang rule.Language, name string, data []byte) ([]*rule.Rule, error) {
		for _, p := range ps {
			if p.Language() != lang {
				continue
			}
			if !p.Detect(name, data) {
				return nil, fmt.Errorf("the %s parser does not recognize %s", lang, name)
			}
			rs, diags := p.Parse(rule.Source{Repo: "translation", Path: name}, data)
			for _, d := range diags {
				if d.Severity == rule.Error {
					return nil, fmt.Errorf("%s", d)
				}
			}
			return rs, nil
		}
		return nil, fmt.Errorf("no %s parser", lang)
	}
}

// loadRules parses every rule file under dirs with ps.
func loadRules(t testing.TB, ps []parser, dirs ...string) []*rule.Rule {
	t.Helper()
	var out []*rule.Rule
	for _, dir := range dirs {
		for _, p := range ps {
			if ra, ok := p.(rootAware); ok {
				if err := ra.Begin(dir); err != nil {
					t.Logf("%s: %v", dir, err)
				}
			}
		}
		files, err := source.Walk(dir, func(p string, err error) { t.Logf("%s: %v", p, err) })
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			data, err := os.ReadFile(f.Abs)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range ps {
				if !p.Detect(f.Rel, data) {
					continue
				}
				rs, _ := p.Parse(rule.Source{Repo: filepath.Base(dir), Path: f.Rel}, data)
				out = append(out, rs...)
				break
			}
		}
	}
	return out
}

// TestCorpusRoundTrip translates every rule of the corpus into every target whose
// parser is available and checks that each emitted translation reads back as the same
// rule. A translation that Translate produces but Verify rejects is a defect of the
// writer: there must be none. The share of rules translated is logged per pair.
func TestCorpusRoundTrip(t *testing.T) {
	root := corpustest.Dir(t)
	ps := testParsers()
	rules := loadRules(t, ps,
		filepath.Join(root, "sigma", "sigmahq", "rules", "windows"),
		filepath.Join(root, "kql"),
		filepath.Join(root, "spl", "splunk"),
		filepath.Join(root, "elastic", "detection-rules"),
		filepath.Join(root, "yaral", "chronicle"))
	fm := fieldmap.Default()
	read := testReader(ps)
	type pair struct {
		from rule.Language
		to   Target
	}
	single, translated, verified := map[pair]int{}, map[pair]int{}, map[pair]int{}
	reasons := map[pair]map[string]int{}
	var bad []string
	for _, r := range rules {
		for _, to := range Targets {
			k := pair{r.Language, to}
			res, err := Translate(fm, r, to, Options{})
			if err != nil {
				if reasons[k] == nil {
					reasons[k] = map[string]int{}
				}
				reasons[k][ReasonClass(err)]++
				continue
			}
			single[k]++
			translated[k]++
			if err := Verify(fm, r, res, read); err != nil {
				bad = append(bad, fmt.Sprintf("%s %s → %s: %v\n%s", r.Language, r.Source.Path, to, err, res.Query))
				continue
			}
			verified[k]++
		}
	}
	var keys []pair
	for k := range reasons {
		keys = append(keys, k)
	}
	for k := range translated {
		if reasons[k] == nil {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].from != keys[j].from {
			return keys[i].from < keys[j].from
		}
		return keys[i].to < keys[j].to
	})
	for _, k := range keys {
		total := translated[k]
		for _, n := range reasons[k] {
			total += n
		}
		t.Logf("%-6s → %-5s translated %5d / %5d, verified %5d; top reasons: %s", k.from, k.to, translated[k], total, verified[k], topReasons(reasons[k], 3))
	}
	for i, b := range bad {
		if i >= 15 {
			t.Errorf("... and %d more", len(bad)-15)
			break
		}
		t.Error(b)
	}
}

func topReasons(m map[string]int, n int) string {
	type kv struct {
		k string
		v int
	}
	var xs []kv
	for k, v := range m {
		xs = append(xs, kv{k, v})
	}
	sort.Slice(xs, func(i, j int) bool { return xs[i].v > xs[j].v || xs[i].v == xs[j].v && xs[i].k < xs[j].k })
	var out []string
	for i, x := range xs {
		if i >= n {
			break
		}
		out = append(out, fmt.Sprintf("%d× %s", x.v, x.k))
	}
	return strings.Join(out, "; ")
}
