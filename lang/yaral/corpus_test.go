package yaral

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

type corpusFile struct {
	rel  string
	data []byte
}

// corpusFiles reads every .yaral file of the Chronicle rules repository.
func corpusFiles(tb testing.TB) []corpusFile {
	root := corpustest.Path(tb, "yaral", "chronicle")
	var out []corpusFile
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaral") {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out = append(out, corpusFile{filepath.ToSlash(rel), data})
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// TestCorpus: every file yields rules or a located diagnostic; the acceptance shares
// of clean rules and rules with an indicator hold.
func TestCorpus(t *testing.T) {
	files := corpusFiles(t)
	if len(files) < 880 {
		t.Fatalf("found %d .yaral files, want the 886 of the Chronicle repository", len(files))
	}
	fm := fieldmap.Default()
	var nRules, clean, withInd, alts int
	codes := map[string]int{}
	var unclean []string
	for _, f := range files {
		if !(Parser{}).Detect(f.rel, f.data) {
			t.Errorf("%s: not detected", f.rel)
		}
		rs, diags := Parser{}.Parse(rule.Source{Repo: "chronicle", Path: f.rel}, f.data)
		if len(rs) == 0 {
			if len(diags) == 0 {
				t.Errorf("%s: no rule and no diagnostic", f.rel)
			}
			for _, d := range diags {
				if d.Pos.File != f.rel || d.Pos.Line == 0 {
					t.Errorf("%s: diagnostic not located: %v", f.rel, d)
				}
			}
		}
		for _, d := range diags {
			codes[string(d.Severity)+" "+d.Code]++
		}
		for _, r := range rs {
			nRules++
			for _, d := range r.Diagnostics {
				codes[string(d.Severity)+" "+d.Code]++
				if d.Pos.File != f.rel {
					t.Errorf("%s: diagnostic without file: %v", f.rel, d)
				}
			}
			if !r.HasErrors() {
				clean++
			} else {
				for _, d := range r.Diagnostics {
					if d.Severity == rule.Error {
						unclean = append(unclean, d.String())
						break
					}
				}
			}
			if len(fm.Indicators(r)) > 0 {
				withInd++
			}
			checkStagesInRoot(t, r)
			for _, s := range r.Stages {
				if s.Alt > 0 {
					alts++
					break
				}
			}
			if r.Title == "" || r.ID == "" || r.Body == "" || len(r.Stages) == 0 {
				t.Errorf("%s: rule %q lacks title, id, body or stages", f.rel, r.Name)
			}
		}
	}
	var cs []string
	for c, n := range codes {
		cs = append(cs, c+": "+itoa(n))
	}
	sort.Strings(cs)
	cleanPct := 100 * float64(clean) / float64(nRules)
	indPct := 100 * float64(withInd) / float64(nRules)
	t.Logf("files %d, rules %d, clean %d (%.1f%%), with indicator %d (%.1f%%)", len(files), nRules, clean, cleanPct, withInd, indPct)
	t.Logf("diagnostics: %s", strings.Join(cs, "; "))
	t.Logf("rules shown as alternatives of a top-level or: %d", alts)
	for i, u := range unclean {
		if i >= 20 {
			break
		}
		t.Logf("unclean: %s", u)
	}
	if nRules < len(files) {
		t.Errorf("%d rules from %d files: every file holds a rule", nRules, len(files))
	}
	if cleanPct < 98 {
		t.Errorf("clean share %.1f%%, want >= 98%%", cleanPct)
	}
	if indPct < 90 {
		t.Errorf("indicator share %.1f%%, want >= 90%%", indPct)
	}
}

func itoa(n int) string {
	const digits = "0123456789"
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{digits[n%10]}, b...)
	}
	return string(b)
}

// checkStagesInRoot: stages are numbered in order, and a single-event rule's stage nodes are subtrees of Root, so
// rule.Preds(stage.Node) sees each predicate as Root does.
func checkStagesInRoot(t *testing.T, r *rule.Rule) {
	t.Helper()
	for i, s := range r.Stages {
		if s.Index != i {
			t.Errorf("%s: stage %d has index %d", r.Source.Path, i, s.Index)
		}
	}
	if r.Root == nil {
		return
	}
	in := map[*rule.Node]bool{}
	rule.Walk(r.Root, func(n *rule.Node, _ bool) bool {
		in[n] = true
		return true
	})
	for _, s := range r.Stages {
		if s.Node != nil && !in[s.Node] {
			t.Errorf("%s: stage %d %q is not part of Root", r.Source.Path, s.Index, s.Label)
		}
	}
}
