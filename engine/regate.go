package engine

import (
	"regexp/syntax"
	"strings"
	"unicode"
	"unicode/utf8"
)

// reGate is a necessary condition of an RE2 regex, checked before the regex runs. Go's
// regexp costs microseconds on a command line, and the literal prefilter cannot help
// regexes without literals: SigmaHQ's SNAKE rule (`\s[a-fA-F0-9]{64}\s[a-fA-F0-9]{16}`)
// ran on every process creation. The gate rejects a value shorter than any match
// (minLen bytes) or without a run of run bytes of an ASCII class (64 hex digits), in
// one pass over the bytes. It only ever accepts too much: the regex decides.
type reGate struct {
	minLen int
	run    int       // 0: no run required
	class  [4]uint64 // bytes of the run's class
	// seq are literals every match contains in this order, without overlap (the
	// literal parts of a top-level concatenation: "&&" ... "&&" ... `"` in
	// Invoke-Obfuscation's `(?i)(?:set).*&&\s?set.*...&&.*"`).
	seq []gateLit
}

// gateLit is one literal of reGate.seq; fold: compare ASCII case-insensitively (lit is
// lower case).
type gateLit struct {
	lit  string
	fold bool
}

// minGateRun is the shortest run worth a pass over the value.
const minGateRun = 8

func newReGate(expr string) *reGate {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil
	}
	g := &reGate{minLen: minBytes(re, 0)}
	g.class, g.run = bestRun(re, 0)
	if g.run < minGateRun {
		g.run = 0
	}
	g.seq = literalSeq(re)
	if g.minLen == 0 && g.run == 0 && len(g.seq) == 0 {
		return nil
	}
	return g
}

// literalSeq returns the literals of a top-level concatenation, in order. A literal
// under (?i) is kept only when every letter's case variants are ASCII: 's' also
// matches 'ſ' and 'k' the Kelvin sign, which an ASCII comparison would miss.
func literalSeq(re *syntax.Regexp) []gateLit {
	for re.Op == syntax.OpCapture {
		re = re.Sub[0]
	}
	if re.Op != syntax.OpConcat {
		return nil
	}
	var out []gateLit
	for _, sub := range re.Sub {
		for sub.Op == syntax.OpCapture {
			sub = sub.Sub[0]
		}
		if sub.Op != syntax.OpLiteral {
			continue
		}
		fold := sub.Flags&syntax.FoldCase != 0
		b := make([]byte, 0, len(sub.Rune))
		ok := true
		for _, r := range sub.Rune {
			if r >= utf8.RuneSelf {
				ok = !fold
				b = utf8.AppendRune(b, r)
				continue
			}
			if fold {
				for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
					if f >= utf8.RuneSelf {
						ok = false
					}
				}
				if 'A' <= r && r <= 'Z' {
					r += 'a' - 'A'
				}
			}
			b = append(b, byte(r))
		}
		if !ok || (!fold && strings.ContainsRune(string(b), utf8.RuneError)) {
			// A literal U+FFFD also matches an invalid byte.
			continue
		}
		out = append(out, gateLit{lit: string(b), fold: fold})
	}
	return out
}

// indexFold is strings.Index with ASCII letters compared case-insensitively; lit is
// lower case.
func indexFold(s, lit string) int {
	if len(lit) == 0 {
		return 0
	}
	first := lit[0]
	upper := first
	if 'a' <= first && first <= 'z' {
		upper = first - ('a' - 'A')
	}
	for i := 0; i+len(lit) <= len(s); i++ {
		if c := s[i]; c != first && c != upper {
			continue
		}
		j := 1
		for ; j < len(lit); j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != lit[j] {
				break
			}
		}
		if j == len(lit) {
			return i
		}
	}
	return -1
}

func (g *reGate) accepts(s string) bool {
	if len(s) < g.minLen {
		return false
	}
	pos := 0
	for _, l := range g.seq {
		var i int
		if l.fold {
			i = indexFold(s[pos:], l.lit)
		} else {
			i = strings.Index(s[pos:], l.lit)
		}
		if i < 0 {
			return false
		}
		pos += i + len(l.lit)
	}
	if g.run == 0 {
		return true
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if g.class[c>>6]&(1<<(c&63)) == 0 {
			n = 0
			continue
		}
		if n++; n >= g.run {
			return true
		}
	}
	return false
}

const maxGateLen = 1 << 20

// minBytes is a lower bound of the length in bytes of any match of re.
func minBytes(re *syntax.Regexp, depth int) int {
	if depth > 100 {
		return 0
	}
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			// A fold may be shorter than the rune written (ſ and s): one byte each.
			return len(re.Rune)
		}
		n := 0
		for _, r := range re.Rune {
			if r == utf8.RuneError {
				n++ // matches one invalid byte
				continue
			}
			n += max(1, utf8.RuneLen(r))
		}
		return n
	case syntax.OpCharClass, syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return 1
	case syntax.OpCapture, syntax.OpPlus:
		return minBytes(re.Sub[0], depth+1)
	case syntax.OpRepeat:
		return min(maxGateLen, re.Min*minBytes(re.Sub[0], depth+1))
	case syntax.OpConcat:
		n := 0
		for _, s := range re.Sub {
			n = min(maxGateLen, n+minBytes(s, depth+1))
		}
		return n
	case syntax.OpAlternate:
		n := maxGateLen
		for _, s := range re.Sub {
			n = min(n, minBytes(s, depth+1))
		}
		return n
	}
	return 0 // empty, anchors, boundaries, star, quest
}

// pureClass reports the bytes re matches when every match of re is a run of at least n
// ASCII bytes of one class (a class, an ASCII literal, or a repeat of one).
func pureClass(re *syntax.Regexp, depth int) (cls [4]uint64, n int, ok bool) {
	if depth > 100 {
		return cls, 0, false
	}
	switch re.Op {
	case syntax.OpCharClass:
		for i := 0; i+1 < len(re.Rune); i += 2 {
			lo, hi := re.Rune[i], re.Rune[i+1]
			if hi >= utf8.RuneSelf {
				return cls, 0, false
			}
			for c := lo; c <= hi; c++ {
				cls[c>>6] |= 1 << (c & 63)
			}
		}
		return cls, 1, true
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			if r >= utf8.RuneSelf {
				return cls, 0, false
			}
			cls[r>>6] |= 1 << (r & 63)
			if re.Flags&syntax.FoldCase != 0 {
				for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
					if f >= utf8.RuneSelf {
						return cls, 0, false // 'k' also matches the Kelvin sign
					}
					cls[f>>6] |= 1 << (f & 63)
				}
			}
		}
		return cls, len(re.Rune), true
	case syntax.OpCapture:
		return pureClass(re.Sub[0], depth+1)
	case syntax.OpPlus, syntax.OpRepeat:
		cls, n, ok = pureClass(re.Sub[0], depth+1)
		if re.Op == syntax.OpRepeat {
			n = min(maxGateLen, n*re.Min)
		}
		return cls, n, ok && n > 0
	}
	return cls, 0, false
}

// bestRun returns the longest run of one ASCII class that every match contains. Runs
// of consecutive elements are not joined: the union of \s and a hex class would accept
// far more text than the 64 hex digits alone.
func bestRun(re *syntax.Regexp, depth int) ([4]uint64, int) {
	if depth > 100 {
		return [4]uint64{}, 0
	}
	if cls, n, ok := pureClass(re, depth); ok {
		return cls, n
	}
	switch re.Op {
	case syntax.OpCapture, syntax.OpPlus:
		return bestRun(re.Sub[0], depth+1)
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return bestRun(re.Sub[0], depth+1)
		}
	case syntax.OpConcat:
		var best [4]uint64
		bestN := 0
		for _, s := range re.Sub {
			if cls, n := bestRun(s, depth+1); n > bestN {
				best, bestN = cls, n
			}
		}
		return best, bestN
	}
	return [4]uint64{}, 0
}
