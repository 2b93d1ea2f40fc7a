package sigma

import (
	"fmt"
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

// decodeGlob reads ruledex glob syntax as rule.Value documents it, independently of
// the encoder: `*` `?` wildcards, `\*` `\?` `\\` literals, any other backslash literal.
func decodeGlob(p string) sstr {
	var out sstr
	var lit []byte
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\' && i+1 < len(p) && (p[i+1] == '*' || p[i+1] == '?' || p[i+1] == '\\'):
			lit = append(lit, p[i+1])
			i++
		case c == '*' || c == '?':
			if len(lit) > 0 {
				out = append(out, part{lit: string(lit)})
				lit = nil
			}
			out = append(out, part{wild: c})
		default:
			lit = append(lit, c)
		}
	}
	if len(lit) > 0 {
		out = append(out, part{lit: string(lit)})
	}
	return out
}

// FuzzPattern checks that a Sigma value's glob encoding reads back to the same
// literals and wildcards.
func FuzzPattern(f *testing.F) {
	for _, s := range []string{`C:\Windows\*`, `a\\*b`, `\\\*`, `x\`, `*\x.exe`, `a?b\?c`, `\\\\`, `\`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := parseSigmaString(s).collapse()
		got := decodeGlob(want.pattern()).collapse()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%q: pattern %q reads back as %v, want %v", s, want.pattern(), got, want)
		}
	})
}
