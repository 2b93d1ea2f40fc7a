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
