package engine

import (
	"testing"

	"github.com/ruledex/ruledex/rule"
)

// stringTestByGlob is stringTest without its literal shortcut: every value goes through
// a glob pattern, as all did before the shortcut.
func stringTestByGlob(k rule.Kind, a alt) vtest {
	if tk, ok := termKinds[k]; ok {
		lit := a.s
		if !a.cased {
			lit = fold(lit)
		}
		return vtest{kind: tk, s: lit, cased: a.cased}
	}
	pat := a.s
	if !a.wild {
		pat = escapeGlob(a.s)
	}
	switch k {
	case rule.Match, rule.Keyword:
		pat = "*" + pat + "*"
	case rule.StartsW:
		pat = pat + "*"
	case rule.EndsW:
		pat = "*" + pat
	}
	g := parseGlob(pat, !a.cased)
	if sk, lit, ok := g.simple(); ok {
		return vtest{kind: sk, s: lit, cased: a.cased}
	}
	return vtest{kind: tGlob, vext: &vext{g: g}, cased: a.cased}
}

// TestStringTestLiteralShortcut: the shortcut for literals builds the test the glob
// path builds, for every string kind, casing and wildcard flag, and on values whose
// bytes are glob syntax (taken literally unless wild).
func TestStringTestLiteralShortcut(t *testing.T) {
	values := []string{"", "a", "cmd.exe", `\Windows\System32\`, "C:\\PROGRAM FILES\\", "İstanbul",
		"ÄÖÜ straße", "a*b", "*", "?", `\*`, `a\`, `\\`, "a?b*", "x\x00y", "K", "\u212a"}
	kinds := []rule.Kind{rule.Eq, rule.In, rule.Ne, rule.Match, rule.Keyword, rule.StartsW,
		rule.EndsW, rule.Term, rule.TermPrefix, rule.TermSuffix}
	for _, k := range kinds {
		for _, s := range values {
			for _, wild := range []bool{false, true} {
				for _, cased := range []bool{false, true} {
					a := alt{s: s, wild: wild, cased: cased}
					got, want := stringTest(k, a), stringTestByGlob(k, a)
					if got.kind != want.kind || got.s != want.s || got.cased != want.cased ||
						(got.vext == nil) != (want.vext == nil) {
						t.Errorf("%v %+v: got kind %d %q cased %v glob %v, want kind %d %q cased %v glob %v",
							k, a, got.kind, got.s, got.cased, got.vext != nil, want.kind, want.s, want.cased, want.vext != nil)
						continue
					}
					if got.vext != nil {
						for _, in := range []string{"", "a", "ab", "axb", "a*b", "cmd.exe", "A?B*C"} {
							if got.test(in, fold(in)) != want.test(in, fold(in)) {
								t.Errorf("%v %+v on %q: glob tests differ", k, a, in)
							}
						}
					}
				}
			}
		}
	}
}
