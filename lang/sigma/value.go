package sigma

import (
	"strings"

	"github.com/ruledex/ruledex/rule"
)

// part is one piece of a Sigma string: a literal run, or a wildcard ('*' any run,
// '?' one character).
type part struct {
	lit  string
	wild byte
}

// sstr is a Sigma string value after escape processing: wildcards are separate parts,
// so a literal `*` (written `\*`) can never be mistaken for one.
type sstr []part

// parseSigmaString applies the Sigma escaping rules (specification and pySigma):
// `\*`, `\?` and `\\` are the literal characters; a backslash before anything else,
// or at the end, is itself literal; unescaped `*` and `?` are wildcards.
func parseSigmaString(s string) sstr {
	if !strings.ContainsAny(s, `*?\`) {
		return sstr{{lit: s}}
	}
	var out sstr
	var b strings.Builder
	flush := func() {
		if b.Len() > 0 {
			out = append(out, part{lit: b.String()})
			b.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\':
			if i+1 < len(s) && (s[i+1] == '*' || s[i+1] == '?' || s[i+1] == '\\') {
				b.WriteByte(s[i+1])
				i++
			} else {
				b.WriteByte('\\')
			}
		case '*', '?':
			flush()
			out = append(out, part{wild: c})
		default:
			b.WriteByte(c)
		}
	}
	flush()
	return out
}

func (s sstr) hasWild() bool {
	for _, p := range s {
		if p.wild != 0 {
			return true
		}
	}
	return false
}

// literal concatenates the literal parts (meaningful when there are no wildcards).
func (s sstr) literal() string {
	if len(s) == 1 && s[0].wild == 0 {
		return s[0].lit
	}
	var b strings.Builder
	for _, p := range s {
		b.WriteString(p.lit)
	}
	return b.String()
}

// pattern encodes s in ruledex glob syntax (see rule.Value): wildcards bare, literal
// `*` and `?` escaped, a literal backslash doubled only where it would otherwise
// escape what follows, so common Windows paths keep their single backslashes.
func (s sstr) pattern() string {
	var b strings.Builder
	for i, p := range s {
		if p.wild != 0 {
			b.WriteByte(p.wild)
			continue
		}
		for j := 0; j < len(p.lit); j++ {
			c := p.lit[j]
			switch c {
			case '*', '?':
				b.WriteByte('\\')
				b.WriteByte(c)
			case '\\':
				var next byte
				if j+1 < len(p.lit) {
					next = p.lit[j+1]
				} else if i+1 < len(s) {
					next = s[i+1].wild
					if next == 0 && len(s[i+1].lit) > 0 {
						next = s[i+1].lit[0]
					}
				}
				if next == '*' || next == '?' || next == '\\' {
					b.WriteString(`\\`)
				} else {
					b.WriteByte('\\')
				}
			default:
				b.WriteByte(c)
			}
		}
	}
	return b.String()
}

// collapse merges runs of '*' (which mean the same as one) and empty literals.
func (s sstr) collapse() sstr {
	out := make(sstr, 0, len(s))
	for _, p := range s {
		if p.wild == 0 && p.lit == "" {
			continue
		}
		if p.wild == '*' && len(out) > 0 && out[len(out)-1].wild == '*' {
			continue
		}
		out = append(out, p)
	}
	return out
}

// prependStar and appendStar are what contains/startswith/endswith do (pySigma adds a
// wildcard only when the value does not already start/end with one).
func (s sstr) prependStar() sstr {
	if len(s) > 0 && s[0].wild == '*' {
		return s
	}
	return append(sstr{{wild: '*'}}, s...)
}

func (s sstr) appendStar() sstr {
	if len(s) > 0 && s[len(s)-1].wild == '*' {
		return s
	}
	out := make(sstr, len(s), len(s)+1)
	copy(out, s)
	return append(out, part{wild: '*'})
}

// effective classifies a string value by what it really tests: no wildcard is Eq; a
// leading and/or trailing `*` only is EndsW/StartsW/Match with the stars removed; any
// other wildcard use is Glob with the whole pattern.
func (s sstr) effective() (rule.Kind, rule.Value) {
	c := s.collapse()
	if !c.hasWild() {
		return rule.Eq, rule.Value{S: c.literal()}
	}
	lead := len(c) > 0 && c[0].wild == '*'
	trail := len(c) > 1 && c[len(c)-1].wild == '*'
	inner := c
	if lead {
		inner = inner[1:]
	}
	if trail {
		inner = inner[:len(inner)-1]
	}
	if len(inner) > 0 && !inner.hasWild() {
		v := rule.Value{S: inner.literal()}
		switch {
		case lead && trail:
			return rule.Match, v
		case lead:
			return rule.EndsW, v
		case trail:
			return rule.StartsW, v
		}
	}
	return rule.Glob, rule.Value{S: c.pattern(), Wild: true}
}

// keywordValue keeps a keyword's pattern as written: a keyword is a substring of the
// event anyway, so its wildcards are only meaningful inside.
func (s sstr) keywordValue() rule.Value {
	c := s.collapse()
	if !c.hasWild() {
		return rule.Value{S: c.literal()}
	}
	return rule.Value{S: c.pattern(), Wild: true}
}
