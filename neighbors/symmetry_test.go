package neighbors

import (
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ruledex/ruledex/fieldmap"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/rule"
	"github.com/ruledex/ruledex/winevent"
)

// allFixture is every language of the corpus with its neighbors, built once.
type allFix struct {
	rules []*rule.Rule
	cat   *winevent.Catalog
	res   *Result
}

var (
	allOnce sync.Once
	allF    allFix
	allErr  error
)

func allLanguageFixture(t *testing.T) allFix {
	t.Helper()
	rules := allLanguages(t)
	events := corpustest.Path(t, "events")
	allOnce.Do(func() {
		allF.rules = rules
		allF.cat, allErr = winevent.Load(events)
		if allErr != nil {
			return
		}
		allF.res = Compute(fieldmap.Default(), rules, Options{Coverage: coverageKeys(allF.cat)})
	})
	if allErr != nil {
		t.Fatal(allErr)
	}
	return allF
}

// TestSymmetryAllLanguages checks issue 11's symmetry over the whole corpus: A
// equivalent to B iff B equivalent to A (with the same basis), A stricter than B iff B
// broader than A, every class has two or more members and agrees with Equivalent, and
// no pair is both equivalent and stricter.
func TestSymmetryAllLanguages(t *testing.T) {
	f := allLanguageFixture(t)
	res := f.res
	type edge struct{ from, to string }
	index := func(m map[string][]Relation) map[edge]Relation {
		out := map[edge]Relation{}
		for k, rs := range m {
			for _, r := range rs {
				if r.Key == k {
					t.Errorf("%s related to itself", k)
				}
				if r.Basis != BasisSame && r.Basis != BasisFieldMap {
					t.Errorf("%s → %s: basis %q", k, r.Key, r.Basis)
				}
				out[edge{k, r.Key}] = r
			}
		}
		return out
	}
	eq, st, br := index(res.Equivalent), index(res.Stricter), index(res.Broader)
	for e, r := range eq {
		back, ok := eq[edge{e.to, e.from}]
		if !ok {
			t.Errorf("%s lists %s as equivalent, not the reverse", e.from, e.to)
		} else if back.Basis != r.Basis {
			t.Errorf("%s ⇄ %s: basis %s one way, %s the other", e.from, e.to, r.Basis, back.Basis)
		}
		if res.Forms[e.from].EqID != res.Forms[e.to].EqID {
			t.Errorf("equivalent %s and %s in different classes", e.from, e.to)
		}
		if _, ok := st[e]; ok {
			t.Errorf("%s and %s both equivalent and stricter", e.from, e.to)
		}
	}
	for e, r := range st { // e.to is stricter than e.from
		back, ok := br[edge{e.to, e.from}]
		if !ok {
			t.Errorf("%s lists %s as stricter, which does not list it as broader", e.from, e.to)
		} else if back.Basis != r.Basis {
			t.Errorf("%s / %s: basis %s one way, %s the other", e.from, e.to, r.Basis, back.Basis)
		}
	}
	for e := range br {
		if _, ok := st[edge{e.to, e.from}]; !ok {
			t.Errorf("%s lists %s as broader, which does not list it as stricter", e.from, e.to)
		}
	}
	for id, ms := range res.Classes {
		if len(ms) < 2 {
			t.Errorf("class %s has %d member(s)", id, len(ms))
		}
		for _, m := range ms {
			if n := len(res.Equivalent[m]); n != len(ms)-1 {
				t.Errorf("class %s: %s lists %d equivalents, class has %d others", id, m, n, len(ms)-1)
			}
		}
	}

	// The numbers the issue asks for: related pairs per language pair and basis.
	lang := map[string]string{}
	for _, r := range f.rules {
		lang[Key(r)] = string(r.Language)
	}
	byPair := map[string]map[string]int{}
	cross := 0
	seen := map[edge]bool{}
	for _, m := range []map[edge]Relation{eq, st} {
		for e, r := range m {
			a, b := e.from, e.to
			if a > b {
				a, b = b, a
			}
			if seen[edge{a, b}] {
				continue
			}
			seen[edge{a, b}] = true
			la, lb := lang[a], lang[b]
			if la > lb {
				la, lb = lb, la
			}
			if la != lb {
				cross++
			}
			k := la + " ⇄ " + lb
			if byPair[k] == nil {
				byPair[k] = map[string]int{}
			}
			byPair[k][r.Basis]++
		}
	}
	var keys []string
	for k := range byPair {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var lines []string
	for _, k := range keys {
		lines = append(lines, k+": same-telemetry "+strconv.Itoa(byPair[k][BasisSame])+", field-map "+strconv.Itoa(byPair[k][BasisFieldMap]))
	}
	crossClasses := 0
	for _, c := range res.ClassInfo {
		if len(c.Languages) > 1 {
			crossClasses++
		}
	}
	t.Logf("%d rules, %d classes (%d cross-language), %d related pairs, %d cross-language\n%s",
		len(f.rules), len(res.Classes), crossClasses, len(seen), cross, strings.Join(lines, "\n"))
}
