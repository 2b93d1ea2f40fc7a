package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/ruledex/ruledex/event"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/internal/regression"
	"github.com/ruledex/ruledex/lang/sigma"
	"github.com/ruledex/ruledex/rule"
	"github.com/ruledex/ruledex/winevent"
)

// sigmaHQRuleDirs are the SigmaHQ folders whose rules are meant to run (deprecated and
// unsupported are left out, as SigmaHQ's own tooling does).
var sigmaHQRuleDirs = []string{"rules", "rules-emerging-threats", "rules-threat-hunting", "rules-compliance", "rules-placeholder"}

var (
	corpusOnce  sync.Once
	corpusRules []*rule.Rule // product windows
	corpusAll   []*rule.Rule // every product
	corpusCat   *winevent.Catalog
	corpusErr   error
)

// windowsRules parses every SigmaHQ rule whose product is windows (once per process).
func windowsRules(tb testing.TB) ([]*rule.Rule, *winevent.Catalog) {
	tb.Helper()
	root := corpustest.Path(tb, "sigma", "sigmahq")
	events := corpustest.Path(tb, "events")
	corpusOnce.Do(func() {
		corpusCat, corpusErr = winevent.Load(events)
		if corpusErr != nil {
			return
		}
		for _, d := range sigmaHQRuleDirs {
			err := filepath.WalkDir(filepath.Join(root, d), func(p string, de os.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if de.IsDir() || !strings.HasSuffix(p, ".yml") {
					return nil
				}
				data, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				rel, _ := filepath.Rel(root, p)
				rs, _ := sigma.Parser{}.Parse(rule.Source{Repo: "SigmaHQ/sigma", Path: filepath.ToSlash(rel)}, data)
				corpusAll = append(corpusAll, rs...)
				for _, r := range rs {
					if strings.EqualFold(r.LogSource.Product, "windows") {
						corpusRules = append(corpusRules, r)
					}
				}
				return nil
			})
			if err != nil {
				corpusErr = err
				return
			}
		}
	})
	if corpusErr != nil {
		tb.Fatal(corpusErr)
	}
	return corpusRules, corpusCat
}

type regressionCase = regression.Case

func regressionCases(tb testing.TB) []regressionCase { return regression.Cases(tb) }

// readEvents decodes a whole file, copying each event (readers reuse theirs).
func readEvents(path string) ([]event.Event, error) { return regression.ReadEvents(path) }

// TestSigmaHQRegression runs every regression case from its EVTX and its JSON with all
// SigmaHQ rules loaded (every product: a case's rule is found wherever it lives) and
// requires the case's rule to fire.
func TestSigmaHQRegression(t *testing.T) {
	_, cat := windowsRules(t)
	rules := corpusAll
	m, skipped := Compile(rules, Options{Router: CatalogRouter{cat}})
	skipReason := map[string]string{}
	for _, s := range skipped {
		skipReason[s.Rule.ID] = s.Reason
	}
	loaded := map[string]bool{}
	for _, r := range m.Rules() {
		loaded[r.ID] = true
	}
	t.Logf("%d rules parsed, %d compiled, %d skipped, %d variants, %d unconstrained",
		len(rules), len(m.Rules()), len(skipped), len(m.variants), len(m.unconstrained))
	for _, s := range skipped {
		t.Logf("  skipped %s (%s): %s", s.Rule.Source.Path, s.Rule.ID, s.Reason)
	}
	cases := regressionCases(t)
	if len(cases) < 130 {
		t.Fatalf("found %d regression cases, want the 134 of the corpus", len(cases))
	}
	for _, format := range []string{"evtx", "json"} {
		pass := 0
		var failures []string
		for _, c := range cases {
			path := c.EVTX
			if format == "json" {
				path = strings.TrimSuffix(path, ".evtx") + ".json"
			}
			reason := runCase(m, c, path, loaded, skipReason)
			if reason == "" {
				pass++
				continue
			}
			failures = append(failures, fmt.Sprintf("%s %s (%s): %s", c.RuleID, c.Title, filepath.Base(c.Dir), reason))
		}
		rate := float64(pass) / float64(len(cases))
		t.Logf("%s: %d/%d cases pass (%.1f%%)", format, pass, len(cases), 100*rate)
		for _, f := range failures {
			t.Logf("  FAIL %s: %s", format, f)
		}
		if rate < 0.99 {
			t.Errorf("%s: pass rate %.1f%% is below 99%%", format, 100*rate)
		}
	}
}

func runCase(m *Matcher, c regressionCase, path string, loaded map[string]bool, skipReason map[string]string) string {
	if r, ok := skipReason[c.RuleID]; ok {
		return "rule skipped: " + r
	}
	if !loaded[c.RuleID] {
		return "rule not found among the Windows SigmaHQ rules"
	}
	evs, err := readEvents(path)
	if len(evs) == 0 {
		return fmt.Sprintf("no events read (%v)", err)
	}
	n := 0
	var out []Match
	for i := range evs {
		out = m.Match(&evs[i], out[:0])
		for _, x := range out {
			if x.Rule.ID == c.RuleID {
				n++
			}
		}
	}
	want := max(1, c.MatchCount)
	if n < want {
		ch, _ := evs[0].Get("Channel")
		id, _ := evs[0].Get("EventID")
		return fmt.Sprintf("%d matches, want %d (%d events, first %s/%s; read errors: %v)", n, want, len(evs), ch, id, err)
	}
	return ""
}

// TestPrefilterSound checks the literal prefilter never hides a match: on every
// regression event, the prefiltered matcher reports exactly the rules that evaluating
// every routed rule reports.
func TestPrefilterSound(t *testing.T) {
	rules, cat := windowsRules(t)
	fast, _ := Compile(rules, Options{Router: CatalogRouter{cat}})
	slow, _ := Compile(rules, Options{Router: CatalogRouter{cat}, bruteForce: true})
	events, total := 0, 0
	for _, c := range regressionCases(t) {
		for _, path := range []string{c.EVTX, strings.TrimSuffix(c.EVTX, ".evtx") + ".json"} {
			evs, _ := readEvents(path)
			for i := range evs {
				ms := slow.Match(&evs[i], nil)
				a, b := ids(fast.Match(&evs[i], nil)), ids(ms)
				events++
				total += len(ms)
				if a != b {
					t.Errorf("%s event %d: prefiltered %q, every rule %q", path, i, a, b)
				}
			}
		}
	}
	t.Logf("%d events, %d matches compared", events, total)
}

// TestPrefilterSoundOnSamples is TestPrefilterSound on the attack-sample EVTX files of
// corpus/evtx, logged by other machines than the regression cases, with every SigmaHQ
// rule (all products) loaded.
func TestPrefilterSoundOnSamples(t *testing.T) {
	_, cat := windowsRules(t)
	fast, _ := Compile(corpusAll, Options{Router: CatalogRouter{cat}})
	slow, _ := Compile(corpusAll, Options{Router: CatalogRouter{cat}, bruteForce: true})
	files := sampleFiles(t)
	events, total := 0, 0
	for _, path := range files {
		evs, _ := readEvents(path)
		for i := range evs {
			ms := slow.Match(&evs[i], nil)
			a, b := ids(fast.Match(&evs[i], nil)), ids(ms)
			events++
			total += len(ms)
			if a != b {
				t.Errorf("%s event %d: prefiltered %q, every rule %q", path, i, a, b)
			}
		}
	}
	if events == 0 || total == 0 {
		t.Fatalf("%d sample files, %d events, %d matches: nothing compared", len(files), events, total)
	}
	t.Logf("%d files, %d events, %d matches compared", len(files), events, total)
}

func ids(ms []Match) string {
	s := make([]string, len(ms))
	for i, m := range ms {
		s[i] = m.Rule.ID
	}
	sort.Strings(s)
	return strings.Join(s, ",")
}

// sampleFiles lists the EVTX files of corpus/evtx.
func sampleFiles(tb testing.TB) []string {
	var files []string
	err := filepath.WalkDir(corpustest.Path(tb, "evtx"), func(p string, de os.DirEntry, err error) error {
		if err == nil && !de.IsDir() && strings.HasSuffix(p, ".evtx") {
			files = append(files, p)
		}
		return err
	})
	if err != nil || len(files) == 0 {
		tb.Fatalf("no sample EVTX in corpus/evtx (%v)", err)
	}
	return files
}
