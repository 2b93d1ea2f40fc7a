package ingest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/fieldmap"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/rule"
)

var (
	corpusOnce sync.Once
	corpusCat  *catalog.Catalog
	corpusSum  *Summary
	corpusErr  error
)

// sigmaCatalog ingests the whole Sigma corpus once for the tests of this file.
func sigmaCatalog(t *testing.T) (*catalog.Catalog, *Summary) {
	t.Helper()
	dir := corpustest.Path(t, "sigma")
	corpusOnce.Do(func() {
		tmp, err := os.MkdirTemp("", "ruledex-ingest-test")
		if err != nil {
			corpusErr = err
			return
		}
		corpusCat, corpusErr = catalog.Open(filepath.Join(tmp, "cat.db"))
		if corpusErr != nil {
			return
		}
		corpusSum, corpusErr = Run(context.Background(), corpusCat, []string{dir}, Options{Parsers: sigmaParsers})
	})
	if corpusErr != nil {
		t.Fatalf("ingest %s: %v", dir, corpusErr)
	}
	return corpusCat, corpusSum
}

func TestSigmaCorpusIngest(t *testing.T) {
	c, sum := sigmaCatalog(t)
	dir := corpustest.Path(t, "sigma")
	// Count the YAML files independently of the ingest's walk.
	yamlFiles := 0
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".yml") || strings.HasSuffix(p, ".yaml")) {
			yamlFiles++
		}
		return nil
	})
	if sum.Changed < yamlFiles-5 || sum.Rules < sum.Changed {
		t.Errorf("ingest summary %+v: want about %d rule files and at least one rule each", sum, yamlFiles)
	}
	// Every recognized file yields a rule or a located diagnostic.
	rows, err := c.DB().Query(`SELECT f.path FROM files f WHERE f.language <> '' AND f.rules = 0
		AND NOT EXISTS (SELECT 1 FROM diagnostics d WHERE d.file_id = f.id)`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var p string
		rows.Scan(&p)
		t.Errorf("%s: recognized, but neither a rule nor a diagnostic", p)
	}
	rows.Close()
	ds, err := c.Diagnostics(context.Background(), catalog.DiagFilter{Severity: rule.Error})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.Pos.File == "" || d.Code == "" || d.Message == "" {
			t.Errorf("error diagnostic without file, code or message: %+v", d)
		}
	}
	// Every rule id is unique within its language.
	var dups int
	if err := c.DB().QueryRow(`SELECT count(*) FROM (SELECT 1 FROM rules GROUP BY language, id HAVING count(*) > 1)`).Scan(&dups); err != nil || dups != 0 {
		t.Errorf("%d duplicate (language, id) pairs (%v)", dups, err)
	}
	// The seed rule's source comes from the corpus' SOURCES.md.
	r, err := c.RuleByRef(context.Background(), "BITS payload downloaded via commandline")
	if err != nil {
		t.Fatal(err)
	}
	wantSrc := rule.Source{
		Repo:        "github.com/mdecrevoisier/SIGMA-detection-rules",
		RepoURL:     "https://github.com/mdecrevoisier/SIGMA-detection-rules",
		Path:        "windows-bits/win-os-BITS abuse for payload download (command).yaml",
		Line:        1,
		Commit:      "701ece8c4b396ae6816b774797525b3306ee4446",
		UpstreamURL: "https://github.com/mdecrevoisier/SIGMA-detection-rules/blob/701ece8c4b396ae6816b774797525b3306ee4446/windows-bits/win-os-BITS%20abuse%20for%20payload%20download%20%28command%29.yaml",
	}
	if r.Source != wantSrc {
		t.Errorf("seed rule source:\n got %+v\nwant %+v", r.Source, wantSrc)
	}
}

// TestCorpusCountMatchesIndependentScan checks the corpus count of the seed's indicator
// (NewProcessName ends_with \bitsadmin.exe) against a scan of the YAML that shares no
// code with the parser, the field map or the catalog: rules with a positive selection
// testing Image or NewProcessName for a value ending in \bitsadmin.exe, through
// |endswith or a leading-* pattern.
func TestCorpusCountMatchesIndependentScan(t *testing.T) {
	c, _ := sigmaCatalog(t)
	want := scanEndsWith(t, corpustest.Path(t, "sigma"), []string{"Image", "NewProcessName"}, `\bitsadmin.exe`)
	if want < 10 {
		t.Fatalf("independent scan found only %d rules; the scan is broken", want)
	}
	t.Logf("independent scan: %d rules", want)
	_, key := fieldmap.Default().IndicatorKey(nil, "NewProcessName", rule.EndsW, nil, `\bitsadmin.exe`)
	counts, err := c.IndicatorCounts(context.Background(), []string{key}, false)
	if err != nil {
		t.Fatal(err)
	}
	got := counts[key]
	if got.Total != want || len(got.ByLanguage) != 1 || got.ByLanguage[0].Language != rule.Sigma {
		t.Errorf("corpus count of NewProcessName ends_with \\bitsadmin.exe = %+v, independent scan = %d", got, want)
	}
	uses, err := c.RulesByIndicatorKey(context.Background(), key, 0)
	if err != nil {
		t.Fatal(err)
	}
	positive := map[string]bool{}
	for _, u := range uses {
		if !u.Negated {
			positive[u.ID] = true
		}
	}
	if len(positive) != want {
		t.Errorf("RulesByIndicatorKey lists %d rules testing it, want %d", len(positive), want)
	}
}

// scanEndsWith counts Sigma documents with a selection, not used negated in the
// condition, that tests one of fields (case-insensitive) with a value ending in suffix
// (case-insensitive) via |endswith, or with no modifier and a value "*<suffix>".
func scanEndsWith(t *testing.T, dir string, fields []string, suffix string) int {
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasSuffix(p, ".yml") || strings.HasSuffix(p, ".yaml")) {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var doc map[string]any
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				break // a broken document: the parser reports it; not a match
			}
			det, _ := doc["detection"].(map[string]any)
			if det == nil {
				continue
			}
			cond := strings.Join(values(det["condition"]), "\n")
			hit := false
			for name, sel := range det {
				if name == "condition" || name == "timeframe" || negatedIn(cond, name) {
					continue
				}
				if selectionEndsWith(sel, fields, suffix) {
					hit = true
				}
			}
			if hit {
				n++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// negatedIn reports whether the condition uses selection name under "not": "not name"
// or "not 1 of prefix*" with a pattern covering the name.
func negatedIn(cond, name string) bool {
	for _, m := range regexp.MustCompile(`not\s+(?:(?:1|all|any)\s+of\s+)?([A-Za-z0-9_*]+)`).FindAllStringSubmatch(cond, -1) {
		pat := m[1]
		if pat == name || strings.HasSuffix(pat, "*") && strings.HasPrefix(name, strings.TrimSuffix(pat, "*")) {
			return true
		}
	}
	return false
}

func selectionEndsWith(sel any, fields []string, suffix string) bool {
	switch s := sel.(type) {
	case []any:
		for _, item := range s {
			if selectionEndsWith(item, fields, suffix) {
				return true
			}
		}
	case map[string]any:
		for key, val := range s {
			parts := strings.Split(key, "|")
			ok := false
			for _, f := range fields {
				ok = ok || strings.EqualFold(parts[0], f)
			}
			if !ok {
				continue
			}
			mods := parts[1:]
			for _, v := range values(val) {
				lv, ls := strings.ToLower(v), strings.ToLower(suffix)
				switch {
				case len(mods) == 1 && mods[0] == "endswith" && lv == ls:
					return true
				case len(mods) == 0 && lv == "*"+ls:
					return true
				}
			}
		}
	}
	return false
}

func values(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, y := range x {
			if s, ok := y.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
