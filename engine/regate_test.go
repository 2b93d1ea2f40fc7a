package engine

import (
	"regexp"
	"strings"
	"testing"

	"github.com/ruledex/ruledex/rule"
)

func TestReGate(t *testing.T) {
	cases := []struct {
		expr          string
		minLen, run   int
		accept, block []string
	}{
		{`\s[a-fA-F0-9]{64}\s[a-fA-F0-9]{16}`, 82, 64,
			[]string{"x " + strings.Repeat("ab12", 16) + " " + strings.Repeat("f", 16)},
			[]string{"cmd.exe /c whoami", strings.Repeat("ab12", 15) + strings.Repeat("z", 30)}},
		{`(?i)[a-z0-9]{12,}\.dll`, 16, 0, []string{"abcdefghijkl.dll"}, []string{"a.dll"}},
		{`(?i)[0-9]{12,}\.dll`, 16, 12, []string{"x123456789012.dll"}, []string{"12345678901x2.dll.......", "x.dll"}},
		{`ab|cdef`, 2, 0, []string{"ab"}, []string{"a"}},
		{`x*`, 0, 0, []string{""}, nil},
		{`[0-9]{4}[a-f]{4}`, 8, 0, []string{"1234abcd"}, []string{"1234abc"}},
		{`\x{FFFD}`, 1, 0, []string{"\xff"}, nil},
		// SigmaHQ's Invoke-Obfuscation Via Stdin: "&&", "&&" and `"` must occur in order.
		{`(?i)(?:set).*&&\s?set.*(?:environment|invoke|\$\{?input).*&&.*"`, 17, 0,
			[]string{`cmd /c SET a=1&&set b=INVOKE&&echo "x"`},
			[]string{`cmd /c set a=1 & set b=invoke & echo "x" ...`, `set a=1&&set b=invoke&& echo x ...........`}},
		// (?i)s also matches ſ: the literal cannot be compared as ASCII.
		{`(?i)set&&`, 5, 0, []string{"ſet&&", "SET&&"}, nil},
		{`a\.b.*C\.d`, 6, 0, []string{"xa.b--C.d"}, []string{"xa.b--c.d", "C.d a.b..."}},
	}
	for _, c := range cases {
		t.Run(c.expr, func(t *testing.T) {
			g := newReGate(c.expr)
			re := regexp.MustCompile(c.expr)
			minLen, run := 0, 0
			if g != nil {
				minLen, run = g.minLen, g.run
			}
			if minLen != c.minLen || run != c.run {
				t.Errorf("gate minLen %d run %d, want %d and %d", minLen, run, c.minLen, c.run)
			}
			for _, v := range c.accept {
				if !re.MatchString(v) {
					t.Fatalf("case error: %q does not match", v)
				}
				if g != nil && !g.accepts(v) {
					t.Errorf("gate rejects %q, which matches", v)
				}
			}
			for _, v := range c.block {
				if re.MatchString(v) {
					t.Fatalf("case error: %q matches", v)
				}
				if g == nil || g.accepts(v) {
					t.Errorf("gate accepts %q", v)
				}
			}
		})
	}
}

// TestReGateSoundOnCorpus: for every regex of the SigmaHQ rules and every field value
// of the regression events and the corpus/evtx samples, a value the regex matches passes
// its gate.
func TestReGateSoundOnCorpus(t *testing.T) {
	windowsRules(t)
	m, _ := Compile(corpusAll, Options{})
	var values []string
	evs := regressionEvents(t)
	for _, path := range sampleFiles(t) {
		more, _ := readEvents(path)
		evs = append(evs, more...)
	}
	for _, ev := range evs {
		for _, f := range ev.Fields {
			values = append(values, f.Value)
		}
	}
	gates, matched, rejected := 0, 0, 0
	for _, v := range m.variants {
		for _, p := range v.preds {
			if p.kind != rule.Regex {
				continue
			}
			for _, g := range p.groups {
				for _, vt := range g {
					if vt.re == nil || vt.gate == nil {
						continue
					}
					gates++
					for _, val := range values {
						ok := vt.gate.accepts(val)
						if vt.re.MatchString(val) {
							matched++
							if !ok {
								t.Errorf("gate of %q rejects %q, which matches", vt.expr, val)
							}
						} else if !ok {
							rejected++
						}
					}
				}
			}
		}
	}
	if gates == 0 || matched == 0 {
		t.Fatalf("%d gates, %d matches: nothing tested", gates, matched)
	}
	t.Logf("%d regexes with a gate, %d values: %d matches, %d non-matches rejected by the gate", gates, len(values), matched, rejected)
}
