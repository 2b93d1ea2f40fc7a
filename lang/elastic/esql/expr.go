package esql

import (
	"strings"
)

// exKind is the shape of an expression node.
type exKind uint8

const (
	xBad      exKind = iota
	xIdent           // s: field or column name
	xString          // s: the string value
	xNumber          // s: the number as written
	xBool            // s: true / false
	xNull            //
	xDuration        // s: "7 day"
	xCall            // op: function name (lower case), kids: arguments
	xBinary          // op: ==, !=, <, <=, >, >=, +, -, *, /, %, and, or, :
	xNot             // kids[0]
	xNeg             // kids[0]
	xIn              // kids[0] in kids[1:]; not
	xLike            // kids[0] like/rlike kids[1:]; op: like or rlike; not
	xIsNull          // kids[0] is [not] null; not
	xCast            // kids[0]::s
	xList            // kids: a parenthesized or bracketed list
	xParam           // ? or ?name
	xStar            // * as in count(*)
	xMap             // { "option": value, ... } function options
)

type ex struct {
	k    exKind
	op   string
	s    string
	not  bool
	kids []*ex
	st   int // byte offsets of the expression in the query
	en   int
}

// exParser parses expressions over the tokens of one command.
type exParser struct {
	toks  []tok
	i     int
	err   string // first syntax error
	errAt int
	depth int
}

func (p *exParser) peek() tok { return p.toks[p.i] }

func (p *exParser) next() tok {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *exParser) fail(msg string) {
	if p.err == "" {
		p.err = msg
		p.errAt = p.peek().s
	}
}

// isKw reports whether the next token is the case-insensitive keyword w.
func (p *exParser) isKw(w string) bool {
	t := p.peek()
	return t.kind == tIdent && strings.EqualFold(t.val, w)
}

func (p *exParser) isOp(op string) bool {
	t := p.peek()
	return t.kind == tOp && t.val == op
}

func (p *exParser) end() int {
	if p.i == 0 {
		return p.toks[0].s
	}
	return p.toks[p.i-1].e
}

func (p *exParser) or() *ex {
	l := p.and()
	for p.isKw("or") {
		p.next()
		r := p.and()
		l = &ex{k: xBinary, op: "or", kids: []*ex{l, r}, st: l.st, en: r.en}
	}
	return l
}

func (p *exParser) and() *ex {
	l := p.notE()
	for p.isKw("and") {
		p.next()
		r := p.notE()
		l = &ex{k: xBinary, op: "and", kids: []*ex{l, r}, st: l.st, en: r.en}
	}
	return l
}

func (p *exParser) notE() *ex {
	if p.isKw("not") {
		st := p.next().s
		if p.depth++; p.depth > 200 {
			p.fail("nesting too deep")
			return &ex{k: xBad, st: st, en: st}
		}
		x := p.notE()
		p.depth--
		return &ex{k: xNot, kids: []*ex{x}, st: st, en: x.en}
	}
	return p.cmp()
}

var cmpOps = map[string]bool{"==": true, "!=": true, "<": true, "<=": true, ">": true, ">=": true, ":": true}

func (p *exParser) cmp() *ex {
	l := p.add()
	t := p.peek()
	if t.kind == tOp && cmpOps[t.val] {
		p.next()
		r := p.add()
		return &ex{k: xBinary, op: t.val, kids: []*ex{l, r}, st: l.st, en: r.en}
	}
	neg := false
	if p.isKw("not") {
		// x NOT IN / NOT LIKE / NOT RLIKE
		nt := p.toks[p.i+1]
		if nt.kind == tIdent && (strings.EqualFold(nt.val, "in") || strings.EqualFold(nt.val, "like") || strings.EqualFold(nt.val, "rlike")) {
			p.next()
			neg = true
		}
	}
	switch {
	case p.isKw("in"):
		p.next()
		list := p.primary()
		kids := []*ex{l}
		if list.k == xList {
			kids = append(kids, list.kids...)
		} else {
			kids = append(kids, list)
		}
		return &ex{k: xIn, not: neg, kids: kids, st: l.st, en: p.end()}
	case p.isKw("like") || p.isKw("rlike"):
		op := strings.ToLower(p.next().val)
		pat := p.primary()
		kids := []*ex{l}
		if pat.k == xList {
			kids = append(kids, pat.kids...)
		} else {
			kids = append(kids, pat)
		}
		return &ex{k: xLike, op: op, not: neg, kids: kids, st: l.st, en: p.end()}
	case p.isKw("is"):
		p.next()
		n := &ex{k: xIsNull, kids: []*ex{l}, st: l.st}
		if p.isKw("not") {
			p.next()
			n.not = true
		}
		if !p.isKw("null") {
			p.fail("null expected after IS")
		} else {
			p.next()
		}
		n.en = p.end()
		return n
	}
	return l
}

func (p *exParser) add() *ex {
	l := p.mul()
	for p.isOp("+") || p.isOp("-") {
		op := p.next().val
		r := p.mul()
		l = &ex{k: xBinary, op: op, kids: []*ex{l, r}, st: l.st, en: r.en}
	}
	return l
}

func (p *exParser) mul() *ex {
	l := p.unary()
	for p.isOp("*") || p.isOp("/") || p.isOp("%") {
		op := p.next().val
		r := p.unary()
		l = &ex{k: xBinary, op: op, kids: []*ex{l, r}, st: l.st, en: r.en}
	}
	return l
}

func (p *exParser) unary() *ex {
	if p.isOp("-") || p.isOp("+") {
		t := p.next()
		if p.depth++; p.depth > 200 {
			p.fail("nesting too deep")
			return &ex{k: xBad, st: t.s, en: t.e}
		}
		x := p.unary()
		p.depth--
		if t.val == "+" {
			return x
		}
		if x.k == xNumber {
			x.s = "-" + x.s
			x.st = t.s
			return x
		}
		return &ex{k: xNeg, kids: []*ex{x}, st: t.s, en: x.en}
	}
	x := p.primary()
	for p.isOp("::") {
		p.next()
		t := p.next()
		x = &ex{k: xCast, s: strings.ToLower(t.val), kids: []*ex{x}, st: x.st, en: t.e}
	}
	return x
}

var timeUnits = map[string]bool{}

func init() {
	for _, u := range []string{"millisecond", "second", "minute", "hour", "day", "week", "month", "quarter", "year",
		"ms", "s", "sec", "min", "h", "d", "w", "mo", "q", "y", "yr", "m"} {
		timeUnits[u] = true
		timeUnits[u+"s"] = true
	}
}

func (p *exParser) primary() *ex {
	t := p.peek()
	switch t.kind {
	case tNumber:
		p.next()
		n := &ex{k: xNumber, s: t.val, st: t.s, en: t.e}
		if u := p.peek(); u.kind == tIdent && timeUnits[strings.ToLower(u.val)] {
			p.next()
			return &ex{k: xDuration, s: t.val + " " + u.val, st: t.s, en: u.e}
		}
		return n
	case tString:
		p.next()
		return &ex{k: xString, s: t.val, st: t.s, en: t.e}
	case tIdent:
		p.next()
		switch strings.ToLower(t.val) {
		case "true", "false":
			return &ex{k: xBool, s: strings.ToLower(t.val), st: t.s, en: t.e}
		case "null":
			return &ex{k: xNull, st: t.s, en: t.e}
		}
		if p.isOp("(") {
			p.next()
			c := &ex{k: xCall, op: strings.ToLower(t.val), s: t.val, st: t.s}
			if p.depth++; p.depth > 200 {
				p.fail("nesting too deep")
				return &ex{k: xBad, st: t.s, en: t.e}
			}
			for !p.isOp(")") && p.peek().kind != tEOF {
				if p.isOp("*") {
					st := p.next()
					c.kids = append(c.kids, &ex{k: xStar, st: st.s, en: st.e})
				} else {
					c.kids = append(c.kids, p.or())
				}
				if p.isOp(",") {
					p.next()
					continue
				}
				if !p.isOp(")") {
					p.fail("expected , or ) in call of " + t.val)
					break
				}
			}
			p.depth--
			if p.isOp(")") {
				p.next()
			}
			c.en = p.end()
			return c
		}
		return &ex{k: xIdent, s: t.val, st: t.s, en: t.e}
	case tOp:
		switch t.val {
		case "(", "[":
			p.next()
			closer := ")"
			if t.val == "[" {
				closer = "]"
			}
			if p.depth++; p.depth > 200 {
				p.fail("nesting too deep")
				return &ex{k: xBad, st: t.s, en: t.e}
			}
			l := &ex{k: xList, st: t.s}
			for !p.isOp(closer) && p.peek().kind != tEOF {
				l.kids = append(l.kids, p.or())
				if p.isOp(",") {
					p.next()
					continue
				}
				if !p.isOp(closer) {
					p.fail("expected , or " + closer)
					break
				}
			}
			p.depth--
			if p.isOp(closer) {
				p.next()
			} else {
				p.fail("missing " + closer)
			}
			l.en = p.end()
			if len(l.kids) == 1 && t.val == "(" {
				// A parenthesized expression; IN and LIKE read lists through xList.
				return &ex{k: xList, kids: l.kids, st: l.st, en: l.en, op: "paren"}
			}
			return l
		case "{":
			// Function options: kept as text, never a column.
			p.next()
			d := 1
			for d > 0 && p.peek().kind != tEOF {
				switch t := p.next(); {
				case t.kind == tOp && t.val == "{":
					d++
				case t.kind == tOp && t.val == "}":
					d--
				}
			}
			if d > 0 {
				p.fail("missing }")
			}
			return &ex{k: xMap, st: t.s, en: p.end()}
		case "?":
			p.next()
			n := &ex{k: xParam, st: t.s, en: t.e}
			if u := p.peek(); u.kind == tIdent && u.s == t.e {
				p.next()
				n.s, n.en = u.val, u.e
			}
			return n
		}
	}
	p.fail("unexpected " + describe(t))
	if t.kind != tEOF {
		p.next()
	}
	return &ex{k: xBad, st: t.s, en: t.e}
}

func describe(t tok) string {
	switch t.kind {
	case tEOF:
		return "end of command"
	case tString:
		return "string"
	}
	return "\"" + t.val + "\""
}

// unparen strips parentheses around a single expression.
func unparen(x *ex) *ex {
	for x != nil && x.k == xList && x.op == "paren" && len(x.kids) == 1 {
		x = x.kids[0]
	}
	return x
}

// idents calls fn for every column name x reads.
func idents(x *ex, fn func(name string)) {
	if x == nil {
		return
	}
	if x.k == xIdent {
		fn(x.s)
	}
	for _, k := range x.kids {
		idents(k, fn)
	}
}
