package ingest

import (
	"bufio"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/fieldmap"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/lang/kql"
	"github.com/ruledex/ruledex/lang/sigma"
	"github.com/ruledex/ruledex/lang/spl"
	"github.com/ruledex/ruledex/rule"
)

// scanTransfer finds, without any of ruledex's parsers, the rule files that test a
// command line for "/transfer" (any case), by language and kind of test. Substring
// tests (kind match):
//   - Sigma: a '/transfer' list item or value under a `<X>CommandLine|contains` key;
//   - KQL: a "/transfer" literal on a line that applies contains/contains_cs to a
//     *CommandLine column;
//   - SPL: a "*/transfer*" value of a process field.
//
// Term tests (kind term, KQL's has family, which the Kusto documentation defines on
// term boundaries, unlike contains): a "/transfer" literal on a line that applies
// has/has_cs/has_any/has_all to a *CommandLine column, or in a `let NAME =
// dynamic([...])` list that a `where` line applies has_any/has_all to a *CommandLine column.
func scanTransfer(t *testing.T, root string) (match, term map[rule.Language]map[string]bool) {
	t.Helper()
	lit := regexp.MustCompile(`(?i)['"]/transfer['"]`)
	sigmaKey := regexp.MustCompile(`^\s*-?\s*(\w*CommandLine)\|contains(\|all)?:\s*(.*)$`)
	anyKey := regexp.MustCompile(`^\s*-?\s*[\w.|]+:\s*(.*)$`)
	kqlContains := regexp.MustCompile(`(?i)CommandLine\s+(contains|contains_cs)\b`)
	kqlHas := regexp.MustCompile(`(?i)CommandLine\s+(has|has_any|has_all|has_cs)\b`)
	letList := regexp.MustCompile(`^\s*let\s+(\w+)\s*=\s*dynamic\(\[`)
	splLit := regexp.MustCompile(`(?i)process\w*\s*(=|IN)\s*\(?[^|]*"\*/transfer\*"`)
	out := map[rule.Language]map[string]bool{rule.Sigma: {}, rule.Kusto: {}, rule.Splunk: {}}
	term = map[rule.Language]map[string]bool{rule.Kusto: {}}
	walk := func(dir string, fn func(path string, lines []string)) {
		filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			var lines []string
			sc := bufio.NewScanner(f)
			sc.Buffer(make([]byte, 1<<20), 1<<24)
			for sc.Scan() {
				lines = append(lines, sc.Text())
			}
			fn(p, lines)
			return nil
		})
	}
	walk("sigma", func(p string, lines []string) {
		key := ""
		for _, l := range lines {
			if m := sigmaKey.FindStringSubmatch(l); m != nil {
				key = m[1]
				if lit.MatchString(m[3]) {
					out[rule.Sigma][p] = true
				}
				continue
			}
			if anyKey.MatchString(l) && !strings.HasPrefix(strings.TrimSpace(l), "- ") {
				key = ""
			}
			if key != "" && lit.MatchString(l) {
				out[rule.Sigma][p] = true
			}
		}
	})
	walk("kql", func(p string, lines []string) {
		lists := map[string]bool{} // let lists holding the literal
		current := ""
		for _, l := range lines {
			if m := letList.FindStringSubmatch(l); m != nil {
				current = m[1]
			}
			if lit.MatchString(l) {
				if kqlContains.MatchString(l) {
					out[rule.Kusto][p] = true
				}
				if kqlHas.MatchString(l) {
					term[rule.Kusto][p] = true
				} else if current != "" && !kqlContains.MatchString(l) {
					lists[current] = true
				}
			}
			if strings.Contains(l, "])") {
				current = ""
			}
		}
		for name := range lists {
			use := regexp.MustCompile(`(?i)\bwhere\b.*CommandLine\s+has_(any|all)\s*\(\s*` + name + `\s*\)`)
			for _, l := range lines {
				if use.MatchString(l) {
					term[rule.Kusto][p] = true
				}
			}
		}
	})
	walk("spl", func(p string, lines []string) {
		for _, l := range lines {
			if splLit.MatchString(l) {
				out[rule.Splunk][p] = true
			}
		}
	})
	return out, term
}

// TestCrossLanguageCountIsIndependent checks cross-language corpus counts — the seed's
// `/transfer corpus 2 (sigma 1, kusto 1)`, a Sigma substring test and a KQL term test
// of the same string — against the independent scan above.
func TestCrossLanguageCountIsIndependent(t *testing.T) {
	root := corpustest.Dir(t)
	tmp := t.TempDir()
	cat, err := catalog.Open(filepath.Join(tmp, "cat.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	parsers := []Parser{sigma.Parser{}, kql.Parser{}, &spl.Parser{}}
	dirs := []string{filepath.Join(root, "sigma"), filepath.Join(root, "kql"), filepath.Join(root, "spl")}
	if _, err := Run(context.Background(), cat, dirs, Options{Parsers: parsers}); err != nil {
		t.Fatal(err)
	}
	wantMatch, wantTerm := scanTransfer(t, root)
	// An indicator is the string a rule looks for in a field: fieldmap.Key counts a term
	// test (KQL has) with the substring test of the same value, as REFERENCE's seed
	// count `/transfer corpus 2 (sigma 1, kusto 1)` does. Relations keep them apart
	// (package neighbors). So both kinds' keys count the union of both scans.
	wantAny := map[rule.Language]map[string]bool{}
	for _, m := range []map[rule.Language]map[string]bool{wantMatch, wantTerm} {
		for lang, files := range m {
			if wantAny[lang] == nil {
				wantAny[lang] = map[string]bool{}
			}
			for f := range files {
				wantAny[lang][f] = true
			}
		}
	}
	for _, tc := range []struct {
		kind rule.Kind
		want map[rule.Language]map[string]bool
	}{{rule.Match, wantAny}, {rule.Term, wantAny}} {
		_, key := fieldmap.Default().IndicatorKey(nil, "CommandLine", tc.kind, nil, "/transfer")
		counts, err := cat.IndicatorCounts(context.Background(), []string{key}, false)
		if err != nil {
			t.Fatal(err)
		}
		got := map[rule.Language]int{}
		for _, lc := range counts[key].ByLanguage {
			got[lc.Language] = lc.Rules
		}
		for lang, files := range tc.want {
			if got[lang] != len(files) {
				t.Errorf("%s: catalog counts %d rules testing CommandLine %s /transfer, the scan finds %d files: %v", lang, got[lang], tc.kind, len(files), files)
			}
		}
		t.Logf("CommandLine %s /transfer: catalog %v, scan %v", tc.kind, got, tc.want)
	}
	// Splunk's EventCode is the Windows event ID: ESCU detections whose search says
	// EventCode=4104 count under EventID eq 4104 with other languages' EventID tests.
	want4104 := scanEventCode(t, filepath.Join(root, "spl", "splunk", "detections"), "4104")
	_, key := fieldmap.Default().IndicatorKey(nil, "EventID", rule.Eq, nil, "4104")
	counts, err := cat.IndicatorCounts(context.Background(), []string{key}, false)
	if err != nil {
		t.Fatal(err)
	}
	got4104 := 0
	for _, lc := range counts[key].ByLanguage {
		if lc.Language == rule.Splunk {
			got4104 = lc.Rules
		}
	}
	if got4104 != len(want4104) || len(want4104) == 0 {
		t.Errorf("splunk: catalog counts %d rules testing EventID eq 4104, the scan finds %d searches with EventCode=4104", got4104, len(want4104))
	}
	t.Logf("EventID eq 4104: catalog %v, scan splunk %d", counts[key].ByLanguage, len(want4104))
	if len(wantMatch[rule.Sigma]) == 0 || len(wantTerm[rule.Kusto]) == 0 {
		t.Errorf("the scan found no Sigma substring test or no KQL term test (%v, %v): it cannot check the counts", wantMatch, wantTerm)
	}
}

// scanEventCode finds, without the SPL parser, the ESCU detection files whose search
// (the YAML `search:` value, up to the next top-level key) tests EventCode=<code>.
func scanEventCode(t *testing.T, dir, code string) map[string]bool {
	t.Helper()
	re := regexp.MustCompile(`EventCode\s*=\s*"?` + code + `\b`)
	key := regexp.MustCompile(`^[a-z_]+:`)
	out := map[string]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yml") {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		in := false
		for _, l := range strings.Split(string(data), "\n") {
			switch {
			case strings.HasPrefix(l, "search:"):
				in = true
			case key.MatchString(l):
				in = false
			}
			if in && re.MatchString(l) {
				out[p] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
