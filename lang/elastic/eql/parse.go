package eql

import (
	"fmt"
	"strings"

	"github.com/ruledex/ruledex/rule"
)

// parser reads one token range of a query. Sub-queries in brackets get a parser of their
// own over their tokens, so a syntax error stays inside the sub-query it is in.
type parser struct {
	q     string
	toks  []token
	i     int
	at    rule.Pos
	lines []int // offsets of line starts in q
	diags *[]rule.Diagnostic
	depth int
}

// syntaxError aborts the parse of one token range; the range's parser recovers it.
type syntaxError struct {
	off int
	msg string
}

const maxDepth = 200

func newParser(q string, at rule.Pos) *parser {
	lines := []int{0}
	for i := 0; i < len(q); i++ {
		if q[i] == '\n' {
			lines = append(lines, i+1)
		}
	}
	var diags []rule.Diagnostic
	return &parser{q: q, toks: lex(q), at: at, lines: lines, diags: &diags}
}

// sub returns a parser over toks[from:to] of the same query.
func (p *parser) sub(from, to int) *parser {
	toks := make([]token, 0, to-from+1)
	toks = append(toks, p.toks[from:to]...)
	end := len(p.q)
	if to < len(p.toks) {
		end = p.toks[to].off
	}
	toks = append(toks, token{kind: tEOF, off: end})
	return &parser{q: p.q, toks: toks, at: p.at, lines: p.lines, diags: p.diags, depth: p.depth}
}

func (p *parser) pos(off int) rule.Pos {
	lo, hi := 0, len(p.lines)-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if p.lines[mid] <= off {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	col := off - p.lines[lo] + 1
	pos := rule.Pos{File: p.at.File}
	if p.at.Line > 0 {
		pos.Line = p.at.Line + lo
		if lo == 0 && p.at.Col > 0 {
			col += p.at.Col - 1
		}
		pos.Col = col
	}
	return pos
}

func (p *parser) diag(sev rule.Severity, off int, code, format string, args ...any) {
	*p.diags = append(*p.diags, rule.Diagnostic{Severity: sev, Code: code, Pos: p.pos(off), Message: fmt.Sprintf(format, args...)})
}

func (p *parser) fail(off int, format string, args ...any) {
	panic(syntaxError{off: off, msg: fmt.Sprintf(format, args...)})
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) peekN(n int) token {
	if p.i+n < len(p.toks) {
		return p.toks[p.i+n]
	}
	return p.toks[len(p.toks)-1]
}
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

// isKw reports whether t is the keyword kw (EQL keywords are case-insensitive).
func isKw(t token, kw string) bool { return t.kind == tIdent && strings.EqualFold(t.text, kw) }
func isP(t token, s string) bool   { return t.kind == tPunct && t.text == s }

func (p *parser) expectP(s string) token {
	t := p.next()
	if !isP(t, s) {
		p.fail(t.off, "expected %q, found %s", s, describe(t))
	}
	return t
}

func describe(t token) string {
	if t.kind == tEOF {
		return "end of query"
	}
	return fmt.Sprintf("%q", t.text)
}

// text is the source between two offsets, trimmed.
func (p *parser) text(from, to int) string {
	if from < 0 {
		from = 0
	}
	if to > len(p.q) {
		to = len(p.q)
	}
	if from > to {
		return ""
	}
	return strings.TrimSpace(p.q[from:to])
}

// endOff is the end offset of the last consumed token.
func (p *parser) endOff() int {
	if p.i == 0 {
		return p.toks[0].off
	}
	t := p.toks[p.i-1]
	return t.off + len(t.text)
}

// query reads the whole query.
func (p *parser) query() (out *Query) {
	out = &Query{Kind: "event"}
	defer func() {
		if r := recover(); r != nil {
			se, ok := r.(syntaxError)
			if !ok {
				se = syntaxError{off: 0, msg: fmt.Sprint("internal error: ", r)}
			}
			p.diag(rule.Error, se.off, "eql/syntax", "%s", se.msg)
			out.Root = nil
			out.Stages = []rule.Stage{{Kind: rule.StageOpaque, Label: "query", Text: strings.TrimSpace(p.q), Pos: p.pos(firstOff(p.toks))}}
			out.Correlation = nil
		}
		out.Diags = *p.diags
		for i := range out.Stages {
			out.Stages[i].Index = i + 1
		}
	}()
	t := p.peek()
	switch {
	case t.kind == tEOF:
		p.fail(t.off, "empty query")
	case isKw(t, "sequence"), isKw(t, "sample"):
		p.sequence(out)
	default:
		sq := p.eventQuery(p.i, p.pipeStart(), true)
		out.Categories = addCat(out.Categories, sq.category)
		out.Root = sq.node
		out.Stages = append(out.Stages, sq.stages...)
	}
	p.pipes(out)
	if t := p.peek(); t.kind != tEOF {
		p.fail(t.off, "unexpected %s after the query", describe(t))
	}
	return out
}

func firstOff(toks []token) int {
	if len(toks) > 0 {
		return toks[0].off
	}
	return 0
}

func addCat(cats []string, c string) []string {
	c = strings.ToLower(c)
	if c == "" || c == "any" {
		return cats
	}
	for _, x := range cats {
		if x == c {
			return cats
		}
	}
	return append(cats, c)
}

// subQuery is one `category where cond` read into nodes.
type subQuery struct {
	category string
	node     *rule.Node
	stages   []rule.Stage // one per top-level conjunct (only when asked for)
	start    int
	end      int
}

// eventQuery reads `category where cond` from toks[from:to] (to excluded). A syntax error
// inside becomes an opaque condition with an error diagnostic. With split, the top-level
// conjuncts become stages.
func (p *parser) eventQuery(from, to int, split bool) (sq subQuery) {
	sp := p.sub(from, to)
	start := sp.toks[0].off
	sq.start = start
	sq.end = sp.toks[len(sp.toks)-1].off
	defer func() {
		if r := recover(); r != nil {
			se, ok := r.(syntaxError)
			if !ok {
				panic(r)
			}
			p.diag(rule.Error, se.off, "eql/syntax", "%s", se.msg)
			txt := p.text(start, sq.end)
			sq.node = &rule.Node{Op: rule.OpOpaque, Text: txt, Pos: p.pos(start)}
			sq.stages = []rule.Stage{{Kind: rule.StageOpaque, Label: shorten(txt, 60), Text: txt, Node: sq.node, Pos: p.pos(start)}}
		}
		// The main parser continues after the range.
		p.i = to
	}()
	ct := sp.next()
	switch ct.kind {
	case tIdent:
		sq.category = ct.val
	case tString:
		sq.category = ct.val
	default:
		sp.fail(ct.off, "expected an event category, found %s", describe(ct))
	}
	if w := sp.next(); !isKw(w, "where") {
		sp.fail(w.off, "expected \"where\" after the event category, found %s", describe(w))
	}
	if split {
		parts := sp.andParts()
		if isKw(sp.peek(), "or") {
			first := andOf(partNodes(parts))
			alts := []*rule.Node{first}
			for isKw(sp.peek(), "or") {
				sp.next()
				alts = append(alts, sp.and())
			}
			sq.node = rule.Or(alts...)
			condStart := parts[0].start
			txt := p.text(condStart, sp.endOff())
			sq.stages = []rule.Stage{{Kind: rule.StageSelection, Label: shorten(oneLine(txt), 60), Text: txt, Node: sq.node, Pos: p.pos(condStart)}}
		} else {
			sq.node = andOf(partNodes(parts))
			for _, pt := range parts {
				txt := p.text(pt.start, pt.end)
				st := rule.Stage{Kind: rule.StageSelection, Label: shorten(oneLine(txt), 60), Text: txt, Node: pt.node, Pos: p.pos(pt.start)}
				if pt.node.Op == rule.OpNot {
					st.Negated = true
				}
				if pt.node.Op == rule.OpOpaque {
					st.Kind = rule.StageOpaque
				}
				sq.stages = append(sq.stages, st)
			}
		}
	} else {
		sq.node = sp.expr()
	}
	if t := sp.peek(); t.kind != tEOF {
		sp.fail(t.off, "unexpected %s in the condition", describe(t))
	}
	return sq
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && cut < len(s) && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}

type part struct {
	node       *rule.Node
	start, end int
}

func partNodes(ps []part) []*rule.Node {
	out := make([]*rule.Node, len(ps))
	for i, pt := range ps {
		out[i] = pt.node
	}
	return out
}

func andOf(nodes []*rule.Node) *rule.Node {
	var kept []*rule.Node
	for _, n := range nodes {
		if n == nil {
			continue
		}
		if n.Op == rule.OpAnd {
			kept = append(kept, n.Children...)
			continue
		}
		kept = append(kept, n)
	}
	switch len(kept) {
	case 0:
		return &rule.Node{Op: rule.OpTrue}
	case 1:
		return kept[0]
	}
	return rule.And(kept...)
}

// sequence reads `sequence|sample [by f,...] [with maxspan=t] [q] [by f] [with runs=n] ... [until [q]]`.
func (p *parser) sequence(out *Query) {
	kw := p.next()
	out.Kind = strings.ToLower(kw.text)
	corr := &rule.Correlation{Type: "temporal_ordered"}
	if out.Kind == "sample" {
		corr.Type = "temporal"
	}
	for {
		t := p.peek()
		if isKw(t, "by") {
			p.next()
			corr.GroupBy = append(corr.GroupBy, p.fieldList()...)
			continue
		}
		if isKw(t, "with") {
			p.next()
			name, val := p.setting()
			if strings.EqualFold(name, "maxspan") {
				corr.Timespan = val
			} else {
				p.diag(rule.Warning, t.off, "eql/sequence/setting", "unknown sequence setting %q", name)
			}
			continue
		}
		break
	}
	header := p.text(kw.off, p.peek().off)
	var subs []rule.Stage
	perQueryBy := false
	for {
		t := p.peek()
		missing, until := false, false
		switch {
		case isP(t, "!") && isP(p.peekN(1), "["):
			p.next()
			missing = true
		case isKw(t, "until") && isP(p.peekN(1), "["):
			p.next()
			until = true
		case isP(t, "["):
		default:
			goto done
		}
		open := p.next()
		closeAt := p.matching(p.i - 1)
		if closeAt < 0 {
			p.fail(open.off, "unclosed [")
		}
		sq := p.eventQuery(p.i, closeAt, false)
		p.i = closeAt + 1
		out.Categories = addCat(out.Categories, sq.category)
		label := "[" + sq.category + "]"
		var by []string
		runs := ""
		for {
			if isKw(p.peek(), "by") {
				p.next()
				by = p.fieldList()
				continue
			}
			if isKw(p.peek(), "with") {
				wt := p.next()
				name, val := p.setting()
				if strings.EqualFold(name, "runs") {
					runs = val
				} else {
					p.diag(rule.Warning, wt.off, "eql/sequence/setting", "unknown sub-query setting %q", name)
				}
				continue
			}
			break
		}
		if len(by) > 0 {
			label += " by " + strings.Join(by, ", ")
			if !perQueryBy {
				corr.GroupBy = append(corr.GroupBy, by...)
				perQueryBy = true
			}
		}
		if runs != "" {
			label += " with runs=" + runs
		}
		st := rule.Stage{Kind: rule.StageSelection, Label: label, Text: p.text(open.off, p.endOff()), Node: sq.node, Pos: p.pos(open.off)}
		if sq.node != nil && sq.node.Op == rule.OpOpaque {
			st.Kind = rule.StageOpaque
		}
		switch {
		case missing:
			st.Label = "missing " + label
			st.Negated = true
			st.Node = rule.Not(sq.node)
		case until:
			st.Label = "until " + label
			st.Negated = true
			st.Node = rule.Not(sq.node)
		default:
			corr.Rules = append(corr.Rules, label)
		}
		subs = append(subs, st)
	}
done:
	if len(subs) == 0 {
		p.fail(p.peek().off, "%s without sub-queries", out.Kind)
	}
	out.Stages = append(out.Stages, subs...)
	agg := &rule.Aggregation{Func: corr.Type, GroupBy: corr.GroupBy, Timespan: corr.Timespan}
	out.Stages = append(out.Stages, rule.Stage{Kind: rule.StageCorrelation, Label: out.Kind, Op: out.Kind, Text: header, Aggregation: agg, Pos: p.pos(kw.off)})
	out.Correlation = corr
}

// pipeStart returns the index of the first `|` outside brackets, or of the end.
func (p *parser) pipeStart() int {
	depth := 0
	for j := p.i; j < len(p.toks); j++ {
		t := p.toks[j]
		if t.kind != tPunct {
			continue
		}
		switch t.text {
		case "[", "(":
			depth++
		case "]", ")":
			depth--
		case "|":
			if depth <= 0 {
				return j
			}
		}
	}
	return len(p.toks) - 1
}

// matching returns the index of the token closing the bracket at toks[i], or -1.
func (p *parser) matching(i int) int {
	depth := 0
	for j := i; j < len(p.toks); j++ {
		t := p.toks[j]
		if t.kind != tPunct {
			continue
		}
		switch t.text {
		case "[", "(":
			depth++
		case "]", ")":
			depth--
			if depth == 0 {
				if t.text != "]" {
					return -1
				}
				return j
			}
		}
	}
	return -1
}

// setting reads `name = value` of a with clause; value may be written `5m` or `5 m`.
func (p *parser) setting() (string, string) {
	n := p.next()
	if n.kind != tIdent {
		p.fail(n.off, "expected a setting name, found %s", describe(n))
	}
	p.expectP("=")
	v := p.next()
	if v.kind != tNumber && v.kind != tIdent && v.kind != tString {
		p.fail(v.off, "expected a value for %s, found %s", n.text, describe(v))
	}
	val := v.text
	if v.kind == tNumber && p.peek().kind == tIdent && p.peek().off == v.off+len(v.text) {
		val += p.next().text
	}
	return n.val, val
}

func (p *parser) fieldList() []string {
	var out []string
	for {
		t := p.next()
		if t.kind != tIdent {
			p.fail(t.off, "expected a field name, found %s", describe(t))
		}
		out = append(out, t.val)
		if !isP(p.peek(), ",") {
			return out
		}
		p.next()
	}
}

// pipes reads `| head n | filter cond | unique f ...`.
func (p *parser) pipes(out *Query) {
	for isP(p.peek(), "|") {
		bar := p.next()
		name := p.next()
		if name.kind != tIdent {
			p.fail(name.off, "expected a pipe name after |, found %s", describe(name))
		}
		op := strings.ToLower(name.text)
		st := rule.Stage{Kind: rule.StagePipeline, Label: op, Op: op, Pos: p.pos(bar.off)}
		switch op {
		case "filter", "where":
			n := p.expr()
			st.Node = n
			if out.Root != nil {
				out.Root = andOf([]*rule.Node{out.Root, n})
			}
		case "head", "tail":
			if p.peek().kind == tNumber {
				p.next()
			}
		case "unique", "unique_count", "count", "sort":
			if p.peek().kind == tIdent && !isP(p.peek(), "|") {
				p.fieldList()
			}
		default:
			p.diag(rule.Warning, name.off, "eql/pipe/unknown", "pipe %q is not modeled", name.text)
			for p.peek().kind != tEOF && !isP(p.peek(), "|") {
				p.next()
			}
			st.Kind = rule.StageOpaque
		}
		st.Text = p.text(bar.off, p.endOff())
		out.Stages = append(out.Stages, st)
	}
}

// andParts reads an and-chain and returns its operands with their source spans.
func (p *parser) andParts() []part {
	var parts []part
	for {
		start := p.peek().off
		n := p.not()
		parts = append(parts, part{node: n, start: start, end: p.endOff()})
		if !isKw(p.peek(), "and") {
			return parts
		}
		p.next()
	}
}

func (p *parser) expr() *rule.Node {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		p.fail(p.peek().off, "expression nested too deeply")
	}
	n := p.and()
	if !isKw(p.peek(), "or") {
		return n
	}
	alts := []*rule.Node{n}
	for isKw(p.peek(), "or") {
		p.next()
		alts = append(alts, p.and())
	}
	return rule.Or(alts...)
}

func (p *parser) and() *rule.Node {
	return andOf(partNodes(p.andParts()))
}

func (p *parser) not() *rule.Node {
	t := p.peek()
	if isKw(t, "not") {
		p.next()
		p.depth++
		defer func() { p.depth-- }()
		if p.depth > maxDepth {
			p.fail(t.off, "expression nested too deeply")
		}
		n := p.not()
		nn := rule.Not(n)
		nn.Pos = p.pos(t.off)
		return nn
	}
	return p.comparison()
}
