package spl

import (
	"fmt"
	"strings"

	"github.com/ruledex/ruledex/rule"
)

// The search command's grammar, with its own precedence (Splunk Search Manual,
// "Boolean expressions"): parentheses, then NOT, then OR, then AND, explicit or implied
// by juxtaposition. So `a b OR c` is `a AND (b OR c)`. Operators must be capitalized.
//
//	and     = or { ["AND"] or }
//	or      = not { "OR" not }
//	not     = "NOT" not | primary
//	primary = "(" and ")" | field op value | field "IN" "(" values ")" | term

// parser walks the tokens of one command (or one clause of it).
type parser struct {
	c    *ctx
	toks []token
	i    int
}

func (p *parser) peekAt(k int) token {
	if j := p.i + k; j >= 0 && j < len(p.toks) {
		return p.toks[j]
	}
	end := 0
	if len(p.toks) > 0 {
		end = p.toks[len(p.toks)-1].end
	}
	return token{kind: tEOF, off: end, end: end}
}

func (p *parser) peek() token { return p.peekAt(0) }

func (p *parser) next() token {
	t := p.peek()
	if p.i < len(p.toks) {
		p.i++
	}
	return t
}

// timeModifiers are search options, not event filters.
var timeModifiers = map[string]bool{
	"earliest": true, "latest": true, "_index_earliest": true, "_index_latest": true,
	"starttime": true, "endtime": true, "timeformat": true, "starthoursago": true, "endhoursago": true,
	"startdaysago": true, "enddaysago": true, "startminutesago": true, "endminutesago": true,
	"startmonthsago": true, "endmonthsago": true, "searchtimespanhours": true,
	"searchtimespanmins": true, "searchtimespandays": true, "searchtimespanmonths": true,
}

// parseSearch parses a search-command expression. A nil result means "no filter".
func (c *ctx) parseSearch(toks []token) *rule.Node {
	p := &parser{c: c, toks: toks}
	return p.sAnd(0)
}

func (p *parser) sAnd(depth int) *rule.Node {
	var kids []*rule.Node
	for {
		t := p.peek()
		switch {
		case t.kind == tEOF:
			return and(kids...)
		case t.kind == tRParen:
			if depth > 0 {
				return and(kids...)
			}
			p.c.warn("spl/search/unbalanced", t.off, "unmatched ')' ignored")
			p.i++
			continue
		case t.isUpper("AND") || t.kind == tComma:
			p.i++
			continue
		}
		before := p.i
		kids = append(kids, p.sOr(depth))
		if p.i == before { // defensive: never loop without consuming
			p.i++
		}
	}
}

func (p *parser) sOr(depth int) *rule.Node {
	kids := []*rule.Node{p.sNot(depth)}
	for p.peek().isUpper("OR") {
		orTok := p.next()
		if t := p.peek(); t.kind == tEOF || t.kind == tRParen || t.isUpper("OR") || t.isUpper("AND") {
			p.c.warn("spl/search/dangling-or", orTok.off, "OR without a right operand ignored")
			continue
		}
		kids = append(kids, p.sNot(depth))
	}
	return or(kids...)
}

func (p *parser) sNot(depth int) *rule.Node {
	t := p.peek()
	if t.isUpper("NOT") {
		p.i++
		if nt := p.peek(); nt.kind == tEOF || nt.kind == tRParen {
			p.c.warn("spl/search/dangling-not", t.off, "NOT without an operand ignored")
			return nil
		}
		inner := p.sNot(depth)
		if inner == nil {
			// NOT of something that filters nothing (a time modifier): keep it visible.
			return p.c.opaque(t.off, p.peekAt(-1).end, "")
		}
		return rule.Not(inner)
	}
	return p.sPrimary(depth)
}

func (p *parser) sPrimary(depth int) *rule.Node {
	t := p.next()
	switch t.kind {
	case tLParen:
		n := p.sAnd(depth + 1)
		if p.peek().kind == tRParen {
			p.i++
		} else {
			p.c.warn("spl/search/unbalanced", t.off, "'(' is never closed")
		}
		return n
	case tMacro:
		// Already reported by macro expansion; the call stays an opaque test.
		return p.c.opaque(t.off, t.end, "")
	case tSubsearch:
		return p.c.opaque(t.off, t.end, "spl/search/subsearch")
	case tOp:
		p.c.warn("spl/search/unexpected", t.off, fmt.Sprintf("unexpected %q", t.text))
		return p.c.opaque(t.off, t.end, "")
	case tWord, tString, tQField:
		nt := p.peek()
		if nt.kind == tOp {
			return p.comparison(t)
		}
		if nt.is("IN") && p.peekAt(1).kind == tLParen {
			p.i++ // IN
			return p.inList(t)
		}
		if t.kind == tWord && nt.kind == tLParen && nt.off == t.end {
			switch strings.ToUpper(t.text) {
			case "TERM", "CASE", "PREFIX":
				return p.directive(t, "")
			}
		}
		if t.isUpper("OR") || t.isUpper("AND") {
			p.c.warn("spl/search/unexpected", t.off, t.text+" without a left operand ignored")
			return nil
		}
		return p.keyword(t)
	}
	p.c.warn("spl/search/unexpected", t.off, fmt.Sprintf("unexpected %q", t.text))
	return nil
}

// directive reads TERM(x), CASE(x) or PREFIX(x), as a keyword or (field non-empty) a
// field value. CASE makes the test case-sensitive.
func (p *parser) directive(t token, field string) *rule.Node {
	p.i++ // (
	var inner []token
	for {
		x := p.next()
		if x.kind == tEOF || x.kind == tRParen {
			break
		}
		inner = append(inner, x)
	}
	if len(inner) != 1 || (inner[0].kind != tWord && inner[0].kind != tString) {
		return p.c.opaque(t.off, p.peekAt(-1).end, "spl/search/unexpected")
	}
	var ts []string
	if strings.EqualFold(t.text, "CASE") {
		ts = []string{rule.TCased}
	}
	native := p.c.text(t.off, p.peekAt(-1).end)
	if field != "" {
		native = field + "=" + native
		return p.c.leaf(field, searchPattern(inner[0].val()), false, ts, native, t.off)
	}
	return p.c.leaf("", searchPattern(inner[0].val()), false, ts, native, t.off)
}

func (p *parser) keyword(t token) *rule.Node {
	v := t.val()
	if t.kind == tWord && strings.Trim(v, "*") == "" {
		return nil // `*` or `search *`: every event
	}
	return p.c.leaf("", searchPattern(v), false, nil, t.text, t.off)
}

// comparison reads `field op value` (the field token is consumed, op is next).
func (p *parser) comparison(f token) *rule.Node {
	op := p.next()
	field := f.val()
	v := p.peek()
	switch v.kind {
	case tWord, tString, tQField:
		p.i++
	case tMacro:
		p.i++
		return p.c.opaque(f.off, v.end, "")
	default:
		if v.kind == tLParen {
			p.skipBalanced()
		}
		return p.c.opaque(f.off, p.peekAt(-1).end, "spl/search/unexpected")
	}
	if timeModifiers[strings.ToLower(field)] {
		return nil
	}
	if strings.TrimSpace(field) == "" {
		return p.c.opaque(f.off, v.end, "spl/search/empty-field")
	}
	var ts []string
	if v.kind == tWord && p.peek().kind == tLParen && p.peek().off == v.end {
		switch strings.ToUpper(v.text) {
		case "TERM", "PREFIX":
			return p.directive(v, field)
		case "CASE":
			return p.directive(v, field)
		}
	}
	native := p.c.text(f.off, v.end)
	val := v.val()
	switch op.text {
	case "=", "==":
		return p.c.leaf(field, searchPattern(val), v.kind == tString, ts, native, f.off)
	case "!=":
		// field!=v also requires the field to exist, unlike NOT field=v; for a literal
		// value that is the ne kind, for a pattern the negated pattern test.
		pat := searchPattern(val)
		kind, _ := pat.classify()
		switch kind {
		case rule.Eq:
			n := p.c.leaf(field, pat, v.kind == tString, ts, native, f.off)
			n.Pred.Kind = rule.Ne
			return n
		case rule.IsNotNull:
			return rule.Leaf(&rule.Pred{Field: field, Kind: rule.IsNull, Native: native, Pos: p.c.pos(f.off)})
		}
		return rule.Not(p.c.leaf(field, pat, false, ts, native, f.off))
	case "<", "<=", ">", ">=":
		typ := rule.String
		if v.kind != tString && isNumber(val) {
			typ = rule.Number
		}
		return rule.Leaf(&rule.Pred{Field: field, Kind: cmpKind(op.text), Values: []rule.Value{{S: val, Type: typ}},
			Native: native, Pos: p.c.pos(f.off)})
	}
	return p.c.opaque(f.off, v.end, "spl/search/unexpected")
}

func cmpKind(op string) rule.Kind {
	switch op {
	case "<":
		return rule.Lt
	case "<=":
		return rule.Le
	case ">":
		return rule.Gt
	case ">=":
		return rule.Ge
	case "!=":
		return rule.Ne
	}
	return rule.Eq
}

// skipBalanced consumes a parenthesized group starting at the current '('.
func (p *parser) skipBalanced() {
	depth := 0
	for {
		t := p.next()
		switch t.kind {
		case tEOF:
			return
		case tLParen:
			depth++
		case tRParen:
			depth--
			if depth <= 0 {
				return
			}
		}
	}
}

// inList reads `field IN (v1, v2 ...)` (field and IN consumed; '(' is next). Values of
// one kind share a predicate, as a Sigma list does; different kinds are OR-ed.
func (p *parser) inList(f token) *rule.Node {
	open := p.next()
	var vals []token
	for {
		t := p.peek()
		if t.kind == tEOF {
			p.c.warn("spl/search/unbalanced", open.off, "IN list is never closed")
			break
		}
		p.i++
		if t.kind == tRParen {
			break
		}
		switch t.kind {
		case tWord, tString, tQField:
			vals = append(vals, t)
		case tComma:
		default:
			p.c.warn("spl/search/unexpected", t.off, fmt.Sprintf("unexpected %q in IN list", t.text))
		}
	}
	field := f.val()
	if len(vals) == 0 || strings.TrimSpace(field) == "" {
		return p.c.opaque(f.off, p.peekAt(-1).end, "spl/search/empty-in")
	}
	// Group values by the kind their wildcards give, in order of first appearance.
	type group struct {
		pred  *rule.Pred
		texts []string
	}
	var groups []*group
	for _, v := range vals {
		leaf := p.c.leaf(field, searchPattern(v.val()), v.kind == tString, nil, "", f.off).Pred
		var g *group
		for _, have := range groups {
			if have.pred.Kind == leaf.Kind {
				g = have
			}
		}
		if g == nil {
			g = &group{pred: leaf}
			groups = append(groups, g)
		} else {
			g.pred.Values = append(g.pred.Values, leaf.Values...)
		}
		g.texts = append(g.texts, v.text)
	}
	var kids []*rule.Node
	for _, g := range groups {
		g.pred.Native = field + " IN (" + strings.Join(g.texts, ", ") + ")"
		kids = append(kids, rule.Leaf(g.pred))
	}
	if len(kids) == 1 {
		return kids[0]
	}
	return rule.Or(kids...)
}

// leaf builds the predicate for field (empty: a keyword) tested against pattern pat.
// Search values are case-insensitive unless a CASE() directive says otherwise.
func (c *ctx) leaf(field string, pat pattern, quoted bool, ts []string, native string, off int) *rule.Node {
	kind, val := pat.classify()
	if field == "" {
		// A keyword keeps its wildcards: the term is searched anywhere in the event.
		kind = rule.Keyword
		if len(pat) != 1 || pat[0].wild != 0 {
			val = rule.Value{S: pat.glob(), Wild: true}
		}
	}
	pr := &rule.Pred{Field: field, Kind: kind, Transforms: ts, Native: native, Pos: c.pos(off)}
	if kind != rule.IsNotNull {
		if kind == rule.Eq && !quoted && isNumber(val.S) {
			val.Type = rule.Number
		}
		pr.Values = []rule.Value{val}
	}
	return rule.Leaf(pr)
}

// and conjoins nodes; nil children (no filter) drop out, nested ANDs flatten.
func and(kids ...*rule.Node) *rule.Node {
	var out []*rule.Node
	for _, k := range kids {
		switch {
		case k == nil:
		case k.Op == rule.OpAnd:
			out = append(out, k.Children...)
		default:
			out = append(out, k)
		}
	}
	switch len(out) {
	case 0:
		return nil
	case 1:
		return out[0]
	}
	return rule.And(out...)
}

// or disjoins nodes; a nil child (matches everything) makes the whole OR nil. Adjacent
// tests of one field with one kind merge into one predicate with several values.
func or(kids ...*rule.Node) *rule.Node {
	var out []*rule.Node
	for _, k := range kids {
		switch {
		case k == nil:
			return nil
		case k.Op == rule.OpOr:
			for _, c := range k.Children {
				out = mergeOr(out, c)
			}
		default:
			out = mergeOr(out, k)
		}
	}
	if len(out) == 1 {
		return out[0]
	}
	return rule.Or(out...)
}

func mergeOr(out []*rule.Node, k *rule.Node) []*rule.Node {
	if k.Op == rule.OpPred && len(out) > 0 {
		last := out[len(out)-1]
		if last.Op == rule.OpPred && mergeable(last.Pred, k.Pred) {
			merged := *last.Pred
			merged.Values = append(append([]rule.Value(nil), last.Pred.Values...), k.Pred.Values...)
			if merged.Native != "" && k.Pred.Native != "" && merged.Native != k.Pred.Native {
				merged.Native += " OR " + k.Pred.Native
			}
			out[len(out)-1] = rule.Leaf(&merged)
			return out
		}
	}
	return append(out, k)
}

func mergeable(a, b *rule.Pred) bool {
	if a.Field != b.Field || a.Kind != b.Kind || a.All || b.All || len(a.Values) == 0 || len(b.Values) == 0 {
		return false
	}
	switch a.Kind {
	case rule.Ne, rule.Gt, rule.Ge, rule.Lt, rule.Le, rule.FieldRef:
		return false // OR of these is not "one of the values"
	}
	return strings.Join(a.Transforms, "|") == strings.Join(b.Transforms, "|")
}
