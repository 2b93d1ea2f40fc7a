package eql

import (
	"regexp/syntax"
	"strings"

	"github.com/ruledex/ruledex/rule"
)

type termKind int

const (
	tmField    termKind = iota
	tmLit               // one literal value
	tmList              // (a, b, ...)
	tmCall              // fn(args)
	tmNode              // a boolean expression already lowered
	tmComputed          // arithmetic, joins: kept as text
)

// term is an operand of a comparison, or a whole boolean expression (tmNode) when the
// parser had to read past a parenthesis to know which one it was.
type term struct {
	kind       termKind
	field      string
	vals       []rule.Value
	listOK     bool // every list element is a literal
	fn         string
	tilde      bool
	args       []*term
	node       *rule.Node
	start, end int
}

// boolNode turns a term read in boolean position into a node.
func (p *parser) boolNode(t *term) *rule.Node {
	switch t.kind {
	case tmNode:
		return t.node
	case tmCall:
		return p.callPred(t)
	case tmLit:
		if len(t.vals) == 1 && t.vals[0].Type == rule.Bool {
			if t.vals[0].S == "true" {
				return &rule.Node{Op: rule.OpTrue, Pos: p.pos(t.start)}
			}
			return rule.Not(&rule.Node{Op: rule.OpTrue, Pos: p.pos(t.start)})
		}
	}
	return p.opaque(t.start, t.end, "eql/expr/not-boolean", "expression is not a condition")
}

func (p *parser) opaque(start, end int, code, msg string) *rule.Node {
	txt := p.text(start, end)
	p.diag(rule.Warning, start, code, "%s: %s", msg, shorten(oneLine(txt), 80))
	return &rule.Node{Op: rule.OpOpaque, Text: txt, Pos: p.pos(start)}
}

func (p *parser) exprTerm() *term {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		p.fail(p.peek().off, "expression nested too deeply")
	}
	t := p.andTerm()
	if !isKw(p.peek(), "or") {
		return t
	}
	alts := []*rule.Node{p.boolNode(t)}
	for isKw(p.peek(), "or") {
		p.next()
		alts = append(alts, p.boolNode(p.andTerm()))
	}
	return &term{kind: tmNode, node: rule.Or(alts...), start: t.start, end: p.endOff()}
}

func (p *parser) andTerm() *term {
	t := p.notTerm()
	if !isKw(p.peek(), "and") {
		return t
	}
	nodes := []*rule.Node{p.boolNode(t)}
	for isKw(p.peek(), "and") {
		p.next()
		nodes = append(nodes, p.boolNode(p.notTerm()))
	}
	return &term{kind: tmNode, node: andOf(nodes), start: t.start, end: p.endOff()}
}

func (p *parser) notTerm() *term {
	if isKw(p.peek(), "not") {
		start := p.peek().off
		return &term{kind: tmNode, node: p.not(), start: start, end: p.endOff()}
	}
	return p.comparisonTerm()
}

// comparison reads one comparison (or a bare boolean operand) as a node.
func (p *parser) comparison() *rule.Node {
	return p.boolNode(p.comparisonTerm())
}

var cmpPuncts = map[string]bool{"==": true, "!=": true, "<": true, "<=": true, ">": true, ">=": true, ":": true, "=": true}

func (p *parser) comparisonTerm() *term {
	l := p.operand()
	t := p.peek()
	var op string
	negIn := false
	switch {
	case t.kind == tPunct && cmpPuncts[t.text]:
		op = t.text
	case t.kind == tIdent:
		switch strings.ToLower(t.text) {
		case "like", "like~", "regex", "regex~", "in", "in~":
			op = strings.ToLower(t.text)
		case "not":
			if n := p.peekN(1); isKw(n, "in") || isKw(n, "in~") {
				p.next()
				negIn = true
				op = strings.ToLower(p.peek().text)
			}
		}
	}
	if op == "" {
		return l
	}
	opTok := p.next()
	r := p.operand()
	n := p.compare(l, op, r, opTok)
	if negIn {
		n = rule.Not(n)
	}
	return &term{kind: tmNode, node: n, start: l.start, end: r.end}
}

// operand reads a literal, field, call, list or parenthesized expression, then any
// arithmetic on it (which makes it a computed value).
func (p *parser) operand() *term {
	t := p.primary()
	for {
		n := p.peek()
		if n.kind != tPunct || !strings.Contains("+-*/%", n.text) {
			return t
		}
		p.next()
		r := p.primary()
		t = &term{kind: tmComputed, start: t.start, end: r.end}
	}
}

func (p *parser) primary() *term {
	t := p.next()
	switch t.kind {
	case tString:
		if t.escErr {
			p.diag(rule.Warning, t.off, "eql/string/escape", "unknown escape in %s kept as written", shorten(t.text, 60))
		}
		return &term{kind: tmLit, vals: []rule.Value{{S: t.val}}, start: t.off, end: t.off + len(t.text)}
	case tNumber:
		return &term{kind: tmLit, vals: []rule.Value{{S: t.text, Type: rule.Number}}, start: t.off, end: t.off + len(t.text)}
	case tPunct:
		switch t.text {
		case "-":
			if n := p.peek(); n.kind == tNumber {
				p.next()
				return &term{kind: tmLit, vals: []rule.Value{{S: "-" + n.text, Type: rule.Number}}, start: t.off, end: n.off + len(n.text)}
			}
		case "(":
			return p.group(t)
		}
	case tIdent:
		lw := strings.ToLower(t.text)
		switch lw {
		case "true", "false":
			return &term{kind: tmLit, vals: []rule.Value{{S: lw, Type: rule.Bool}}, start: t.off, end: t.off + len(t.text)}
		case "null":
			return &term{kind: tmLit, vals: []rule.Value{{Type: rule.Null}}, start: t.off, end: t.off + len(t.text)}
		case "descendant", "child", "event":
			if isKw(p.peek(), "of") && isP(p.peekN(1), "[") {
				return p.join(t)
			}
		}
		// `stringContains (f, "x")`: a space may separate a function from its arguments;
		// field names (dotted) never take arguments.
		if isP(p.peek(), "(") && (p.peek().off == t.off+len(t.text) || !strings.Contains(t.val, ".")) {
			return p.call(t)
		}
		return &term{kind: tmField, field: t.val, start: t.off, end: t.off + len(t.text)}
	}
	p.fail(t.off, "unexpected %s", describe(t))
	return nil
}

// group reads `( ... )`: a list when it holds commas, else a parenthesized expression.
func (p *parser) group(open token) *term {
	if isP(p.peek(), ")") {
		c := p.next()
		return &term{kind: tmList, listOK: true, start: open.off, end: c.off + 1}
	}
	first := p.exprTerm()
	if isP(p.peek(), ")") {
		c := p.next()
		first.start, first.end = open.off, c.off+1
		return first
	}
	items := []*term{first}
	for isP(p.peek(), ",") {
		p.next()
		if isP(p.peek(), ")") {
			break // a trailing comma
		}
		items = append(items, p.exprTerm())
	}
	c := p.expectP(")")
	lt := &term{kind: tmList, listOK: true, start: open.off, end: c.off + 1}
	for _, it := range items {
		if it.kind != tmLit {
			lt.listOK = false
			continue
		}
		lt.vals = append(lt.vals, it.vals...)
	}
	return lt
}

func (p *parser) call(name token) *term {
	p.next() // (
	ct := &term{kind: tmCall, fn: strings.TrimSuffix(name.val, "~"), tilde: strings.HasSuffix(name.val, "~"), start: name.off}
	if !isP(p.peek(), ")") {
		for {
			ct.args = append(ct.args, p.exprTerm())
			if !isP(p.peek(), ",") {
				break
			}
			p.next()
		}
	}
	c := p.expectP(")")
	ct.end = c.off + 1
	return ct
}

// join reads `descendant of [q]` (child of, event of). The sub-query is checked for
// syntax but kept as text: ruledex has no process-tree relation.
func (p *parser) join(kw token) *term {
	p.next() // of
	p.next() // [
	closeAt := p.matching(p.i - 1)
	if closeAt < 0 {
		p.fail(kw.off, "unclosed [ after %s of", kw.text)
	}
	p.eventQuery(p.i, closeAt, false)
	p.i = closeAt + 1
	end := p.endOff()
	return &term{kind: tmNode, node: p.opaque(kw.off, end, "eql/join", kw.text+" of is not modeled"), start: kw.off, end: end}
}

// compare lowers `l op r`.
func (p *parser) compare(l *term, op string, r *term, opTok token) *rule.Node {
	if l.kind != tmField && r.kind == tmField && (op == "==" || op == "!=" || op == ":") {
		l, r = r, l
	}
	if l.kind != tmField {
		return p.opaque(l.start, r.end, "eql/computed", "comparison of a computed value is not modeled")
	}
	switch r.kind {
	case tmField:
		if op == "==" || op == ":" || op == "!=" || op == "=" {
			var tr []string
			if op != ":" {
				tr = []string{rule.TCased}
			}
			n := p.leaf(l, rule.FieldRef, []rule.Value{{S: r.field}}, tr, op)
			if op == "!=" {
				return rule.Not(n)
			}
			return n
		}
		return p.opaque(l.start, r.end, "eql/fieldref", "comparison of two fields is not modeled")
	case tmLit, tmList:
		if !r.listOK && r.kind == tmList {
			return p.opaque(l.start, r.end, "eql/computed", "list of computed values is not modeled")
		}
	default:
		return p.opaque(l.start, r.end, "eql/computed", "comparison with a computed value is not modeled")
	}
	vals := r.vals
	if len(vals) == 0 {
		return p.opaque(l.start, r.end, "eql/empty-list", "comparison with an empty list")
	}
	switch op {
	case ":":
		return p.patterns(l, vals, false, op)
	case "like", "like~":
		return p.patterns(l, vals, op == "like", op)
	case "regex", "regex~":
		var out []rule.Value
		for _, v := range vals {
			if _, err := syntax.Parse(v.S, syntax.Perl); err != nil {
				// EQL regexes are Lucene regular expressions; RE2 rejects only what they
				// do not share (look-arounds, back-references) or what is broken.
				p.diag(rule.Warning, r.start, "eql/regex", "%s: %v", shorten(v.S, 60), err)
			}
			out = append(out, rule.Value{S: "^(?:" + v.S + ")$"})
		}
		tr := []string{rule.TCased}
		if op == "regex~" {
			tr = []string{rule.TIgnoreCase}
		}
		return p.leaf(l, rule.Regex, out, tr, op)
	case "in", "in~":
		return p.leaf(l, rule.In, vals, casedFor(vals, op == "in"), op)
	case "==", "=":
		if len(vals) == 1 && vals[0].Type == rule.Null {
			return p.leaf(l, rule.IsNull, nil, nil, op)
		}
		return p.leaf(l, rule.Eq, vals, casedFor(vals, true), op)
	case "!=":
		if len(vals) == 1 && vals[0].Type == rule.Null {
			return p.leaf(l, rule.IsNotNull, nil, nil, op)
		}
		if isArray(l.field) {
			// On an array, != holds when no element equals the value.
			return rule.Not(p.leaf(l, rule.Eq, vals, casedFor(vals, true), op))
		}
		return p.leaf(l, rule.Ne, vals, casedFor(vals, true), op)
	case "<", "<=", ">", ">=":
		return p.leaf(l, rangeKinds[op], vals, nil, op)
	}
	return p.opaque(l.start, r.end, "eql/operator", "operator "+op+" is not modeled")
}

var rangeKinds = map[string]rule.Kind{"<": rule.Lt, "<=": rule.Le, ">": rule.Gt, ">=": rule.Ge}

// casedFor is the cased transform when the test is case-sensitive and compares text.
func casedFor(vals []rule.Value, cased bool) []string {
	if !cased {
		return nil
	}
	for _, v := range vals {
		if v.Type == "" || v.Type == rule.String {
			return []string{rule.TCased}
		}
	}
	return nil
}

// leaf builds one predicate on field term f; array fields get transform elem.
func (p *parser) leaf(f *term, kind rule.Kind, vals []rule.Value, transforms []string, op string) *rule.Node {
	tr := append([]string(nil), transforms...)
	if isArray(f.field) {
		tr = append(tr, rule.TElem)
	}
	if kind == rule.IsNull || kind == rule.IsNotNull {
		vals = nil
	}
	pr := &rule.Pred{Field: f.field, Kind: kind, Values: vals, Transforms: tr, Native: f.field + " " + op, Pos: p.pos(f.start)}
	if len(pr.Transforms) == 0 {
		pr.Transforms = nil
	}
	return rule.Leaf(pr)
}

// patterns lowers wildcard patterns (`:`, like, wildcard()): each value gets the kind its
// shape says; values of one kind share a predicate, kinds are OR-ed in order of first use.
func (p *parser) patterns(f *term, vals []rule.Value, cased bool, op string) *rule.Node {
	type group struct {
		kind rule.Kind
		vals []rule.Value
	}
	var groups []*group
	byKind := map[rule.Kind]*group{}
	for _, v := range vals {
		kind, pv := rule.Eq, v
		switch {
		case v.Type == rule.Null:
			kind = rule.IsNull
		case v.Type == "" || v.Type == rule.String:
			kind, pv = pattern(v.S)
		}
		g := byKind[kind]
		if g == nil {
			g = &group{kind: kind}
			byKind[kind] = g
			groups = append(groups, g)
		}
		g.vals = append(g.vals, pv)
	}
	var nodes []*rule.Node
	for _, g := range groups {
		var tr []string
		if cased {
			tr = casedFor(g.vals, true)
		}
		nodes = append(nodes, p.leaf(f, g.kind, g.vals, tr, op))
	}
	if len(nodes) == 1 {
		return nodes[0]
	}
	return rule.Or(nodes...)
}

// pattern classifies an EQL wildcard pattern (`*` any run, `?` one character).
func pattern(s string) (rule.Kind, rule.Value) {
	if !strings.ContainsAny(s, "*?") {
		return rule.Eq, rule.Value{S: s}
	}
	if strings.Trim(s, "*") == "" {
		return rule.IsNotNull, rule.Value{}
	}
	if !strings.Contains(s, "?") {
		inner := strings.Trim(s, "*")
		if !strings.Contains(inner, "*") {
			lead, trail := s[0] == '*', s[len(s)-1] == '*'
			switch {
			case lead && trail:
				return rule.Match, rule.Value{S: inner}
			case lead:
				return rule.EndsW, rule.Value{S: inner}
			default:
				return rule.StartsW, rule.Value{S: inner}
			}
		}
	}
	return rule.Glob, rule.Value{S: globEscape(s), Wild: true}
}

// globEscape writes an EQL pattern in ruledex glob syntax: EQL has no escapes, so a
// backslash is literal; it is doubled only where ruledex would read it as an escape.
func globEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+1 < len(s) && (s[i+1] == '*' || s[i+1] == '?' || s[i+1] == '\\') {
			b.WriteString(`\\`)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

var refPositions = map[rule.Kind]string{rule.StartsW: "startswith", rule.EndsW: "endswith", rule.Match: "contains"}

// callPred lowers a function call in boolean position.
func (p *parser) callPred(c *term) *rule.Node {
	fn := strings.ToLower(c.fn)
	var kind rule.Kind
	switch fn {
	case "startswith":
		kind = rule.StartsW
	case "endswith":
		kind = rule.EndsW
	case "stringcontains":
		kind = rule.Match
	case "wildcard":
		kind = rule.Glob
	case "cidrmatch":
		kind = rule.CIDR
	default:
		return p.opaque(c.start, c.end, "eql/function", "function "+c.fn+" is not modeled as a condition")
	}
	if len(c.args) < 2 || c.args[0].kind != tmField {
		return p.opaque(c.start, c.end, "eql/function", c.fn+" needs a field and values")
	}
	op := c.fn
	if c.tilde {
		op += "~"
	}
	// startsWith(a, b) with b a field: a field reference with the position test as a
	// transform, as Sigma's fieldref|startswith.
	if pos, ok := refPositions[kind]; ok && len(c.args) == 2 && c.args[1].kind == tmField {
		tr := []string{pos}
		if !c.tilde {
			tr = append(tr, rule.TCased)
		}
		return p.leaf(c.args[0], rule.FieldRef, []rule.Value{{S: c.args[1].field}}, tr, op)
	}
	var vals []rule.Value
	for _, a := range c.args[1:] {
		if a.kind != tmLit && !(a.kind == tmList && a.listOK) {
			return p.opaque(c.start, c.end, "eql/function", c.fn+" with computed arguments is not modeled")
		}
		vals = append(vals, a.vals...)
	}
	f := c.args[0]
	cased := !c.tilde && kind != rule.CIDR
	if kind == rule.Glob {
		return p.patterns(f, vals, cased, op)
	}
	return p.leaf(f, kind, vals, casedFor(vals, cased), op)
}
