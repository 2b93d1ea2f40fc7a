package sigma

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/rule"
)

// corpusFile is one Sigma file of the shared corpus.
type corpusFile struct {
	rel  string // relative to corpus/sigma, forward slashes
	data []byte
}

func loadCorpus(tb testing.TB) []corpusFile {
	tb.Helper()
	root := corpustest.Path(tb, "sigma")
	var out []corpusFile
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			return nil
		}
		ext := filepath.Ext(p)
		if ext != ".yml" && ext != ".yaml" {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out = append(out, corpusFile{rel: filepath.ToSlash(rel), data: data})
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	if len(out) < 4000 {
		tb.Fatalf("corpus: found only %d Sigma files under %s", len(out), root)
	}
	return out
}

// group names the acceptance bucket of a corpus file.
func group(rel string) string {
	parts := strings.Split(rel, "/")
	if parts[0] == "sigmahq" && len(parts) > 1 {
		switch parts[1] {
		case "rules", "rules-emerging-threats", "rules-threat-hunting", "rules-compliance", "rules-placeholder":
			return "sigmahq-active"
		}
		return "sigmahq-" + parts[1]
	}
	return parts[0]
}

func TestCorpus(t *testing.T) {
	files := loadCorpus(t)
	type tally struct{ files, clean, rules int }
	groups := map[string]*tally{}
	codes := map[string]int{}
	// The real errors of mdecrevoisier, checked by hand against the files: file, line, column, code.
	wantErrs := map[string]bool{
		"windows-bitlocker/win-os-BitLocker feature activation (PowerShell).yaml:41:56 sigma/condition/unknown-ref":       true,
		"windows-defender/defender-host signatures outdated (limited).yaml:21:49 sigma/condition/comparison":              true,
		"windows-firewall/win-os-firewall rule creation (command).yaml:23:14 sigma/condition/unknown-ref":                 true,
		"windows-os/win-os-Pass-the-hash login with Mimikatz.yaml:28:32 sigma/condition/unknown-ref":                      true,
		"windows-os/win-os-dump file transfered over SMB share.yaml:20:1 sigma/yaml/syntax":                               true,
		"windows-scheduled_task/win-os-scheduled task fastly created and deleted.yaml:23:31 sigma/condition/comparison":   true,
		"windows-scheduled_task/win-os-scheduled task fastly created and deleted.yaml:23:52 sigma/aggregation/unknown":    true,
		"windows-services/win-os-service abuse with malicious ImagePath (service).yaml:22:14 sigma/condition/unknown-ref": true,
	}
	var p Parser
	for _, f := range files {
		g := group(f.rel)
		if g == "logsources" {
			if p.Detect(f.rel, f.data) {
				t.Errorf("%s: Detect accepted a logsource config", f.rel)
			}
			continue
		}
		if !p.Detect(f.rel, f.data) {
			t.Errorf("%s: Detect rejected a Sigma file", f.rel)
		}
		tl := groups[g]
		if tl == nil {
			tl = &tally{}
			groups[g] = tl
		}
		tl.files++
		rules, diags := p.Parse(rule.Source{Repo: "corpus", Path: f.rel}, f.data)
		clean := true
		all := diags
		for _, r := range rules {
			all = append(all, r.Diagnostics...)
		}
		for _, d := range all {
			codes[string(d.Severity)+" "+d.Code]++
			if d.Severity == rule.Error {
				clean = false
				switch g {
				case "sigmahq-active":
					t.Errorf("%s", d)
				case "mdecrevoisier":
					k := fmt.Sprintf("%s:%d:%d %s", strings.TrimPrefix(d.Pos.File, "mdecrevoisier/"), d.Pos.Line, d.Pos.Col, d.Code)
					if !wantErrs[k] {
						t.Errorf("unexpected error %s", d)
					}
					delete(wantErrs, k)
				}
			}
			if d.Pos.File != f.rel || d.Pos.Line == 0 {
				t.Errorf("%s: unlocated diagnostic %s", f.rel, d)
			}
		}
		if len(rules) == 0 && len(diags) == 0 {
			t.Errorf("%s: no rule and no diagnostic", f.rel)
		}
		tl.rules += len(rules)
		if clean {
			tl.clean++
		}
	}
	for k := range wantErrs {
		t.Errorf("mdecrevoisier: expected error not reported: %s", k)
	}
	var names []string
	for g := range groups {
		names = append(names, g)
	}
	sort.Strings(names)
	for _, g := range names {
		tl := groups[g]
		t.Logf("%-24s files %5d rules %5d clean %5d (%.2f%%)", g, tl.files, tl.rules, tl.clean, 100*float64(tl.clean)/float64(tl.files))
	}
	var cs []string
	for c := range codes {
		cs = append(cs, c)
	}
	sort.Strings(cs)
	for _, c := range cs {
		t.Logf("%6d %s", codes[c], c)
	}
	need := map[string]float64{"sigmahq-active": 99.5, "mdecrevoisier": 97}
	for g, min := range need {
		tl := groups[g]
		if tl == nil {
			t.Fatalf("corpus group %s missing", g)
		}
		if rate := 100 * float64(tl.clean) / float64(tl.files); rate < min {
			t.Errorf("%s: %.2f%% of files without error diagnostics, want ≥ %.1f%%", g, rate, min)
		}
	}
}

// TestDetectOtherLanguages: no KQL, Sentinel or Splunk file of the corpus is taken for Sigma.
func TestDetectOtherLanguages(t *testing.T) {
	var p Parser
	n := 0
	for _, lang := range []string{"kql", "spl"} {
		root := corpustest.Path(t, lang)
		err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, path)
			n++
			if p.Detect(filepath.ToSlash(rel), data) {
				t.Errorf("%s/%s: detected as Sigma", lang, rel)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if n < 100 {
		t.Fatalf("only %d KQL/SPL files found", n)
	}
	t.Logf("%d KQL/SPL files checked", n)
}

// TestConcurrentParse: ingest parses files in parallel; results must not depend on it.
func TestConcurrentParse(t *testing.T) {
	files := loadCorpus(t)
	var sample []corpusFile
	for i := 0; i < len(files); i += 7 {
		sample = append(sample, files[i])
	}
	encode := func(f corpusFile) string {
		rules, diags := Parser{}.Parse(rule.Source{Repo: "c", Path: f.rel}, f.data)
		b, err := json.Marshal(struct {
			R []*rule.Rule
			D []rule.Diagnostic
		}{rules, diags})
		if err != nil {
			t.Errorf("%s: %v", f.rel, err)
		}
		return string(b)
	}
	want := make([]string, len(sample))
	for i, f := range sample {
		want[i] = encode(f)
	}
	got := make([]string, len(sample))
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < len(sample); i += 4 {
				got[i] = encode(sample[i])
			}
		}(w)
	}
	wg.Wait()
	for i := range sample {
		if got[i] != want[i] {
			t.Errorf("%s: concurrent parse differs", sample[i].rel)
		}
	}
}
