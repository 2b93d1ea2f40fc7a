package sigma

import (
	"os"
	"testing"

	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/rule"
)

// FuzzParse feeds arbitrary bytes to the parser without its recover safety net, so a
// panic fails the test, and checks that every rule and diagnostic is well formed.
func FuzzParse(f *testing.F) {
	seeds := []string{
		"mdecrevoisier/windows-bits/win-os-BITS abuse for payload download (command).yaml",
		"mdecrevoisier/windows-os/win-os-brutforce enumeration with unexisting users.yaml",
		"mdecrevoisier/windows-os/win-os-dump file transfered over SMB share.yaml",
		"sigmahq/unsupported/windows/win_remote_service.yml",
		"sigmahq/rules/windows/process_creation/proc_creation_win_powershell_base64_frombase64string.yml",
		"sigmahq/rules/windows/process_access/proc_access_win_lsass_susp_access_flag.yml",
	}
	for _, s := range seeds {
		data, err := os.ReadFile(corpustest.Path(f, "sigma", s))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		condRule("all of sel_* and not 1 of filter_* | count(x) by y > 3"),
		condRule("a or (b and not c)"),
		condRule("[a, b and c]"),
		selRule("    - A|contains|windash: ' -x'\n      B|re|i: 'a.*'\n    - C|base64offset|contains: 'z'"),
		"title: c\ncorrelation:\n  type: value_count\n  rules: [a]\n  timespan: 1h\n  condition:\n    field: F\n    gte: 3\n",
		"action: global\ntitle: g\ndetection:\n  a:\n    X: 1\n  condition: a\n---\nlogsource:\n  product: p\n---\naction: repeat\nlogsource:\n  product: q\n",
		"x: &a [*a]\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const path = "f.yml"
		_ = Parser{}.Detect(path, data)
		fc := &fileCtx{src: rule.Source{Repo: "r", Path: path}, data: string(data)}
		rules, diags := fc.parse()
		if len(rules) == 0 && len(diags) == 0 {
			t.Fatal("no rule and no diagnostic")
		}
		for _, d := range diags {
			if d.Pos.File != path || d.Code == "" {
				t.Fatalf("bad file diagnostic %+v", d)
			}
		}
		for i, r := range rules {
			if r.ID == "" || r.Title == "" || r.Source.Index != i || r.Stages == nil || r.Language != rule.Sigma {
				t.Fatalf("rule %d incomplete: id %q title %q index %d", i, r.ID, r.Title, r.Source.Index)
			}
			for _, d := range r.Diagnostics {
				if d.Pos.File != path || d.Pos.Line < 1 || d.Code == "" || d.Message == "" {
					t.Fatalf("rule %d: bad diagnostic %+v", i, d)
				}
			}
			for j, s := range r.Stages {
				if s.Index != j {
					t.Fatalf("rule %d: stage %d has index %d", i, j, s.Index)
				}
			}
			for _, p := range rule.Preds(r.Root) {
				for _, v := range p.Pred.Values {
					if _, err := rule.ExpandValue(p.Pred, v); err != nil && !p.Pred.Has(rule.TWindash) {
						t.Fatalf("rule %d: %s %s %q: %v", i, p.Pred.Field, p.Pred.Kind, v.S, err)
					}
				}
			}
		}
	})
}
