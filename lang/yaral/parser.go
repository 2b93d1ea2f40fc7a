package yaral

import (
	"fmt"
	"strings"
)

// ekind is an expression node kind.
type ekind int

const (
	eAnd   ekind = iota // kids
	eOr                 // kids
	eNot                // kids[0]
	eCmp                // l op r, or l in [regex|cidr] %list
	eField              // $ev.path: name=ev, path
	eVar                // $placeholder (or an event variable in a condition)
	eCount              // #name
	eCall               // name(kids...)
	eLit                // string/raw/number/ident literal: val, lit
	eRegex              // /re/: val
	eList               // %name
	eArith              // l op r with + - * /
	eBad                // unparsable; text kept
)

type expr struct {
	k      ekind
	op     string // cmp/arith operator; "in" for list membership
	inMode string // "", "regex", "cidr" for `in` tests
	l, r   *expr
	kids   []*expr
	name   string
	path   string
	val    string
	lit    tkind
	nocase bool
	quant  string // "any", "all" or ""
	start  int    // byte offsets of the source text
	end    int
	line   int
	col    int
}

// syntaxError is one located problem found by the expression parser.
type syntaxError struct {
	line, col int
	msg       string
}

// exprParser parses one section's tokens. It never panics and always advances: on an
// unexpected token it records an error, wraps the token as eBad and moves on, so a
// bad statement costs only itself.
type exprParser struct {
	toks []token
	p    int
	errs []syntaxError
}

func (ps *exprParser) peek() token { return ps.toks[ps.p] }

func (ps *exprParser) next() token {
	t := ps.toks[ps.p]
	if t.kind != tEOF {
		ps.p++
	}
	return t
}

func (ps *exprParser) is(text string) bool {
	t := ps.peek()
	// YARA-L keywords are case-insensitive (rules write OR, NOT, IN).
	return (t.kind == tPunct && t.text == text) || (t.kind == tIdent && strings.EqualFold(t.text, text))
}

func (ps *exprParser) errorf(t token, format string, a ...any) {
	ps.errs = append(ps.errs, syntaxError{t.line, t.col, fmt.Sprintf(format, a...)})
}

func (ps *exprParser) prevEnd() int {
	if ps.p == 0 {
		return ps.toks[0].start
	}
	return ps.toks[ps.p-1].end
}

// all parses every statement of a section: newline- or and-separated expressions,
// AND-ed (the events section's implicit conjunction).
func (ps *exprParser) all() *expr {
	e := &expr{k: eAnd, start: ps.peek().start, line: ps.peek().line, col: ps.peek().col}
	for ps.peek().kind != tEOF {
		before := ps.p
		x := ps.or(0)
		if x != nil {
			e.kids = append(e.kids, x)
		}
		if ps.p == before {
			t := ps.next()
			ps.errorf(t, "unexpected %q", t.text)
		}
	}
	e.end = ps.prevEnd()
	return e
}

const maxDepth = 200

func (ps *exprParser) or(depth int) *expr {
	x := ps.and(depth)
	if !ps.is("or") {
		return x
	}
	e := &expr{k: eOr, kids: []*expr{x}, start: x.start, line: x.line, col: x.col}
	for ps.is("or") {
		ps.next()
		e.kids = append(e.kids, ps.and(depth))
	}
	e.end = ps.prevEnd()
	return e
}

func (ps *exprParser) and(depth int) *expr {
	x := ps.unary(depth)
	var kids []*expr
	kids = append(kids, x)
	for {
		if ps.is("and") {
			ps.next()
			kids = append(kids, ps.unary(depth))
			continue
		}
		break
	}
	if len(kids) == 1 {
		return x
	}
	return &expr{k: eAnd, kids: kids, start: x.start, end: ps.prevEnd(), line: x.line, col: x.col}
}

func (ps *exprParser) unary(depth int) *expr {
	t := ps.peek()
	if depth > maxDepth {
		ps.errorf(t, "expression nested too deeply")
		ps.p = len(ps.toks) - 1
		return &expr{k: eBad, start: t.start, end: t.start, line: t.line, col: t.col}
	}
	if ps.is("not") || ps.is("!") {
		ps.next()
		x := ps.unary(depth + 1)
		return &expr{k: eNot, kids: []*expr{x}, start: t.start, end: ps.prevEnd(), line: t.line, col: t.col}
	}
	if ps.is("any") || ps.is("all") {
		// `any $e.f = x` quantifies over a repeated field; `all` is also a function name
		// nowhere in YARA-L, so the keyword reading is safe.
		if n := ps.toks[ps.p+1]; n.kind == tVar {
			ps.next()
			x := ps.unary(depth + 1)
			x.quant = strings.ToLower(t.text)
			x.start, x.line, x.col = t.start, t.line, t.col
			return x
		}
	}
	return ps.cmp(depth)
}

var cmpOps = map[string]bool{"=": true, "!=": true, "<": true, "<=": true, ">": true, ">=": true}

func (ps *exprParser) cmp(depth int) *expr {
	l := ps.arith(depth)
	t := ps.peek()
	switch {
	case t.kind == tPunct && cmpOps[t.text]:
		ps.next()
		r := ps.arith(depth)
		e := &expr{k: eCmp, op: t.text, l: l, r: r, start: l.start, line: l.line, col: l.col}
		if ps.is("nocase") {
			ps.next()
			e.nocase = true
		}
		e.end = ps.prevEnd()
		return e
	case ps.is("in"):
		ps.next()
		e := &expr{k: eCmp, op: "in", l: l, start: l.start, line: l.line, col: l.col}
		if ps.is("regex") || ps.is("cidr") {
			e.inMode = strings.ToLower(ps.next().text)
		}
		lt := ps.peek()
		if lt.kind != tList {
			ps.errorf(lt, "expected a reference list (%%name) after in, found %q", lt.text)
			e.r = &expr{k: eBad, start: lt.start, end: lt.start, line: lt.line, col: lt.col}
		} else {
			ps.next()
			e.r = &expr{k: eList, name: lt.text, start: lt.start, end: lt.end, line: lt.line, col: lt.col}
		}
		if ps.is("nocase") {
			ps.next()
			e.nocase = true
		}
		e.end = ps.prevEnd()
		return e
	}
	// A bare boolean function call (re.regex(...)) may carry nocase.
	if ps.is("nocase") {
		ps.next()
		l.nocase = true
		l.end = ps.prevEnd()
	}
	return l
}

func (ps *exprParser) arith(depth int) *expr {
	l := ps.operand(depth)
	for {
		t := ps.peek()
		if t.kind != tPunct || (t.text != "+" && t.text != "-" && t.text != "*" && t.text != "/") {
			return l
		}
		ps.next()
		r := ps.operand(depth)
		l = &expr{k: eArith, op: t.text, l: l, r: r, start: l.start, end: ps.prevEnd(), line: l.line, col: l.col}
	}
}

func (ps *exprParser) operand(depth int) *expr {
	t := ps.peek()
	mk := func(k ekind) *expr {
		return &expr{k: k, start: t.start, line: t.line, col: t.col}
	}
	if t.bad != "" {
		ps.errorf(t, "%s", t.bad)
	}
	switch t.kind {
	case tVar:
		ps.next()
		if ps.is(".") {
			e := mk(eField)
			e.name = t.text
			var path strings.Builder
			for {
				if ps.is(".") && ps.toks[ps.p+1].kind == tIdent {
					ps.next()
					if path.Len() > 0 {
						path.WriteByte('.')
					}
					path.WriteString(ps.next().text)
					continue
				}
				if ps.is("[") {
					ps.next()
					k := ps.next()
					if k.kind == tNumber {
						path.WriteString("[" + k.text + "]")
					} else {
						path.WriteString(`["` + k.text + `"]`)
					}
					if ps.is("]") {
						ps.next()
					} else {
						ps.errorf(ps.peek(), "expected ] after map key")
					}
					continue
				}
				break
			}
			e.path = path.String()
			e.end = ps.prevEnd()
			return e
		}
		e := mk(eVar)
		e.name, e.end = t.text, t.end
		return e
	case tCount:
		ps.next()
		e := mk(eCount)
		e.name, e.end = t.text, t.end
		return e
	case tList:
		ps.next()
		e := mk(eList)
		e.name, e.end = t.text, t.end
		return e
	case tString, tRaw, tNumber:
		ps.next()
		e := mk(eLit)
		e.val, e.lit, e.end = t.text, t.kind, t.end
		return e
	case tRegex:
		ps.next()
		e := mk(eRegex)
		e.val, e.end = t.text, t.end
		return e
	case tIdent:
		ps.next()
		name := t.text
		// Dotted function names: re.regex, strings.to_lower, net.ip_in_range_cidr.
		for ps.is(".") && ps.toks[ps.p+1].kind == tIdent {
			ps.next()
			name += "." + ps.next().text
		}
		if ps.is("(") {
			ps.next()
			e := mk(eCall)
			e.name = name
			for !ps.is(")") && ps.peek().kind != tEOF {
				before := ps.p
				e.kids = append(e.kids, ps.or(depth+1))
				if ps.is(",") {
					ps.next()
				} else if ps.p == before || !ps.is(")") {
					bt := ps.peek()
					ps.errorf(bt, "expected , or ) in call to %s, found %q", name, bt.text)
					break
				}
			}
			if ps.is(")") {
				ps.next()
			} else {
				ps.errorf(ps.peek(), "missing ) after arguments of %s", name)
			}
			e.end = ps.prevEnd()
			return e
		}
		e := mk(eLit)
		e.val, e.lit, e.end = name, tIdent, ps.prevEnd()
		return e
	case tPunct:
		switch t.text {
		case "(":
			ps.next()
			x := ps.or(depth + 1)
			if ps.is(")") {
				ps.next()
			} else {
				ps.errorf(ps.peek(), "missing ) to close ( at line %d", t.line)
			}
			return x
		case "-":
			ps.next()
			if n := ps.peek(); n.kind == tNumber {
				ps.next()
				e := mk(eLit)
				e.val, e.lit, e.end = "-"+n.text, tNumber, n.end
				return e
			}
		}
	}
	ps.errorf(t, "unexpected %q", tokText(t))
	if t.kind != tEOF && !(t.kind == tPunct && t.text == ")") {
		ps.next()
	}
	e := mk(eBad)
	e.end = ps.prevEnd()
	return e
}

func tokText(t token) string {
	if t.kind == tEOF {
		return "end of section"
	}
	return t.text
}
