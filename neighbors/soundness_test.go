package neighbors

import (
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ruledex/ruledex/engine"
	"github.com/ruledex/ruledex/event"
	"github.com/ruledex/ruledex/fieldmap"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/logread"
	"github.com/ruledex/ruledex/rule"
	"github.com/ruledex/ruledex/winevent"
)

// coverageKeys adapts the event catalog's coverage to neighbors.Options.
func coverageKeys(cat *winevent.Catalog) func(*rule.Rule) []string {
	return func(r *rule.Rule) []string {
		var out []string
		for _, row := range cat.Coverage(r) {
			out = append(out, row.Provider+":"+strconv.Itoa(row.EventID))
		}
		return out
	}
}

// fixture is the corpus with its event catalog, neighbors and compiled matcher, built
// once per test binary: the property tests share it.
type fixture struct {
	rules []*rule.Rule
	cat   *winevent.Catalog
	res   *Result
	m     *engine.Matcher
}

var (
	fixOnce sync.Once
	fix     fixture
	fixErr  error
)

func corpusFixture(t *testing.T) fixture {
	t.Helper()
	rules := sigmaCorpus(t)
	events := corpustest.Path(t, "events")
	fixOnce.Do(func() {
		fix.rules = rules
		fix.cat, fixErr = winevent.Load(events)
		if fixErr != nil {
			return
		}
		fix.res = Compute(fieldmap.Default(), rules, Options{Coverage: coverageKeys(fix.cat)})
		fix.m, _ = engine.Compile(rules, engine.Options{Router: engine.CatalogRouter{Catalog: fix.cat}})
	})
	if fixErr != nil {
		t.Fatal(fixErr)
	}
	return fix
}

// TestSoundnessOnRealEvents is the property test of issue 6: for every stricter/broader
// pair, every regression and sample event the stricter rule matches is matched by the
// broader one, and equivalent rules match the same events — evaluated by the hunting
// engine on the real EVTX files.
func TestSoundnessOnRealEvents(t *testing.T) {
	f := corpusFixture(t)
	res, m := f.res, f.m
	t.Logf("%d rules compiled of %d", len(m.Rules()), len(f.rules))

	// matched[key] is the set of event numbers each rule fires on.
	matched := map[string]map[int]bool{}
	nEvents := 0
	var files []string
	for _, dir := range []string{corpustest.Path(t, "regression"), corpustest.Path(t, "evtx")} {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".evtx") {
				files = append(files, p)
			}
			return nil
		})
	}
	var ev event.Event
	var out []engine.Match
	for _, f := range files {
		r, err := logread.Open(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for {
			err := r.Next(&ev)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				var le *logread.Error
				if errors.As(err, &le) {
					continue
				}
				t.Fatalf("%s: %v", f, err)
			}
			nEvents++
			out = m.Match(&ev, out[:0])
			for _, mt := range out {
				k := Key(mt.Rule)
				if matched[k] == nil {
					matched[k] = map[int]bool{}
				}
				matched[k][nEvents] = true
			}
		}
		r.Close()
	}
	if nEvents < 150 { // the regression cases hold one or a few events each
		t.Fatalf("read only %d events from %d files", nEvents, len(files))
	}

	pairs, exercised, violations := 0, 0, 0
	for broader, rels := range res.Stricter {
		for _, rel := range rels {
			pairs++
			if len(matched[rel.Key]) > 0 {
				exercised++
			}
			for e := range matched[rel.Key] {
				if !matched[broader][e] {
					violations++
					t.Errorf("event %d: stricter %s matches but broader %s does not (%s)", e, rel.Key, broader, rel.Difference)
					break
				}
			}
		}
	}
	eqPairs := 0
	for a, rels := range res.Equivalent {
		for _, rel := range rels {
			eqPairs++
			for e := range matched[a] {
				if !matched[rel.Key][e] {
					violations++
					t.Errorf("event %d: %s matches but its equivalent %s does not", e, a, rel.Key)
					break
				}
			}
		}
	}
	t.Logf("%d events from %d files; %d stricter/broader pairs (%d with events the stricter rule matches), %d equivalent pairs; %d violations",
		nEvents, len(files), pairs, exercised, eqPairs, violations)
	if exercised == 0 {
		t.Errorf("no stricter/broader pair was exercised by any event: the property test proves nothing")
	}
}

// witness builds an event meant to satisfy r: for every positive conjunct it picks the
// first alternative and writes a value that passes its test, on the first event of the
// rule's coverage. Filters are left unsatisfied. The engine decides whether the witness
// really matches; only witnesses that do are used.
func witness(r *rule.Rule, row winevent.CoverageRow) *event.Event {
	ev := &event.Event{}
	ev.Add("Channel", row.Channel)
	ev.Add("EventID", strconv.Itoa(row.EventID))
	ev.Add("Provider_Name", row.Provider)
	var walk func(n *rule.Node)
	walk = func(n *rule.Node) {
		switch n.Op {
		case rule.OpAnd, rule.OpRef:
			for _, k := range n.Children {
				walk(k)
			}
		case rule.OpOr:
			walk(n.Children[0])
		case rule.OpQuant:
			if n.Quant == "all" {
				for _, k := range n.Children {
					walk(k)
				}
			} else if len(n.Children) > 0 {
				walk(n.Children[0])
			}
		case rule.OpPred:
			p := n.Pred
			if p.Field == "" || len(p.Values) == 0 || len(p.Transforms) > 0 {
				return
			}
			vals := p.Values[:1]
			if p.All {
				vals = p.Values
			}
			var b strings.Builder
			for _, v := range vals {
				if v.Wild {
					return
				}
				switch p.Kind {
				case rule.Eq:
					b.WriteString(v.S)
				case rule.Match:
					b.WriteString("x" + v.S + "x")
				case rule.StartsW:
					b.WriteString(v.S + "tail")
				case rule.EndsW:
					b.WriteString("head" + v.S)
				default:
					return
				}
			}
			if _, ok := ev.Get(p.Field); !ok {
				ev.Add(p.Field, b.String())
			}
		}
	}
	if r.Root != nil {
		walk(r.Root)
	}
	return ev
}

// TestSoundnessOnWitnesses strengthens the property test: the corpus events exercise
// few pairs, so for every stricter/broader pair it builds events that the stricter rule
// matches (one per event type it covers) and requires the broader rule to match them.
func TestSoundnessOnWitnesses(t *testing.T) {
	f := corpusFixture(t)
	res, m, cat := f.res, f.m, f.cat
	byKey := map[string]*rule.Rule{}
	for _, r := range f.rules {
		byKey[Key(r)] = r
	}
	fires := func(ev *event.Event, key string) bool {
		for _, mt := range m.Match(ev, nil) {
			if Key(mt.Rule) == key {
				return true
			}
		}
		return false
	}
	pairs, exercised := 0, 0
	for broader, rels := range res.Stricter {
		for _, rel := range rels {
			pairs++
			stricter := byKey[rel.Key]
			for _, row := range cat.Coverage(stricter) {
				ev := witness(stricter, row)
				if !fires(ev, rel.Key) {
					continue
				}
				exercised++
				if !fires(ev, broader) {
					t.Errorf("witness %v: stricter %s (%q) matches, broader %s (%q) does not (%s)",
						ev.Fields, rel.Key, stricter.Title, broader, byKey[broader].Title, rel.Difference)
				}
			}
		}
	}
	t.Logf("%d pairs, %d witness events matched by the stricter rule and checked", pairs, exercised)
	if exercised < pairs/2 {
		t.Errorf("only %d witnesses for %d pairs: the witness builder is too weak to prove much", exercised, pairs)
	}
}
