package engine

import (
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/ruledex/ruledex/rule"
)

// compileWithout is Compile with no value test compiled ahead.
func compileWithout(rules []*rule.Rule, opts Options) (*Matcher, []Skipped) {
	return compile(rules, opts, nil)
}

// TestCompileScheduleFree compiles the SigmaHQ Windows rules with the value tests
// compiled ahead on several goroutines and with none compiled ahead (each predicate
// compiled when met, as before precompileTests): same rules, same skipped reasons in the
// same order, same matches with the same fields on every regression event.
func TestCompileScheduleFree(t *testing.T) {
	rules, cat := windowsRules(t)
	prev := runtime.GOMAXPROCS(2)
	defer runtime.GOMAXPROCS(prev)
	par, parSkip := Compile(rules, Options{Router: CatalogRouter{cat}})
	lazy, lazySkip := compileWithout(rules, Options{Router: CatalogRouter{cat}})
	if !slices.Equal(par.Rules(), lazy.Rules()) {
		t.Fatalf("%d rules compiled ahead, %d when met", len(par.Rules()), len(lazy.Rules()))
	}
	if len(parSkip) != len(lazySkip) {
		t.Fatalf("%d skipped ahead, %d when met", len(parSkip), len(lazySkip))
	}
	for i := range parSkip {
		if parSkip[i].Rule != lazySkip[i].Rule || parSkip[i].Reason != lazySkip[i].Reason {
			t.Errorf("skipped %d: %q vs %q", i, parSkip[i].Reason, lazySkip[i].Reason)
		}
	}
	n := 0
	for _, ev := range regressionEvents(t) {
		a, b := par.Match(&ev, nil), lazy.Match(&ev, nil)
		if len(a) != len(b) {
			t.Fatalf("%s: %d matches vs %d", ev.File, len(a), len(b))
		}
		for i := range a {
			if a[i].Rule != b[i].Rule || a[i].Via != b[i].Via || !slices.Equal(a[i].Fields, b[i].Fields) {
				t.Errorf("%s: match %d differs: %s vs %s", ev.File, i, a[i].Rule.Title, b[i].Rule.Title)
			}
		}
		n += len(a)
	}
	if n == 0 || len(parSkip) == 0 {
		t.Fatalf("%d matches, %d skipped: the comparison tests nothing", n, len(parSkip))
	}
	t.Logf("%d rules, %d skipped, %d matches identical", len(par.Rules()), len(parSkip), n)
}

// TestMatchFieldsKept: a match's fields stay as they were after later matches (they
// are carved from chunks shared by many matches): every regression event's matches,
// kept while all the others are matched, equal the same event matched on its own by
// a fresh matcher.
func TestMatchFieldsKept(t *testing.T) {
	rules, cat := windowsRules(t)
	m, _ := Compile(rules, Options{Router: CatalogRouter{cat}})
	evs := regressionEvents(t)
	kept := make([][]Match, len(evs))
	for i := range evs {
		kept[i] = m.Match(&evs[i], nil)
	}
	fields := 0
	for i := range evs {
		fresh, _ := Compile(rules, Options{Router: CatalogRouter{cat}})
		want := fresh.Match(&evs[i], nil)
		if len(want) != len(kept[i]) {
			t.Fatalf("%s: %d matches kept, %d fresh", evs[i].File, len(kept[i]), len(want))
		}
		for k := range want {
			if !slices.Equal(kept[i][k].Fields, want[k].Fields) {
				t.Errorf("%s: %s: fields kept %v, fresh %v", evs[i].File, want[k].Rule.Title, kept[i][k].Fields, want[k].Fields)
			}
			fields += len(want[k].Fields)
		}
		if i > 40 && fields > 0 {
			break // a fresh compile per event: the first events are enough to compare
		}
	}
	if fields == 0 {
		t.Fatal("no matched field compared")
	}
}

// TestMatchConcurrentFirstUse: workers that meet new kinds of events at once (each
// builds its bucket while the others wait only for the same bucket) find what one
// worker finds alone, on a fresh matcher each time.
func TestMatchConcurrentFirstUse(t *testing.T) {
	rules, cat := windowsRules(t)
	evs := regressionEvents(t)
	alone, _ := Compile(rules, Options{Router: CatalogRouter{cat}})
	want := make([][]Match, len(evs))
	for i := range evs {
		want[i] = alone.Match(&evs[i], nil)
	}
	for round := range 3 {
		m, _ := Compile(rules, Options{Router: CatalogRouter{cat}})
		got := make([][]Match, len(evs))
		var wg sync.WaitGroup
		const workers = 4
		for w := range workers {
			wg.Go(func() {
				// Each worker starts at its own place, so that first uses overlap.
				for k := range evs {
					i := (k + w*len(evs)/workers + round) % len(evs)
					if i%workers == w {
						got[i] = m.Match(&evs[i], nil)
					}
				}
			})
		}
		wg.Wait()
		for i := range evs {
			if len(got[i]) != len(want[i]) {
				t.Fatalf("round %d, %s: %d matches concurrently, %d alone", round, evs[i].File, len(got[i]), len(want[i]))
			}
			for k := range got[i] {
				if got[i][k].Rule != want[i][k].Rule || !slices.Equal(got[i][k].Fields, want[i][k].Fields) {
					t.Errorf("round %d, %s: match %d differs", round, evs[i].File, k)
				}
			}
		}
	}
}
