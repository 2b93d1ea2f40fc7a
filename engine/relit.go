package engine

import (
	"regexp/syntax"
	"unicode"
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
		if s, ok := literalFold(re); ok {
			return []string{s}
		}
		// (?i)s also matches ſ, which folds to itself: keep the longest part without
		// such letters, which every match holds folded as written.
		best, from := "", 0
		for i := 0; i <= len(re.Rune); i++ {
			if i == len(re.Rune) || !oneFold(re.Rune[i]) {
				if part := fold(string(re.Rune[from:i])); len(part) > len(best) {
					best = part
				}
				from = i + 1
			}
		}
		if best == "" {
			return nil
		}
		return []string{best}
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

// literalFold returns the folded text every match of the literal re folds to: false
// when re ignores case and a letter of it has case variants that fold apart (s and ſ).
func literalFold(re *syntax.Regexp) (string, bool) {
	if re.Flags&syntax.FoldCase != 0 {
		for _, r := range re.Rune {
			if !oneFold(r) {
				return "", false
			}
		}
	}
	return fold(string(re.Rune)), true
}

// oneFold reports whether every case variant of r (its simple folding orbit, what (?i)
// matches) folds as r does.
func oneFold(r rune) bool {
	f := fold(string(r))
	for x := unicode.SimpleFold(r); x != r; x = unicode.SimpleFold(x) {
		if fold(string(x)) != f {
			return false
		}
	}
	return true
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
		if s, ok := literalFold(re); ok && s != "" {
			return []string{s}
		}
		return nil
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
