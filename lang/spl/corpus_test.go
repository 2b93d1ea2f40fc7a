package spl

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/ruledex/ruledex/fieldmap"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/rule"
)

// escuFile is one detection file of the corpus, path relative to the ESCU root.
type escuFile struct {
	rel  string
	data []byte
}

func escuFiles(tb testing.TB) (string, []escuFile) {
	tb.Helper()
	root := corpustest.Path(tb, "spl", "splunk")
	var out []escuFile
	err := filepath.WalkDir(filepath.Join(root, "detections"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yml") {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out = append(out, escuFile{rel: filepath.ToSlash(rel), data: data})
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return root, out
}

// hasPipelineStage: at least one stage besides the condition and the macro list.
func hasPipelineStage(r *rule.Rule) bool {
	for _, s := range r.Stages {
		if s.Kind != rule.StageCondition && s.Kind != rule.StageParameter {
			return true
		}
	}
	return false
}

func TestCorpusESCU(t *testing.T) {
	root, files := escuFiles(t)
	p := &Parser{}
	if err := p.Begin(root); err != nil {
		t.Fatalf("Begin(%s): %v", root, err)
	}
	// 189 macro files in the corpus plus the builtin drop_dm_object_name(1).
	if got := p.Macros().Len(); got < 190 {
		t.Errorf("macros loaded = %d, want at least 190", got)
	}
	macroFiles, _ := filepath.Glob(filepath.Join(root, "macros", "*.yml"))
	for _, mf := range macroFiles {
		data, _ := os.ReadFile(mf)
		if p.Detect("macros/"+filepath.Base(mf), data) {
			t.Errorf("Detect accepted macro file %s", mf)
		}
	}

	fm := fieldmap.Default()
	var total, deprecated, active, clean, withStage, withInd, withIndNoLS int
	var resolved, builtin, unresolved int
	codes := map[string]int{}
	undefined := map[string]int{}
	var noInd []string
	for _, f := range files {
		if !p.Detect(f.rel, f.data) {
			t.Errorf("Detect rejected %s", f.rel)
			continue
		}
		rules, diags := p.Parse(rule.Source{Repo: "github.com/splunk/security_content", Path: f.rel}, f.data)
		if len(diags) > 0 || len(rules) != 1 {
			t.Errorf("%s: %d rules, file diagnostics %v", f.rel, len(rules), diags)
			continue
		}
		r := rules[0]
		total++
		if r.Status == "deprecated" {
			deprecated++
			continue
		}
		active++
		for _, d := range r.Diagnostics {
			codes[string(d.Severity)+" "+d.Code]++
		}
		ok := !r.HasErrors()
		if hasPipelineStage(r) {
			withStage++
		} else {
			ok = false
		}
		if ok {
			clean++
		}
		ind := fm.Indicators(r)
		if len(ind) > 0 {
			withInd++
		} else {
			noInd = append(noInd, f.rel)
		}
		// Indicators that do not come only from index/sourcetype/source selection.
		for _, in := range ind {
			switch strings.ToLower(in.Field) {
			case "index", "sourcetype", "source", "eventtype":
				continue
			}
			withIndNoLS++
			break
		}
		for _, ref := range p.Macros().expand(r.Body).refs {
			switch ref.Status {
			case RefResolved:
				resolved++
			case RefBuiltin:
				builtin++
			default:
				unresolved++
				undefined[ref.Name]++
			}
		}
	}
	pct := func(n, d int) float64 { return 100 * float64(n) / float64(max(d, 1)) }
	t.Logf("ESCU detections: %d files, %d deprecated, %d active", total, deprecated, active)
	t.Logf("active: %d (%.1f%%) clean with a pipeline stage and no error; %d (%.1f%%) with a stage",
		clean, pct(clean, active), withStage, pct(withStage, active))
	t.Logf("active: %d (%.1f%%) with an indicator; %d (%.1f%%) with an indicator beyond index/sourcetype/source",
		withInd, pct(withInd, active), withIndNoLS, pct(withIndNoLS, active))
	t.Logf("macro references: %d resolved from macros/*.yml, %d builtin (CIM drop_dm_object_name, ESCU *_filter), %d unresolved",
		resolved, builtin, unresolved)
	logTop(t, "diagnostics", codes, 20)
	logTop(t, "undefined macros", undefined, 10)
	if len(noInd) > 0 {
		sort.Strings(noInd)
		t.Logf("first rules without indicators: %v", noInd[:min(len(noInd), 15)])
	}
	if pct(clean, active) < 95 {
		t.Errorf("clean = %.1f%%, want >= 95%%", pct(clean, active))
	}
	if pct(withInd, active) < 85 {
		t.Errorf("with indicators = %.1f%%, want >= 85%%", pct(withInd, active))
	}
	if total < 1700 {
		t.Errorf("read %d detections, the corpus has 1711", total)
	}
}

func logTop(t *testing.T, what string, m map[string]int, n int) {
	type kv struct {
		k string
		v int
	}
	var all []kv
	for k, v := range m {
		all = append(all, kv{k, v})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].v > all[j].v || all[i].v == all[j].v && all[i].k < all[j].k })
	var parts []string
	for i, x := range all {
		if i == n {
			break
		}
		parts = append(parts, x.k+"="+strconv.Itoa(x.v))
	}
	t.Logf("%s: %s", what, strings.Join(parts, ", "))
}
