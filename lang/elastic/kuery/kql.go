package kuery

import (
	"strconv"
	"strings"

	"github.com/ruledex/ruledex/rule"
)

// Kibana query language, after Kibana's kuery grammar:
//
//	or    = and { "or" and }          and = not { "and" not }
//	not   = ["not"] sub               sub = "(" or ")" | field ":" "{" or "}" | expr
//	expr  = field rangeop literal | field ":" values | value
//	values = "(" vor ")" | value      (vor/vand/vnot: the same boolean shape over values)
//
// Keywords are case-insensitive; or/and need whitespace on both sides, not after it.

func (p *parser) kuery() *rule.Node {
	p.space()
	if p.eof() {
		return nil
	}
	n := p.kOr("")
	p.space()
	if !p.eof() {
		// Unbalanced input: keep what was read and the rest as opaque, AND-ed, since
		// Kibana would reject the query and we cannot tell what was meant.
		start := p.i
		rest := p.opaque(start, len(p.src), "syntax", "unexpected "+strconv.Quote(p.src[start:start+1])+"; rest of the query kept as text")
		p.i = len(p.src)
		n = join(rule.OpAnd, []*rule.Node{n, rest})
	}
	return n
}

// kw consumes keyword w (after optional whitespace) if present.
func (p *parser) kw(w string) bool {
	save := p.i
	p.space()
	if p.wordAt(p.i, w) {
		p.i += len(w)
		return true
	}
	p.i = save
	return false
}

func (p *parser) kOr(prefix string) *rule.Node {
	kids := []*rule.Node{p.kAnd(prefix)}
	for p.kw("or") {
		kids = append(kids, p.kAnd(prefix))
	}
	return join(rule.OpOr, kids)
}

func (p *parser) kAnd(prefix string) *rule.Node {
	kids := []*rule.Node{p.kNot(prefix)}
	for p.kw("and") {
		kids = append(kids, p.kNot(prefix))
	}
	return join(rule.OpAnd, kids)
}

func (p *parser) kNot(prefix string) *rule.Node {
	if p.kw("not") {
		if p.depth++; p.depth > maxDepth {
			return p.opaque(p.i, len(p.src), "depth", "nesting too deep")
		}
		n := not(p.kNot(prefix))
		p.depth--
		return n
	}
	return p.kSub(prefix)
}

func (p *parser) kSub(prefix string) *rule.Node {
	p.space()
	if p.eof() {
		return p.opaque(p.i, p.i, "syntax", "expression expected at end of query")
	}
	if p.peek() == '(' {
		start := p.i
		p.i++
		if p.depth++; p.depth > maxDepth {
			p.i = len(p.src)
			return p.opaque(start, len(p.src), "depth", "nesting too deep")
		}
		n := p.kOr(prefix)
		p.depth--
		p.space()
		if p.peek() != ')' {
			return join(rule.OpAnd, []*rule.Node{n, p.opaque(p.i, p.i+1, "syntax", "missing )")})
		}
		p.i++
		return n
	}
	start := p.i
	lit, ok := p.kLiteral()
	if !ok {
		// A stray special character: skip it so the parser always advances.
		p.i++
		return p.opaque(start, p.i, "syntax", "unexpected "+strconv.Quote(p.src[start:p.i]))
	}
	p.space()
	c := p.peek()
	switch {
	case c == ':':
		p.i++
		p.space()
		// A field name with * is kept as written (see the package doc).
		field := prefix + lit.lit
		if p.peek() == '{' {
			return p.kNested(start, field)
		}
		native := field + ":"
		return p.kValues(field, native)
	case c == '<' || c == '>':
		op := string(c)
		p.i++
		if p.peek() == '=' {
			op += "="
			p.i++
		}
		p.space()
		v, ok := p.kLiteral()
		if !ok {
			return p.opaque(start, p.i, "syntax", "value expected after "+op)
		}
		if v.glob != "" {
			return p.opaque(start, p.i, "range-wildcard", "a wildcard in a range bound is not modeled")
		}
		return p.rangePred(prefix+lit.lit, op, v)
	}
	return p.keywordPred(lit)
}

// kNested reads `field : { q }`: q's fields are relative to field.
func (p *parser) kNested(start int, field string) *rule.Node {
	p.i++ // {
	if p.depth++; p.depth > maxDepth {
		p.i = len(p.src)
		return p.opaque(start, len(p.src), "depth", "nesting too deep")
	}
	n := p.kOr(field + ".")
	p.depth--
	p.space()
	if p.peek() != '}' {
		return join(rule.OpAnd, []*rule.Node{n, p.opaque(p.i, p.i+1, "syntax", "missing }")})
	}
	p.i++
	if n != nil && n.Op != rule.OpPred {
		// The parts must hold on one nested object; the IR has no such scope.
		p.warn(start, "nested", "nested query read as independent conditions on "+field)
	}
	return n
}

// kValues reads the value side of `field :`.
func (p *parser) kValues(field, native string) *rule.Node {
	p.space()
	if p.peek() == '(' {
		start := p.i
		p.i++
		if p.depth++; p.depth > maxDepth {
			p.i = len(p.src)
			return p.opaque(start, len(p.src), "depth", "nesting too deep")
		}
		n := p.vOr(field, native)
		p.depth--
		p.space()
		if p.peek() != ')' {
			return join(rule.OpAnd, []*rule.Node{n, p.opaque(p.i, p.i+1, "syntax", "missing ) in value list")})
		}
		p.i++
		return n
	}
	start := p.i
	v, ok := p.kLiteral()
	if !ok {
		if !p.eof() {
			p.i++
		}
		return p.opaque(start, p.i, "syntax", "value expected after "+native)
	}
	return p.valuePred(field, v, native)
}

func (p *parser) vOr(field, native string) *rule.Node {
	kids := []*rule.Node{p.vAnd(field, native)}
	for p.kw("or") {
		kids = append(kids, p.vAnd(field, native))
	}
	return join(rule.OpOr, kids)
}

func (p *parser) vAnd(field, native string) *rule.Node {
	kids := []*rule.Node{p.vNot(field, native)}
	for p.kw("and") {
		kids = append(kids, p.vNot(field, native))
	}
	return join(rule.OpAnd, kids)
}

func (p *parser) vNot(field, native string) *rule.Node {
	if p.kw("not") {
		if p.depth++; p.depth > maxDepth {
			p.i = len(p.src)
			return p.opaque(p.i, len(p.src), "depth", "nesting too deep")
		}
		n := not(p.vNot(field, native))
		p.depth--
		return n
	}
	return p.kValues(field, native)
}

// kLiteral reads a quoted string or an unquoted literal. An unquoted literal runs over
// whitespace up to a special character or a keyword and is trimmed, as in Kibana.
func (p *parser) kLiteral() (val, bool) {
	if p.peek() == '"' {
		return p.kQuoted(), true
	}
	start := p.i
	var lit, glob strings.Builder
	wild := false
	for p.i < len(p.src) {
		c := p.src[p.i]
		if isSpace(c) {
			// A keyword ends the literal: " or ", " and ", " not ".
			j := p.i
			for j < len(p.src) && isSpace(p.src[j]) {
				j++
			}
			if j == len(p.src) || p.wordAt(j, "or") || p.wordAt(j, "and") || p.wordAt(j, "not") {
				break
			}
			lit.WriteByte(c)
			globEscape(&glob, c)
			p.i++
			continue
		}
		if p.i == start && p.wordAt(p.i, "not") {
			break
		}
		switch c {
		case '\\':
			if p.i+1 >= len(p.src) {
				p.warn(p.i, "escape", "backslash at end of query")
				lit.WriteByte(c)
				globEscape(&glob, c)
				p.i++
				continue
			}
			d := p.src[p.i+1]
			switch {
			case d == 't' || d == 'r' || d == 'n':
				e := map[byte]byte{'t': '\t', 'r': '\r', 'n': '\n'}[d]
				lit.WriteByte(e)
				glob.WriteByte(e)
				p.i += 2
			case strings.IndexByte(`\():<>"*{}`, d) >= 0:
				lit.WriteByte(d)
				globEscape(&glob, d)
				p.i += 2
			case d == 'u' && p.i+6 <= len(p.src) && isHex(p.src[p.i+2:p.i+6]):
				r, _ := strconv.ParseUint(p.src[p.i+2:p.i+6], 16, 32)
				s := string(rune(r))
				lit.WriteString(s)
				for k := 0; k < len(s); k++ {
					globEscape(&glob, s[k])
				}
				p.i += 6
			default:
				// \or, \and, \not escape a keyword; anything else Kibana rejects, and
				// we keep the backslash.
				for _, w := range []string{"or", "and", "not"} {
					if p.i+1+len(w) <= len(p.src) && strings.EqualFold(p.src[p.i+1:p.i+1+len(w)], w) {
						lit.WriteString(p.src[p.i+1 : p.i+1+len(w)])
						glob.WriteString(p.src[p.i+1 : p.i+1+len(w)])
						p.i += 1 + len(w)
						goto next
					}
				}
				p.warn(p.i, "escape", "unknown escape "+strconv.Quote(p.src[p.i:p.i+2])+" kept as a backslash")
				lit.WriteByte(c)
				globEscape(&glob, c)
				p.i++
			}
		case '*':
			wild = true
			lit.WriteByte(c)
			glob.WriteByte('*')
			p.i++
		case '(', ')', ':', '<', '>', '"', '{', '}':
			goto done
		default:
			lit.WriteByte(c)
			globEscape(&glob, c)
			p.i++
		}
	next:
	}
done:
	if p.i == start {
		return val{}, false
	}
	v := val{lit: strings.TrimSpace(lit.String()), off: start}
	if wild {
		v.glob = trimGlobSpace(glob.String())
	}
	return v, true
}

// trimGlobSpace trims unescaped surrounding whitespace of a glob (glob escapes never
// apply to whitespace, so a plain trim is exact).
func trimGlobSpace(g string) string { return strings.TrimSpace(g) }

// kQuoted reads "..." with Kibana's escapes (\" \\ \t \r \n \uXXXX); any other
// backslash is literal.
func (p *parser) kQuoted() val {
	start := p.i
	p.i++
	var b strings.Builder
	for p.i < len(p.src) {
		c := p.src[p.i]
		if c == '"' {
			p.i++
			return val{lit: b.String(), quoted: true, off: start}
		}
		if c == '\\' && p.i+1 < len(p.src) {
			switch d := p.src[p.i+1]; d {
			case '"', '\\':
				b.WriteByte(d)
				p.i += 2
				continue
			case 't', 'r', 'n':
				b.WriteByte(map[byte]byte{'t': '\t', 'r': '\r', 'n': '\n'}[d])
				p.i += 2
				continue
			case 'u':
				if p.i+6 <= len(p.src) && isHex(p.src[p.i+2:p.i+6]) {
					r, _ := strconv.ParseUint(p.src[p.i+2:p.i+6], 16, 32)
					b.WriteRune(rune(r))
					p.i += 6
					continue
				}
			}
		}
		b.WriteByte(c)
		p.i++
	}
	p.warn(start, "syntax", "unterminated string")
	return val{lit: b.String(), quoted: true, off: start}
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}
