package translate

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ruledex/ruledex/engine"
	"github.com/ruledex/ruledex/event"
	"github.com/ruledex/ruledex/fieldmap"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/internal/regression"
	"github.com/ruledex/ruledex/logread"
	"github.com/ruledex/ruledex/rule"
	"github.com/ruledex/ruledex/winevent"
)

// firing returns the indexes of the events r matches, run alone through the engine
// with the event catalog's routing, as `ruledex hunt` runs it (rules of every language
// run natively: the engine resolves their fields through the field map).
func firing(t *testing.T, cat *winevent.Catalog, r *rule.Rule, evs []event.Event) ([]int, error) {
	m, skipped := engine.Compile([]*rule.Rule{r}, engine.Options{Router: engine.CatalogRouter{Catalog: cat}})
	if len(skipped) > 0 {
		return nil, fmt.Errorf("engine: %s", skipped[0].Reason)
	}
	var out []int
	var ms []engine.Match
	for i := range evs {
		ms = m.Match(&evs[i], ms[:0])
		if len(ms) > 0 {
			out = append(out, i)
		}
	}
	return out, nil
}

// TestExecutableTranslations is the executable check of the translate issue: every
// Sigma rule of the SigmaHQ regression cases is translated into each target, read back
// with ruledex's parser for that target and run by the engine on the case's EVTX. It must fire on exactly the events the original fires
// on. Then every KQL, SPL, Elastic and YARA-L rule of the corpus that fires on the
// regression events or the attack samples (../shared/corpus/evtx) is translated to
// Sigma and must fire on the same events.
func TestExecutableTranslations(t *testing.T) {
	root := corpustest.Dir(t)
	cat, err := winevent.Load(filepath.Join(root, "events"))
	if err != nil {
		t.Fatal(err)
	}
	ps := testParsers()
	read := testReader(ps)
	fm := fieldmap.Default()
	sigmaRules := loadRules(t, ps, filepath.Join(root, "sigma", "sigmahq", "rules"), filepath.Join(root, "sigma", "sigmahq", "rules-emerging-threats"))
	byID := map[string]*rule.Rule{}
	for _, r := range sigmaRules {
		byID[r.ID] = r
	}
	cases := regression.Cases(t)
	events := map[string][]event.Event{}
	var allEvents []event.Event
	for _, c := range cases {
		evs, err := regression.ReadEvents(c.EVTX)
		if len(evs) == 0 {
			t.Fatalf("%s: no events (%v)", c.EVTX, err)
		}
		events[c.EVTX] = evs
		allEvents = append(allEvents, evs...)
	}
	// The attack samples too, for the rules of other languages below.
	samples, err := logread.Files(filepath.Join(root, "evtx"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range samples {
		evs, _ := regression.ReadEvents(f)
		allEvents = append(allEvents, evs...)
	}
	type tally struct{ translated, same int }
	got := map[Target]*tally{}
	var failures []string
	for _, c := range cases {
		src := byID[c.RuleID]
		if src == nil {
			continue
		}
		evs := events[c.EVTX]
		want, err := firing(t, cat, src, evs)
		if err != nil || len(want) == 0 {
			continue // the engine's own regression test reports these
		}
		for _, tg := range goldenTargets {
			if !canRead(ps, tg) {
				continue
			}
			res, err := Convert(fm, src, tg, Options{}, read)
			if err != nil {
				continue
			}
			if got[tg] == nil {
				got[tg] = &tally{}
			}
			got[tg].translated++
			back, _ := read(tg.Language(), "x"+res.Ext, []byte(res.File))
			have, err := firing(t, cat, back[0], evs)
			if err != nil {
				failures = append(failures, fmt.Sprintf("%s → %s: %v", src.Title, tg, err))
				continue
			}
			if fmt.Sprint(have) != fmt.Sprint(want) {
				failures = append(failures, fmt.Sprintf("%s → %s: fires on events %v, the original on %v\n%s", src.Title, tg, have, want, res.Query))
				continue
			}
			got[tg].same++
		}
	}
	var tgs []string
	for tg, n := range got {
		tgs = append(tgs, fmt.Sprintf("%s %d/%d", tg, n.same, n.translated))
	}
	sort.Strings(tgs)
	t.Logf("regression Sigma rules translated and firing on the same events: %s", strings.Join(tgs, ", "))
	if len(got) == 0 {
		t.Fatal("no regression rule was translated")
	}

	// The other direction: non-Sigma rules that fire on the regression events.
	others := loadRules(t, ps, filepath.Join(root, "kql"), filepath.Join(root, "spl", "splunk"),
		filepath.Join(root, "elastic", "detection-rules"), filepath.Join(root, "yaral", "chronicle"))
	fired, same := map[rule.Language]int{}, map[rule.Language]int{}
	untranslatable := map[rule.Language]int{}
	for _, r := range others {
		want, err := firing(t, cat, r, allEvents)
		if err != nil || len(want) == 0 {
			continue
		}
		fired[r.Language]++
		res, err := Convert(fm, r, Sigma, Options{}, read)
		if err != nil {
			// Not a defect: Sigma cannot say everything (KQL has is a whole-term test).
			untranslatable[r.Language]++
			t.Logf("%s %q fires on %d regression events; not translated to Sigma: %v", r.Language, r.Title, len(want), err)
			continue
		}
		back, _ := read(rule.Sigma, "x.yml", []byte(res.File))
		have, err := firing(t, cat, back[0], allEvents)
		if err != nil || fmt.Sprint(have) != fmt.Sprint(want) {
			failures = append(failures, fmt.Sprintf("%s %s → sigma: fires on %v, the original on %v (%v)", r.Language, r.Title, have, want, err))
			continue
		}
		same[r.Language]++
	}
	t.Logf("non-Sigma rules firing on regression and sample events: %v; translated to Sigma and firing on the same events: %v; not translatable (reason logged): %v", fired, same, untranslatable)
	for _, f := range failures {
		t.Error(f)
	}
}

// canRead reports whether a parser for t's language is available to verify it.
func canRead(ps []parser, t Target) bool {
	for _, p := range ps {
		if p.Language() == t.Language() {
			return true
		}
	}
	return false
}
