package spl

import (
	"fmt"
	"strings"

	"github.com/ruledex/ruledex/rule"
)

// Eval expressions (where, eval, searchmatch) use ordinary precedence, unlike the
// search command: parentheses, NOT, AND, OR (Splunk Search Manual, "Boolean
// expressions"). String comparisons in eval are case-sensitive, so predicates from
// here carry `cased` unless the field is wrapped in lower() or upper().
//
//	or   = xor { "OR" xor }
//	xor  = and { "XOR" and }
//	and  = not { "AND" not }
//	not  = ("NOT" | "!") not | cmp
//	cmp  = add [ cmpop add | "LIKE" add | ["NOT"] "IN" "(" list ")" ]
//	add  = mul { ("+" | "-" | ".") mul }
//	mul  = unary { ("*" | "/" | "%") unary }
//	unary = "-" unary | primary
//	primary = "(" or ")" | name "(" [ or { "," or } ] ")" | field | string | number

type exprKind int

const (
	eBad    exprKind = iota // could not parse
	eField                  // a field name (word or 'quoted')
	eStr                    // "string"
	eNum                    // number
	eCall                   // name(args)
	eBin                    // args[0] op args[1]
	eNot                    // NOT args[0]
	eIn                     // args[0] IN (args[1:])
	eNeg                    // -args[0]
	eOpaque                 // an unexpanded macro or a subsearch
)

type expr struct {
	kind     exprKind
	op       string // operator (upper-cased for words) or function name (lower-cased)
	val      string // field name, string or number value
	args     []*expr
	off, end int
}

type evalParser struct{ parser }

func (p *evalParser) node(k exprKind, op string, off, end int, args ...*expr) *expr {
	return &expr{kind: k, op: op, args: args, off: off, end: end}
}

// parseEval parses toks as one expression; trailing tokens it cannot attach are returned
// as a separate eBad expression so the caller can keep them visible.
func (c *ctx) parseEval(toks []token) (*expr, *expr) {
	p := &evalParser{parser{c: c, toks: toks}}
	if len(toks) == 0 {
		return nil, nil
	}
	e := p.or()
	if p.i < len(p.toks) {
		rest := &expr{kind: eBad, off: p.toks[p.i].off, end: p.toks[len(p.toks)-1].end}
		return e, rest
	}
	return e, nil
}

func (p *evalParser) isOp(t token, words ...string) bool {
	for _, w := range words {
		if (t.kind == tWord || t.kind == tOp) && strings.EqualFold(t.text, w) {
			return true
		}
	}
	return false
}

func (p *evalParser) or() *expr {
	l := p.xor()
	for p.isOp(p.peek(), "OR") {
		p.i++
		r := p.xor()
		l = p.node(eBin, "OR", l.off, r.end, l, r)
	}
	return l
}

func (p *evalParser) xor() *expr {
	l := p.and()
	for p.isOp(p.peek(), "XOR") {
		p.i++
		r := p.and()
		l = p.node(eBin, "XOR", l.off, r.end, l, r)
	}
	return l
}

func (p *evalParser) and() *expr {
	l := p.not()
	for p.isOp(p.peek(), "AND") {
		p.i++
		r := p.not()
		l = p.node(eBin, "AND", l.off, r.end, l, r)
	}
	return l
}

func (p *evalParser) not() *expr {
	t := p.peek()
	if p.isOp(t, "NOT", "!") {
		p.i++
		x := p.not()
		return p.node(eNot, "NOT", t.off, x.end, x)
	}
	return p.cmp()
}

var cmpOps = map[string]bool{"=": true, "==": true, "!=": true, "<": true, "<=": true, ">": true, ">=": true}

func (p *evalParser) cmp() *expr {
	l := p.add()
	t := p.peek()
	switch {
	case t.kind == tOp && cmpOps[t.text]:
		p.i++
		r := p.add()
		return p.node(eBin, t.text, l.off, r.end, l, r)
	case p.isOp(t, "LIKE"):
		p.i++
		r := p.add()
		return p.node(eBin, "LIKE", l.off, r.end, l, r)
	case p.isOp(t, "IN") && p.peekAt(1).kind == tLParen:
		p.i++
		return p.inList(l)
	case p.isOp(t, "NOT") && p.isOp(p.peekAt(1), "IN") && p.peekAt(2).kind == tLParen:
		p.i += 2
		in := p.inList(l)
		return p.node(eNot, "NOT", l.off, in.end, in)
	}
	return l
}

func (p *evalParser) inList(l *expr) *expr {
	p.i++ // (
	args := []*expr{l}
	end := l.end
	for {
		t := p.peek()
		if t.kind == tEOF {
			break
		}
		if t.kind == tRParen {
			p.i++
			end = t.end
			break
		}
		if t.kind == tComma {
			p.i++
			continue
		}
		before := p.i
		a := p.or()
		args = append(args, a)
		end = a.end
		if p.i == before {
			p.i++
		}
	}
	return p.node(eIn, "IN", l.off, end, args...)
}

func (p *evalParser) add() *expr {
	l := p.mul()
	for {
		t := p.peek()
		if t.kind != tOp || (t.text != "+" && t.text != "-" && t.text != ".") {
			return l
		}
		p.i++
		r := p.mul()
		l = p.node(eBin, t.text, l.off, r.end, l, r)
	}
}

func (p *evalParser) mul() *expr {
	l := p.unary()
	for {
		t := p.peek()
		if t.kind != tOp || (t.text != "*" && t.text != "/" && t.text != "%") {
			return l
		}
		p.i++
		r := p.unary()
		l = p.node(eBin, t.text, l.off, r.end, l, r)
	}
}

func (p *evalParser) unary() *expr {
	t := p.peek()
	if t.kind == tOp && t.text == "-" {
		p.i++
		x := p.unary()
		if x.kind == eNum {
			x.val = "-" + x.val
			x.off = t.off
			return x
		}
		return p.node(eNeg, "-", t.off, x.end, x)
	}
	return p.primary()
}

func (p *evalParser) primary() *expr {
	t := p.peek()
	switch t.kind {
	case tEOF:
		return &expr{kind: eBad, off: t.off, end: t.end}
	case tLParen:
		p.i++
		x := p.or()
		if p.peek().kind == tRParen {
			end := p.next().end
			// Keep the parenthesized extent for display.
			return &expr{kind: x.kind, op: x.op, val: x.val, args: x.args, off: t.off, end: end}
		}
		return x
	case tString:
		p.i++
		return &expr{kind: eStr, val: t.val(), off: t.off, end: t.end}
	case tQField:
		p.i++
		return &expr{kind: eField, val: t.val(), off: t.off, end: t.end}
	case tMacro, tSubsearch:
		p.i++
		return &expr{kind: eOpaque, off: t.off, end: t.end}
	case tWord:
		p.i++
		if p.peek().kind == tLParen {
			return p.call(t)
		}
		if isNumber(t.text) {
			return &expr{kind: eNum, val: t.text, off: t.off, end: t.end}
		}
		return &expr{kind: eField, val: t.text, off: t.off, end: t.end}
	}
	p.i++
	return &expr{kind: eBad, off: t.off, end: t.end}
}

func (p *evalParser) call(name token) *expr {
	p.i++ // (
	e := &expr{kind: eCall, op: strings.ToLower(name.text), off: name.off, end: name.end}
	for {
		t := p.peek()
		if t.kind == tEOF {
			return e
		}
		if t.kind == tRParen {
			p.i++
			e.end = t.end
			return e
		}
		if t.kind == tComma {
			p.i++
			continue
		}
		before := p.i
		a := p.or()
		e.args = append(e.args, a)
		e.end = a.end
		if p.i == before {
			p.i++
		}
	}
}

// lowerEval turns an eval expression into predicates where the meaning is clear and an
// opaque node with a warning elsewhere.
func (c *ctx) lowerEval(e *expr) *rule.Node {
	if e == nil {
		return nil
	}
	switch e.kind {
	case eBin:
		switch e.op {
		case "AND":
			return and(c.lowerEval(e.args[0]), c.lowerEval(e.args[1]))
		case "OR":
			l, r := c.lowerEval(e.args[0]), c.lowerEval(e.args[1])
			if l == nil || r == nil {
				return c.opaque(e.off, e.end, "spl/where/opaque")
			}
			return or(l, r)
		case "LIKE":
			if n := c.likePred(e, e.args[0], e.args[1]); n != nil {
				return n
			}
		default:
			if cmpOps[e.op] {
				if n := c.cmpPred(e); n != nil {
					return n
				}
			}
		}
	case eNot:
		if inner := c.lowerEval(e.args[0]); inner != nil {
			return rule.Not(inner)
		}
	case eIn:
		if n := c.inPred(e, e.args[0], e.args[1:]); n != nil {
			return n
		}
	case eCall:
		if n := c.callPred(e); n != nil {
			return n
		}
	case eOpaque:
		return c.opaque(e.off, e.end, "")
	}
	return c.opaque(e.off, e.end, "spl/where/opaque")
}

// fieldOf reads a field reference, possibly wrapped in lower()/upper() (which makes the
// comparison case-insensitive) or coalesce-free wrappers that do not change the value.
func fieldOf(e *expr) (field string, folded bool, ok bool) {
	switch e.kind {
	case eField:
		return e.val, false, strings.TrimSpace(e.val) != ""
	case eCall:
		if (e.op == "lower" || e.op == "upper") && len(e.args) == 1 {
			f, _, ok := fieldOf(e.args[0])
			return f, true, ok
		}
		if e.op == "trim" && len(e.args) == 1 {
			f, folded, ok := fieldOf(e.args[0])
			return f, folded, ok
		}
	}
	return "", false, false
}

func literalOf(e *expr) (rule.Value, bool) {
	switch e.kind {
	case eStr:
		return rule.Value{S: e.val}, true
	case eNum:
		return rule.Value{S: e.val, Type: rule.Number}, true
	case eCall:
		switch e.op {
		case "true":
			return rule.Value{S: "true", Type: rule.Bool}, len(e.args) == 0
		case "false":
			return rule.Value{S: "false", Type: rule.Bool}, len(e.args) == 0
		}
	}
	return rule.Value{}, false
}

func casedTransforms(folded bool, v rule.Value) []string {
	if folded || v.Type == rule.Number || v.Type == rule.Bool {
		return nil
	}
	return []string{rule.TCased}
}

var flipped = map[string]string{"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "=", "==": "==", "!=": "!="}

func (c *ctx) cmpPred(e *expr) *rule.Node {
	l, r, op := e.args[0], e.args[1], e.op
	if _, _, ok := fieldOf(l); !ok {
		if _, _, ok := fieldOf(r); ok {
			l, r, op = r, l, flipped[op]
		}
	}
	field, folded, ok := fieldOf(l)
	if !ok {
		return nil
	}
	native := c.text(e.off, e.end)
	if rf, _, ok := fieldOf(r); ok && r.kind == eField {
		n := rule.Leaf(&rule.Pred{Field: field, Kind: rule.FieldRef, Values: []rule.Value{{S: rf}}, Native: native, Pos: c.pos(e.off)})
		switch op {
		case "=", "==":
			return n
		case "!=":
			return rule.Not(n)
		}
		return nil
	}
	v, ok := literalOf(r)
	if !ok {
		return nil
	}
	kind := rule.Eq
	if op != "=" && op != "==" {
		kind = cmpKind(op)
	}
	return rule.Leaf(&rule.Pred{Field: field, Kind: kind, Values: []rule.Value{v},
		Transforms: casedTransforms(folded, v), Native: native, Pos: c.pos(e.off)})
}

func (c *ctx) likePred(e, f, pat *expr) *rule.Node {
	field, folded, ok := fieldOf(f)
	if !ok || pat.kind != eStr {
		return nil
	}
	kind, v := likePattern(pat.val).classify()
	pr := &rule.Pred{Field: field, Kind: kind, Native: c.text(e.off, e.end), Pos: c.pos(e.off)}
	if kind != rule.IsNotNull {
		pr.Values = []rule.Value{v}
		pr.Transforms = casedTransforms(folded, v)
	}
	return rule.Leaf(pr)
}

func (c *ctx) inPred(e, f *expr, list []*expr) *rule.Node {
	field, folded, ok := fieldOf(f)
	if !ok || len(list) == 0 {
		return nil
	}
	var vals []rule.Value
	for _, x := range list {
		v, ok := literalOf(x)
		if !ok {
			return nil
		}
		vals = append(vals, v)
	}
	return rule.Leaf(&rule.Pred{Field: field, Kind: rule.Eq, Values: vals,
		Transforms: casedTransforms(folded, vals[0]), Native: c.text(e.off, e.end), Pos: c.pos(e.off)})
}

func (c *ctx) callPred(e *expr) *rule.Node {
	native := c.text(e.off, e.end)
	switch e.op {
	case "like":
		if len(e.args) == 2 {
			return c.likePred(e, e.args[0], e.args[1])
		}
	case "in":
		if len(e.args) >= 2 {
			return c.inPred(e, e.args[0], e.args[1:])
		}
	case "match":
		if len(e.args) == 2 && e.args[1].kind == eStr {
			field, _, ok := fieldOf(e.args[0])
			if !ok {
				return nil
			}
			ts := []string{rule.TCased}
			if strings.HasPrefix(e.args[1].val, "(?i)") {
				ts = append(ts, rule.TIgnoreCase)
			}
			return rule.Leaf(&rule.Pred{Field: field, Kind: rule.Regex, Values: []rule.Value{{S: e.args[1].val}},
				Transforms: ts, Native: native, Pos: c.pos(e.off)})
		}
	case "isnotnull", "isnull":
		if len(e.args) == 1 {
			field, _, ok := fieldOf(e.args[0])
			if !ok {
				return nil
			}
			kind := rule.IsNotNull
			if e.op == "isnull" {
				kind = rule.IsNull
			}
			return rule.Leaf(&rule.Pred{Field: field, Kind: kind, Native: native, Pos: c.pos(e.off)})
		}
	case "cidrmatch":
		if len(e.args) == 2 && e.args[0].kind == eStr {
			field, _, ok := fieldOf(e.args[1])
			if !ok {
				return nil
			}
			return rule.Leaf(&rule.Pred{Field: field, Kind: rule.CIDR, Values: []rule.Value{{S: e.args[0].val}},
				Native: native, Pos: c.pos(e.off)})
		}
	case "searchmatch":
		if len(e.args) == 1 && e.args[0].kind == eStr {
			// The string is itself a search expression; its offsets are approximate
			// (escapes shift them), so they point at the string's start.
			toks := lex(e.args[0].val, 0, searchMode)
			for i := range toks {
				toks[i].off, toks[i].end = e.args[0].off, e.args[0].end
			}
			return c.parseSearchDetached(toks, e.args[0])
		}
	}
	return nil
}

// parseSearchDetached parses a search held inside a string literal: token texts come from
// the literal, not from the expanded search, so Native texts are rebuilt from tokens.
func (c *ctx) parseSearchDetached(toks []token, lit *expr) *rule.Node {
	saved := c.textOverride
	c.textOverride = func(off, end int) string { return "" }
	defer func() { c.textOverride = saved }()
	n := c.parseSearch(toks)
	for _, pp := range rule.Preds(n) {
		if pp.Pred.Native == "" {
			pp.Pred.Native = fmt.Sprintf("searchmatch(%q)", lit.val)
		}
	}
	return n
}
