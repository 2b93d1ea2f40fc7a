package elastic

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

// corpusFiles lists every .toml under the Elastic detection-rules corpus.
func corpusFiles(tb testing.TB) (root string, files []string) {
	root = corpustest.Path(tb, "elastic", "detection-rules")
	for _, sub := range []string{"rules", "rules_building_block", "hunting"} {
		err := filepath.WalkDir(filepath.Join(root, sub), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && strings.HasSuffix(p, ".toml") {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			tb.Fatalf("walking %s: %v", sub, err)
		}
	}
	if len(files) < 2000 {
		tb.Fatalf("found %d .toml files under %s, expected the whole corpus (over 2,000)", len(files), root)
	}
	return root, files
}

type langFigures struct{ rules, clean, indicated int }

// TestCorpus parses every Elastic rule and hunting file: each yields rules or a located
// diagnostic, and the shares of clean and indicator-bearing rules meet the targets.
func TestCorpus(t *testing.T) {
	root, files := corpusFiles(t)
	fm := fieldmap.Default()
	var p Parser
	byLang := map[string]*langFigures{}
	codes := map[string]int{}
	total, withQuery, clean, indicated := 0, 0, 0, 0
	var unclean []string
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if !p.Detect(rel, data) {
			t.Errorf("%s: not detected as an Elastic rule", rel)
			continue
		}
		rs, diags := p.Parse(rule.Source{Repo: "elastic/detection-rules", Path: rel}, data)
		for _, d := range diags {
			codes[d.Code]++
			if d.Pos.File != rel || d.Pos.Line == 0 {
				t.Errorf("%s: file diagnostic not located: %v", rel, d)
			}
		}
		if len(rs) == 0 && len(diags) == 0 {
			t.Errorf("%s: no rule and no diagnostic", rel)
		}
		for _, r := range rs {
			total++
			for _, d := range r.Diagnostics {
				codes[d.Code]++
				if d.Pos.File != rel || d.Pos.Line == 0 {
					t.Errorf("%s: diagnostic not located: %v", rel, d)
				}
			}
			if r.ID == "" || r.Title == "" {
				t.Errorf("%s: rule without id or title", rel)
			}
			if r.Body == "" {
				if r.Type == "machine_learning" && (r.HasErrors() || len(r.Diagnostics) > 0 || len(r.Stages) != 1) {
					t.Errorf("%s: machine-learning rule should be one opaque stage without diagnostics, got %d stages, %v", rel, len(r.Stages), r.Diagnostics)
				}
				continue
			}
			withQuery++
			// Stage 0 is located at the query's first line in the file.
			if first := firstLine(r.Body); first != "" && !strings.Contains(lineAt(data, r.Stages[0].Pos.Line), first) {
				t.Errorf("%s: stage 0 at line %d, which does not hold the query's first line %q", rel, r.Stages[0].Pos.Line, first)
			}
			lf := byLang[r.BodyLang]
			if lf == nil {
				lf = &langFigures{}
				byLang[r.BodyLang] = lf
			}
			lf.rules++
			if !r.HasErrors() && len(r.Stages) > 0 {
				clean++
				lf.clean++
			} else if len(unclean) < 15 {
				unclean = append(unclean, rel+": "+firstError(r))
			}
			r.Indicators = fm.Indicators(r)
			if len(r.Indicators) > 0 {
				indicated++
				lf.indicated++
			}
		}
	}
	pct := func(a, b int) float64 {
		if b == 0 {
			return 0
		}
		return 100 * float64(a) / float64(b)
	}
	t.Logf("%d files, %d rules, %d with a query: %.1f%% clean, %.1f%% with an indicator", len(files), total, withQuery, pct(clean, withQuery), pct(indicated, withQuery))
	langs := make([]string, 0, len(byLang))
	for l := range byLang {
		langs = append(langs, l)
	}
	sort.Strings(langs)
	for _, l := range langs {
		f := byLang[l]
		t.Logf("  %-6s %5d rules  %5.1f%% clean  %5.1f%% with an indicator", l, f.rules, pct(f.clean, f.rules), pct(f.indicated, f.rules))
	}
	cs := make([]string, 0, len(codes))
	for c := range codes {
		cs = append(cs, c)
	}
	sort.Slice(cs, func(i, j int) bool {
		return codes[cs[i]] > codes[cs[j]] || codes[cs[i]] == codes[cs[j]] && cs[i] < cs[j]
	})
	for _, c := range cs {
		t.Logf("  diag %-32s %d", c, codes[c])
	}
	for _, u := range unclean {
		t.Logf("  not clean: %s", u)
	}
	// EQL is ours: hold it to the targets on its own, whatever the state of the other
	// query languages' parsers.
	if f := byLang["eql"]; f == nil || pct(f.clean, f.rules) < 99 || pct(f.indicated, f.rules) < 95 {
		t.Errorf("EQL rules: want >= 99%% clean and >= 95%% with an indicator, got %+v", f)
	}
	if pct(clean, withQuery) < 99 {
		t.Errorf("clean share %.1f%%, want >= 99%%", pct(clean, withQuery))
	}
	if pct(indicated, withQuery) < 95 {
		t.Errorf("indicator share %.1f%%, want >= 95%%", pct(indicated, withQuery))
	}
}

func firstError(r *rule.Rule) string {
	for _, d := range r.Diagnostics {
		if d.Severity == rule.Error {
			return d.String()
		}
	}
	return "no stage"
}

func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}

func lineAt(data []byte, n int) string {
	lines := strings.Split(string(data), "\n")
	if n < 1 || n > len(lines) {
		return ""
	}
	return lines[n-1]
}
