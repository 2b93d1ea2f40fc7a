package engine

import (
	"regexp/syntax"
)

// regexAtoms returns literals one of which occurs in every match of the regex (folded,
// since the prefilter scans folded text), or nil when no such set was found. It only
// ever under-approximates what a match needs, so the prefilter stays sound.
func regexAtoms(expr string) []string {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil
	}
	return reqLits(re.Simplify(), 0)
}

const maxRegexAtoms = 64

func reqLits(re *syntax.Regexp, depth int) []string {
	if depth > 50 {
		return nil
	}
	switch re.Op {
	case syntax.OpLiteral:
		if len(re.Rune) == 0 {
			return nil
		}
		return []string{fold(string(re.Rune))}
	case syntax.OpCapture:
		return reqLits(re.Sub[0], depth+1)
	case syntax.OpPlus:
		return reqLits(re.Sub[0], depth+1)
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return reqLits(re.Sub[0], depth+1)
		}
		return nil
	case syntax.OpConcat:
		var best []string
		for _, s := range re.Sub {
			if l := reqLits(s, depth+1); l != nil && betterLits(l, best) {
				best = l
			}
		}
		// Consecutive parts with few spellings (a literal, a small class) join: every
		// match of `\.[ "']` holds one of ". ", ".\"", ".'", rarer than "." alone.
		var run []string
		for _, s := range re.Sub {
			alts := spellings(s)
			if alts == nil {
				run = nil
				continue
			}
			if run == nil {
				run = alts
			} else if run = joinAll(run, alts); run == nil {
				// Too many spellings: start again from this part.
				run = alts
			}
			if betterLits(run, best) {
				best = run
			}
		}
		return best
	case syntax.OpAlternate:
		var out []string
		for _, s := range re.Sub {
			l := reqLits(s, depth+1)
			if l == nil {
				return nil
			}
			out = append(out, l...)
			if len(out) > maxRegexAtoms {
				return nil
			}
		}
		return out
	}
	return nil
}

func betterLits(a, b []string) bool {
	if b == nil {
		return true
	}
	ma, mb := minStrLen(a), minStrLen(b)
	if ma != mb {
		return ma > mb
	}
	return len(a) < len(b)
}

func minStrLen(a []string) int {
	m := 1 << 30
	for _, s := range a {
		if len(s) < m {
			m = len(s)
		}
	}
	return m
}

// maxSpellings bounds the strings a part or a run of parts may stand for.
const maxSpellings = 16

// spellings returns every folded string re matches when they are few: a literal (as
// reqLits folds it) or a class of a few runes; nil otherwise.
func spellings(re *syntax.Regexp) []string {
	for re.Op == syntax.OpCapture {
		re = re.Sub[0]
	}
	switch re.Op {
	case syntax.OpLiteral:
		if len(re.Rune) == 0 {
			return nil
		}
		return []string{fold(string(re.Rune))}
	case syntax.OpCharClass:
		n := 0
		for i := 0; i+1 < len(re.Rune); i += 2 {
			n += int(re.Rune[i+1]-re.Rune[i]) + 1
			if n > maxSpellings {
				return nil
			}
		}
		var out []string
		seen := map[string]bool{}
		for i := 0; i+1 < len(re.Rune); i += 2 {
			for r := re.Rune[i]; r <= re.Rune[i+1]; r++ {
				if f := fold(string(r)); !seen[f] {
					seen[f] = true
					out = append(out, f)
				}
			}
		}
		return out
	}
	return nil
}

// joinAll returns every a+b, or nil when they would be more than maxSpellings.
func joinAll(as, bs []string) []string {
	if len(as)*len(bs) > maxSpellings {
		return nil
	}
	out := make([]string, 0, len(as)*len(bs))
	for _, a := range as {
		for _, b := range bs {
			out = append(out, a+b)
		}
	}
	return out
}
