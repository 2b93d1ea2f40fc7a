package winevent

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/lang/sigma"
	"github.com/ruledex/ruledex/rule"
)

// TestSigmaCorpusCoverage runs Coverage over every Sigma rule in the corpus: nothing
// may panic, every row must name a provider and an event, and most Windows rules with
// a category must get events. It logs the shares the issue asks for.
func TestSigmaCorpusCoverage(t *testing.T) {
	c := catalog(t)
	root := corpustest.Path(t, "sigma")
	var all, win, winCov, withCat, withCatCov int
	byCat := map[string][2]int{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasSuffix(p, ".yml") || strings.HasSuffix(p, ".yaml")) {
			return err
		}
		if strings.Contains(p, "/deprecated/") || strings.Contains(p, "/logsources/") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rules, _ := sigma.Parser{}.Parse(rule.Source{Repo: "corpus", Path: p}, data)
		for _, r := range rules {
			if r.Correlation != nil {
				continue
			}
			all++
			rows := c.Coverage(r)
			for _, row := range rows {
				if row.Provider == "" || row.EventID == 0 || row.Slug == "" || (row.Known && row.Title == "") {
					t.Errorf("%s: bad row %+v", p, row)
				}
			}
			if !strings.EqualFold(r.LogSource.Product, "windows") {
				continue
			}
			win++
			if len(rows) > 0 {
				winCov++
			}
			if r.LogSource.Category != "" {
				withCat++
				b := byCat[r.LogSource.Category]
				b[0]++
				if len(rows) > 0 {
					withCatCov++
					b[1]++
				}
				byCat[r.LogSource.Category] = b
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sigma rules %d; windows %d, with coverage %d (%.1f%%); with a category %d, with coverage %d (%.1f%%)",
		all, win, winCov, pct(winCov, win), withCat, withCatCov, pct(withCatCov, withCat))
	var cats []string
	for k := range byCat {
		cats = append(cats, k)
	}
	sort.Strings(cats)
	for _, k := range cats {
		if b := byCat[k]; b[1] < b[0] {
			t.Logf("  %s: %d/%d", k, b[1], b[0])
		}
	}
	// Categories the logsource map gives event IDs for nearly always yield events
	// (the rest are keyword-only rules or categories without IDs, like file_access).
	if pct(withCatCov, withCat) < 95 {
		t.Errorf("only %.1f%% of Windows rules with a category have coverage", pct(withCatCov, withCat))
	}
}

func pct(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}
