package kuery

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/ruledex/ruledex/rule"
)

// Lucene query strings (Elasticsearch query_string), after Lucene's classic parser:
// a group is a sequence of clauses, each with an optional modifier (+ required,
// - / NOT / ! prohibited) and joined by AND (&&), OR (||) or nothing (OR, the default
// operator). AND makes both neighbours required. Operators are upper case only.

type lclause struct {
	node       *rule.Node
	req, prohi bool
}

func (p *parser) lucene() *rule.Node {
	n := p.lGroup("", false)
	p.space()
	if !p.eof() {
		start := p.i
		p.i = len(p.src)
		n = join(rule.OpAnd, []*rule.Node{n, p.opaque(start, len(p.src), "syntax", "unexpected "+strconv.Quote(p.src[start:start+1])+"; rest of the query kept as text")})
	}
	return n
}

// lOp reads an operator word or symbol if one is next.
func (p *parser) lOp() string {
	save := p.i
	p.space()
	for _, op := range []struct{ w, name string }{{"AND", "AND"}, {"OR", "OR"}, {"NOT", "NOT"}, {"&&", "AND"}, {"||", "OR"}} {
		if strings.HasPrefix(p.src[p.i:], op.w) {
			end := p.i + len(op.w)
			if op.w[0] == '&' || op.w[0] == '|' || end == len(p.src) || isSpace(p.src[end]) || p.src[end] == '(' {
				p.i = end
				return op.name
			}
		}
	}
	p.i = save
	return ""
}

// lGroup reads clauses up to ')' or the end; field is the default field of a
// `field:( ... )` group, "" at top level.
func (p *parser) lGroup(field string, inParen bool) *rule.Node {
	var cl []lclause
	pendingAnd := false
	for {
		p.space()
		if p.eof() || (inParen && p.peek() == ')') {
			break
		}
		op := p.lOp()
		switch op {
		case "AND":
			pendingAnd = true
			if len(cl) > 0 && !cl[len(cl)-1].prohi {
				cl[len(cl)-1].req = true
			}
			continue
		case "OR":
			continue
		}
		c := lclause{}
		if op == "NOT" {
			c.prohi = true
		} else {
			p.space()
			switch p.peek() {
			case '+':
				c.req = true
				p.i++
			case '-', '!':
				c.prohi = true
				p.i++
			}
		}
		if pendingAnd && !c.prohi {
			c.req = true
		}
		pendingAnd = false
		start := p.i
		c.node = p.lClause(field)
		if p.i == start {
			// Nothing consumed: skip one byte so the loop ends on any input.
			if !p.eof() {
				p.i++
			}
			c.node = p.opaque(start, p.i, "syntax", "unexpected "+strconv.Quote(p.src[start:p.i]))
		}
		cl = append(cl, c)
	}
	var req, prohi, should []*rule.Node
	for _, c := range cl {
		switch {
		case c.prohi:
			prohi = append(prohi, c.node)
		case c.req:
			req = append(req, c.node)
		default:
			should = append(should, c.node)
		}
	}
	parts := req
	if len(req) == 0 && len(should) > 0 {
		parts = append(parts, join(rule.OpOr, should))
	}
	for _, n := range prohi {
		parts = append(parts, not(n))
	}
	return join(rule.OpAnd, parts)
}

// lClause reads one clause: (group), field:value, field:(group), _exists_:field, or a
// bare value.
func (p *parser) lClause(field string) *rule.Node {
	p.space()
	start := p.i
	if p.peek() == '(' {
		return p.lParen(field)
	}
	if field == "" {
		// A field name is a term followed by ':'.
		save := p.i
		name, ok := p.lTerm()
		if ok && p.peek() == ':' {
			p.i++
			if name.lit == "_exists_" {
				fv, ok := p.lTerm()
				if !ok {
					return p.opaque(start, p.i, "syntax", "field expected after _exists_:")
				}
				return rule.Leaf(&rule.Pred{Field: fv.lit, Kind: rule.IsNotNull, Native: "_exists_:" + fv.lit, Pos: p.pos(start)})
			}
			p.space()
			if p.peek() == '(' {
				return p.lParen(name.lit)
			}
			return p.lValue(name.lit, start)
		}
		p.i = save
	}
	return p.lValue(field, start)
}

func (p *parser) lParen(field string) *rule.Node {
	start := p.i
	p.i++
	if p.depth++; p.depth > maxDepth {
		p.i = len(p.src)
		return p.opaque(start, len(p.src), "depth", "nesting too deep")
	}
	n := p.lGroup(field, true)
	p.depth--
	if p.peek() != ')' {
		return join(rule.OpAnd, []*rule.Node{n, p.opaque(p.i, p.i, "syntax", "missing )")})
	}
	p.i++
	p.lSuffix()
	return n
}

// lSuffix skips a boost (^2), which only scores; reports a fuzzy/proximity (~n).
func (p *parser) lSuffix() bool {
	fuzzy := false
	for p.i < len(p.src) && (p.src[p.i] == '^' || p.src[p.i] == '~') {
		if p.src[p.i] == '~' {
			fuzzy = true
		}
		p.i++
		for p.i < len(p.src) && (p.src[p.i] >= '0' && p.src[p.i] <= '9' || p.src[p.i] == '.') {
			p.i++
		}
	}
	return fuzzy
}

// lValue reads the value of `field:` (field "" for a bare term).
func (p *parser) lValue(field string, start int) *rule.Node {
	p.space()
	native := field + ":"
	switch c := p.peek(); {
	case c == '"':
		v := p.kQuoted()
		if p.lSuffix() {
			return p.opaque(start, p.i, "proximity", "a proximity search is not modeled")
		}
		if field == "" {
			return p.keywordPred(v)
		}
		return p.valuePred(field, v, native)
	case c == '/':
		return p.lRegex(field, start)
	case c == '[' || c == '{':
		return p.lRange(field, start)
	case c == '>' || c == '<':
		op := string(c)
		p.i++
		if p.peek() == '=' {
			op += "="
			p.i++
		}
		v, ok := p.lTerm()
		if !ok || field == "" {
			return p.opaque(start, p.i, "syntax", "bad range "+op)
		}
		return p.rangePred(field, op, v)
	}
	v, ok := p.lTerm()
	if !ok {
		return p.opaque(start, p.i, "syntax", "value expected")
	}
	if p.lSuffix() {
		return p.opaque(start, p.i, "fuzzy", "a fuzzy term is not modeled")
	}
	if field == "" {
		return p.keywordPred(v)
	}
	return p.valuePred(field, v, native)
}

// lTerm reads an unquoted Lucene term: backslash escapes any character; * and ? are
// wildcards; + - ! / may appear inside but not at the start.
func (p *parser) lTerm() (val, bool) {
	start := p.i
	var lit, glob strings.Builder
	wild := false
	for p.i < len(p.src) {
		c := p.src[p.i]
		if isSpace(c) || strings.IndexByte(`():^[]"{}~`, c) >= 0 {
			break
		}
		if p.i == start && strings.IndexByte("+-!/", c) >= 0 {
			break
		}
		if c == ':' {
			break
		}
		if c == '\\' && p.i+1 < len(p.src) {
			d := p.src[p.i+1]
			lit.WriteByte(d)
			globEscape(&glob, d)
			p.i += 2
			continue
		}
		if c == '*' || c == '?' {
			wild = true
			lit.WriteByte(c)
			glob.WriteByte(c)
			p.i++
			continue
		}
		lit.WriteByte(c)
		globEscape(&glob, c)
		p.i++
	}
	if p.i == start {
		return val{}, false
	}
	v := val{lit: lit.String(), off: start}
	if wild {
		v.glob = glob.String()
	}
	return v, true
}

// lRegex reads /re/: Lucene regexes match the whole term, so the pattern is anchored.
func (p *parser) lRegex(field string, start int) *rule.Node {
	p.i++
	var b strings.Builder
	for p.i < len(p.src) && p.src[p.i] != '/' {
		if p.src[p.i] == '\\' && p.i+1 < len(p.src) {
			if p.src[p.i+1] == '/' {
				b.WriteByte('/')
			} else {
				b.WriteString(p.src[p.i : p.i+2])
			}
			p.i += 2
			continue
		}
		b.WriteByte(p.src[p.i])
		p.i++
	}
	if p.eof() {
		return p.opaque(start, p.i, "syntax", "unterminated regex")
	}
	p.i++
	re := b.String()
	if field == "" {
		return p.opaque(start, p.i, "keyword-regex", "a regex without a field is not modeled")
	}
	// Lucene's optional operators (complement ~, interval <n-m>, intersection &, any
	// string @, empty #) have no RE2 spelling; query_string enables them all.
	if strings.ContainsAny(re, "~<&@#") {
		return p.opaque(start, p.i, "regex", "Lucene regex operators (~ < & @ #) are not modeled")
	}
	anchored := "^(?:" + re + ")$"
	if _, err := regexp.Compile(anchored); err != nil {
		return p.opaque(start, p.i, "regex", "regex does not compile: "+err.Error())
	}
	fi := info(field)
	// Lucene's . matches any character, newlines included: flag s.
	tr := append(transforms(fi, !fi.text), rule.TDotAll)
	return rule.Leaf(&rule.Pred{Field: field, Kind: rule.Regex, Values: []rule.Value{{S: anchored}}, Transforms: tr, Native: field + ":/" + re + "/", Pos: p.pos(start)})
}

// lRange reads [a TO b], {a TO b} and the mixed forms; * is an open bound.
func (p *parser) lRange(field string, start int) *rule.Node {
	incLo := p.peek() == '['
	p.i++
	p.space()
	lo, ok1 := p.lBound()
	p.space()
	if !strings.HasPrefix(p.src[p.i:], "TO") {
		p.skipTo("]}")
		return p.opaque(start, p.i, "syntax", "range without TO")
	}
	p.i += 2
	p.space()
	hi, ok2 := p.lBound()
	p.space()
	c := p.peek()
	if c != ']' && c != '}' {
		p.skipTo("]}")
		return p.opaque(start, p.i, "syntax", "unterminated range")
	}
	incHi := c == ']'
	p.i++
	if !ok1 || !ok2 || field == "" {
		return p.opaque(start, p.i, "syntax", "bad range")
	}
	var parts []*rule.Node
	if lo.lit != "*" {
		op := ">"
		if incLo {
			op = ">="
		}
		parts = append(parts, p.rangePred(field, op, lo))
	}
	if hi.lit != "*" {
		op := "<"
		if incHi {
			op = "<="
		}
		parts = append(parts, p.rangePred(field, op, hi))
	}
	if len(parts) == 0 {
		return rule.Leaf(&rule.Pred{Field: field, Kind: rule.IsNotNull, Native: field + ":[* TO *]", Pos: p.pos(start)})
	}
	return join(rule.OpAnd, parts)
}

func (p *parser) lBound() (val, bool) {
	if p.peek() == '"' {
		return p.kQuoted(), true
	}
	start := p.i
	for p.i < len(p.src) && !isSpace(p.src[p.i]) && p.src[p.i] != ']' && p.src[p.i] != '}' {
		p.i++
	}
	if p.i == start {
		return val{}, false
	}
	return val{lit: p.src[start:p.i], off: start}, true
}

func (p *parser) skipTo(set string) {
	for p.i < len(p.src) && strings.IndexByte(set, p.src[p.i]) < 0 {
		p.i++
	}
	if p.i < len(p.src) {
		p.i++
	}
}
