package engine

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ruledex/ruledex/rule"
)

// TestRegexAtomsNecessary checks that every value a regex matches holds one of the
// regex's atoms once folded (the prefilter's promise), for every regex of the SigmaHQ
// rules on every regression event value, and on values written to match.
func TestRegexAtomsNecessary(t *testing.T) {
	windowsRules(t) // parses corpusAll: every SigmaHQ rule
	var exprs []string
	for _, r := range corpusAll {
		walkPreds(r.Root, 0, func(p *rule.Pred) {
			if p.Kind == rule.Regex {
				for _, v := range p.Values {
					exprs = append(exprs, v.S)
				}
			}
		})
	}
	var values []string
	for _, ev := range regressionEvents(t) {
		for _, f := range ev.Fields {
			values = append(values, f.Value)
		}
	}
	cases := []struct{ expr, text string }{
		{`\\[a-zA-Z0-9]{1,32}\.[a-zA-Z0-9]{1,6}\.[ "']{1}`, `odbcconf.exe /a {regsvr C:\x\abc.dll. "x"}`},
		{`(?i)[K]ey\.[s]`, "\u212aEY.\u017f"},
		{`a[bB]c[\x{FFFD}]`, "aBc\xff"},
		{`(?i)x[yz]Q`, "XZq"},
		// (?i)s matches ſ (U+017F), which folds to itself; the Kelvin sign folds to k.
		{`(?i)sekurlsa::logonpasswords`, "\u017fekurl\u017fa::LOGONPA\u017f\u017fWORDS"},
		{`(?i)mimikatz`, "MIMI\u212aATZ"},
		{`(?i)ss\.[a-z]`, "\u017fS.x"},
	}
	for _, c := range cases {
		exprs = append(exprs, c.expr)
		values = append(values, c.text)
	}
	matched, selective := 0, 0
	for _, expr := range exprs {
		re, err := regexp.Compile(expr)
		if err != nil {
			continue // RE2 rejects it: no atoms are taken from it
		}
		atoms := regexAtoms(expr)
		if atoms == nil {
			continue
		}
		if slices.ContainsFunc(atoms, func(a string) bool { return len(a) > 1 }) {
			selective++
		}
		for _, v := range values {
			if !re.MatchString(v) {
				continue
			}
			matched++
			low := fold(v)
			if !slices.ContainsFunc(atoms, func(a string) bool { return strings.Contains(low, a) }) {
				t.Errorf("%q matches %q, which holds none of its atoms %q", expr, v, atoms)
			}
		}
	}
	for _, c := range cases {
		if !regexp.MustCompile(c.expr).MatchString(c.text) {
			t.Errorf("case %q does not match %q: it tests nothing", c.expr, c.text)
		}
	}
	if got := regexAtoms(cases[0].expr); !slices.Equal(got, []string{". ", ".\"", ".'"}) {
		t.Errorf("atoms of %q = %q, want the dot with the class after it", cases[0].expr, got)
	}
	t.Logf("%d regexes (%d with an atom longer than a byte), %d matching values checked", len(exprs), selective, matched)
}
