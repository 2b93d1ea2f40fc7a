package engine

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/ruledex/ruledex/event"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/lang/sigma"
	"github.com/ruledex/ruledex/logread"
	"github.com/ruledex/ruledex/rule"
	"github.com/ruledex/ruledex/winevent"
	"go.yaml.in/yaml/v3"
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

type regressionCase struct {
	dir        string
	ruleID     string
	title      string
	evtx       string
	matchCount int
}

func regressionCases(tb testing.TB) []regressionCase {
	tb.Helper()
	root := corpustest.Path(tb, "regression")
	var out []regressionCase
	err := filepath.WalkDir(filepath.Join(root, "regression_data"), func(p string, de os.DirEntry, err error) error {
		if err != nil || de.IsDir() || de.Name() != "info.yml" {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var info struct {
			Meta []struct {
				ID    string `yaml:"id"`
				Title string `yaml:"title"`
			} `yaml:"rule_metadata"`
			Tests []struct {
				Type       string `yaml:"type"`
				Path       string `yaml:"path"`
				MatchCount int    `yaml:"match_count"`
			} `yaml:"regression_tests_info"`
		}
		if err := yaml.Unmarshal(data, &info); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if len(info.Meta) == 0 {
			return fmt.Errorf("%s: no rule_metadata", p)
		}
		for _, t := range info.Tests {
			if t.Type != "evtx" {
				continue
			}
			out = append(out, regressionCase{dir: filepath.Dir(p), ruleID: info.Meta[0].ID, title: info.Meta[0].Title,
				evtx: filepath.Join(root, t.Path), matchCount: t.MatchCount})
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// readEvents decodes a whole file, copying each event (readers reuse theirs).
func readEvents(path string) ([]event.Event, error) {
	r, err := logread.Open(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []event.Event
	var errs []error
	for {
		var ev event.Event
		err := r.Next(&ev)
		if err == io.EOF {
			break
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cp := event.Event{File: ev.File, Offset: ev.Offset, Fields: make([]event.Field, len(ev.Fields))}
		for i, f := range ev.Fields {
			cp.Fields[i] = event.Field{Name: strings.Clone(f.Name), Value: strings.Clone(f.Value)}
		}
		out = append(out, cp)
	}
	return out, errors.Join(errs...)
}

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
			path := c.evtx
			if format == "json" {
				path = strings.TrimSuffix(path, ".evtx") + ".json"
			}
			reason := runCase(m, c, path, loaded, skipReason)
			if reason == "" {
				pass++
				continue
			}
			failures = append(failures, fmt.Sprintf("%s %s (%s): %s", c.ruleID, c.title, filepath.Base(c.dir), reason))
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
	if r, ok := skipReason[c.ruleID]; ok {
		return "rule skipped: " + r
	}
	if !loaded[c.ruleID] {
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
			if x.Rule.ID == c.ruleID {
				n++
			}
		}
	}
	want := max(1, c.matchCount)
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
		for _, path := range []string{c.evtx, strings.TrimSuffix(c.evtx, ".evtx") + ".json"} {
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

func ids(ms []Match) string {
	s := make([]string, len(ms))
	for i, m := range ms {
		s[i] = m.Rule.ID
	}
	sort.Strings(s)
	return strings.Join(s, ",")
}
