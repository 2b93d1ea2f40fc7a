package engine

import (
	"strings"
	"unicode/utf8"
)

// gtok is one token of a compiled wildcard pattern.
type gtok struct {
	lit  string // literal text when star and one are both false
	star bool   // '*': any run of characters, possibly empty
	one  bool   // '?': exactly one character
}

// glob is a wildcard pattern compiled from ruledex glob syntax (see rule.Value).
type glob struct {
	toks []gtok
}

// parseGlob splits a ruledex glob pattern into tokens: `*` and `?` are wildcards,
// `\*` `\?` `\\` the literal characters, any other backslash literal. Runs of stars
// collapse to one. Literals are folded when foldCase is set.
func parseGlob(pat string, foldCase bool) *glob {
	g := &glob{}
	var b strings.Builder
	flush := func() {
		if b.Len() > 0 {
			s := b.String()
			if foldCase {
				s = fold(s)
			}
			g.toks = append(g.toks, gtok{lit: s})
			b.Reset()
		}
	}
	for i := 0; i < len(pat); i++ {
		c := pat[i]
		switch c {
		case '\\':
			if i+1 < len(pat) && (pat[i+1] == '*' || pat[i+1] == '?' || pat[i+1] == '\\') {
				b.WriteByte(pat[i+1])
				i++
			} else {
				b.WriteByte('\\')
			}
		case '*':
			flush()
			if n := len(g.toks); n == 0 || !g.toks[n-1].star {
				g.toks = append(g.toks, gtok{star: true})
			}
		case '?':
			flush()
			g.toks = append(g.toks, gtok{one: true})
		default:
			b.WriteByte(c)
		}
	}
	flush()
	return g
}

// literalOnly returns the pattern's text when it has no wildcard.
func (g *glob) literalOnly() (string, bool) {
	switch len(g.toks) {
	case 0:
		return "", true
	case 1:
		if !g.toks[0].star && !g.toks[0].one {
			return g.toks[0].lit, true
		}
	}
	return "", false
}

// simple reduces `lit`, `*lit`, `lit*`, `*lit*` to a string test, which is what most
// Sigma values are once the parser's contains/startswith/endswith are applied.
func (g *glob) simple() (k testKind, lit string, ok bool) {
	t := g.toks
	lead := len(t) > 0 && t[0].star
	if lead {
		t = t[1:]
	}
	trail := len(t) > 0 && t[len(t)-1].star
	if trail {
		t = t[:len(t)-1]
	}
	switch len(t) {
	case 0:
		if lead || trail {
			return tAny, "", true
		}
		return tEq, "", true
	case 1:
		if t[0].star || t[0].one {
			return 0, "", false
		}
		lit = t[0].lit
	default:
		return 0, "", false
	}
	switch {
	case lead && trail:
		return tContains, lit, true
	case lead:
		return tSuffix, lit, true
	case trail:
		return tPrefix, lit, true
	}
	return tEq, lit, true
}

// longestLiteral returns the longest literal run, which any match must contain.
func (g *glob) longestLiteral() string {
	best := ""
	for _, t := range g.toks {
		if !t.star && !t.one && len(t.lit) > len(best) {
			best = t.lit
		}
	}
	return best
}

// match reports whether s matches the whole pattern. Star backtracking resumes at the
// last star only, which is enough for patterns without nested structure (linear in
// practice, O(len(s)·len(pattern)) at worst).
func (g *glob) match(s string) bool {
	toks := g.toks
	ti, si := 0, 0
	starTi, starSi := -1, 0
	for {
		if ti == len(toks) {
			if si == len(s) {
				return true
			}
		} else {
			t := toks[ti]
			switch {
			case t.star:
				starTi, starSi = ti, si
				ti++
				// Jump straight to the next occurrence of the following literal.
				if ti < len(toks) && toks[ti].lit != "" {
					j := strings.Index(s[si:], toks[ti].lit)
					if j < 0 {
						return false
					}
					si += j
					starSi = si
				}
				continue
			case t.one:
				if si < len(s) {
					_, n := utf8.DecodeRuneInString(s[si:])
					si += n
					ti++
					continue
				}
			default:
				if strings.HasPrefix(s[si:], t.lit) {
					si += len(t.lit)
					ti++
					continue
				}
			}
		}
		// Mismatch: let the last star swallow one more character.
		if starTi < 0 || starSi >= len(s) {
			return false
		}
		_, n := utf8.DecodeRuneInString(s[starSi:])
		starSi += n
		ti, si = starTi+1, starSi
		if ti < len(toks) && toks[ti].lit != "" {
			j := strings.Index(s[si:], toks[ti].lit)
			if j < 0 {
				return false
			}
			si += j
			starSi = si
		}
	}
}
