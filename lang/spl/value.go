package spl

import (
	"strings"

	"github.com/ruledex/ruledex/rule"
)

// pattern is a value with wildcards: SPL search values use `*` for any run; eval's
// like() uses `%` for any run and `_` for one character. Elements are kept apart so a
// literal `*` from like() is never mistaken for a wildcard.
type pattern []patElem

type patElem struct {
	lit  string // literal text when wild == 0
	wild byte   // '*' any run, '?' one character, 0 literal
}

// searchPattern reads a search-command value: every `*` is a wildcard (SPL has no way
// to escape it), everything else is literal.
func searchPattern(v string) pattern {
	var p pattern
	for {
		i := strings.IndexByte(v, '*')
		if i < 0 {
			break
		}
		if i > 0 {
			p = append(p, patElem{lit: v[:i]})
		}
		p = append(p, patElem{wild: '*'})
		v = v[i+1:]
	}
	if v != "" {
		p = append(p, patElem{lit: v})
	}
	return p
}

// likePattern reads an eval like() pattern: `%` any run, `_` one character.
func likePattern(v string) pattern {
	var p pattern
	start := 0
	for i := 0; i < len(v); i++ {
		if v[i] == '%' || v[i] == '_' {
			if i > start {
				p = append(p, patElem{lit: v[start:i]})
			}
			w := byte('*')
			if v[i] == '_' {
				w = '?'
			}
			p = append(p, patElem{wild: w})
			start = i + 1
		}
	}
	if start < len(v) {
		p = append(p, patElem{lit: v[start:]})
	}
	return p
}

// classify turns a pattern into the most specific predicate kind: `x` eq, `*x*` match,
// `x*` starts_with, `*x` ends_with, `*` (anything) is_not_null, and any other shape a
// glob in ruledex glob syntax (see rule.Value).
func (p pattern) classify() (rule.Kind, rule.Value) {
	lead, trail := 0, len(p)
	for lead < len(p) && p[lead].wild == '*' {
		lead++
	}
	for trail > lead && p[trail-1].wild == '*' {
		trail--
	}
	mid := p[lead:trail]
	if len(mid) == 0 {
		if lead == 0 {
			return rule.Eq, rule.Value{S: ""}
		}
		return rule.IsNotNull, rule.Value{}
	}
	if len(mid) == 1 && mid[0].wild == 0 {
		s := mid[0].lit
		switch {
		case lead > 0 && trail < len(p):
			return rule.Match, rule.Value{S: s}
		case lead > 0:
			return rule.EndsW, rule.Value{S: s}
		case trail < len(p):
			return rule.StartsW, rule.Value{S: s}
		}
		return rule.Eq, rule.Value{S: s}
	}
	return rule.Glob, rule.Value{S: p.glob(), Wild: true}
}

// glob renders the pattern in ruledex glob syntax, escaping only the backslashes,
// stars and question marks that would otherwise read as syntax.
func (p pattern) glob() string {
	var b strings.Builder
	for i, e := range p {
		if e.wild != 0 {
			b.WriteByte(e.wild)
			continue
		}
		s := e.lit
		for j := 0; j < len(s); j++ {
			c := s[j]
			switch c {
			case '*', '?':
				b.WriteByte('\\')
			case '\\':
				var next byte
				if j+1 < len(s) {
					next = s[j+1]
				} else if i+1 < len(p) {
					next = p[i+1].wild
				}
				if next == '*' || next == '?' || next == '\\' {
					b.WriteByte('\\')
				}
			}
			b.WriteByte(c)
		}
	}
	return b.String()
}
