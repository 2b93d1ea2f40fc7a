package sigma

import (
	"strings"

	"github.com/ruledex/ruledex/rule"
	"go.yaml.in/yaml/v3"
)

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tLParen
	tRParen
	tPipe
	tComma
	tOp // comparison operator
)

type token struct {
	kind tokKind
	text string
	off  int // byte offset in the condition
}

// lexCondition splits a condition into tokens. It never fails: unknown characters
// become part of identifiers and the parser reports what does not fit.
func lexCondition(s string) []token {
	var out []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t'):
			// A YAML-style trailing comment kept inside a block scalar.
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '(':
			out = append(out, token{tLParen, "(", i})
			i++
		case c == ')':
			out = append(out, token{tRParen, ")", i})
			i++
		case c == '|':
			out = append(out, token{tPipe, "|", i})
			i++
		case c == ',':
			out = append(out, token{tComma, ",", i})
			i++
		case c == '>' || c == '<' || c == '=' || c == '!':
			j := i + 1
			if j < len(s) && s[j] == '=' {
				j++
			}
			out = append(out, token{tOp, s[i:j], i})
			i = j
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\r\n()|,<>=!", rune(s[j])) {
				j++
			}
			out = append(out, token{tIdent, s[i:j], i})
			i = j
		}
	}
	return append(out, token{tEOF, "", len(s)})
}

// condParser is a recursive-descent parser for one condition string:
// or < and < not < primary; primary is a name, `( expr )`, or `1|any|all of pattern|them`.
type condParser struct {
	d     *docCtx
	src   string
	node  *yaml.Node // the YAML scalar, for positions
	toks  []token
	i     int
	sels  []*selection
	by    map[string]*selection
	used  map[string]bool
	bad   bool
	abort bool // an error made the rest of the condition unreliable
	depth int
}

func (p *condParser) peek() token { return p.toks[p.i] }
func (p *condParser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

// at locates a byte offset of the condition in the file. A single-line scalar maps
// directly; a multi-line one (folded by YAML) is searched in the file text: folding
// only changes whitespace, so the k-th occurrence of a token in the value is the k-th
// in the source after the scalar's start.
func (p *condParser) at(off int) *yaml.Node {
	n := *p.node
	quoted := n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0
	block := n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0
	line := p.d.line(n.Line)
	start := n.Column - 1
	if quoted {
		start++
	}
	if !block && !strings.Contains(p.src, "\n") && start >= 0 && start <= len(line) && strings.HasPrefix(line[start:], p.src) {
		n.Column = start + off + 1
		return &n
	}
	tok := ""
	for _, t := range p.toks {
		if t.off == off {
			tok = t.text
			break
		}
	}
	if tok == "" || off > len(p.src) {
		return &n
	}
	k := strings.Count(p.src[:off], tok)
	if l, c, ok := p.d.find(n.Line, n.Column, tok, k); ok {
		n.Line, n.Column = l, c
	}
	return &n
}

func (p *condParser) errf(off int, code, format string, args ...any) {
	p.bad = true
	if p.abort {
		return
	}
	// One syntax error per condition: what follows it is usually a consequence.
	if code == "sigma/condition/syntax" || code == "sigma/condition/too-deep" {
		p.abort = true
	}
	p.d.errf(p.at(off), code, format, args...)
}

func (p *condParser) warnf(off int, code, format string, args ...any) {
	p.d.warnf(p.at(off), code, format, args...)
}

// keyword reports whether t is the given keyword, warning when its case is not lower.
func (p *condParser) keyword(t token, kw string) bool {
	if t.kind != tIdent || !strings.EqualFold(t.text, kw) {
		return false
	}
	if t.text != kw {
		// Only treat it as the keyword when no selection has this exact name.
		if p.by[t.text] != nil {
			return false
		}
		p.warnf(t.off, "sigma/condition/keyword-case", "%q should be written %q", t.text, kw)
	}
	return true
}

func (p *condParser) isKeyword(t token, kw string) bool {
	return t.kind == tIdent && strings.EqualFold(t.text, kw) && (t.text == kw || p.by[t.text] == nil)
}

// mark records the source text of n, from byte offset start to the last token read,
// for stage labels.
func (p *condParser) mark(start int, n *rule.Node) *rule.Node {
	if p.i > 0 && n != nil {
		prev := p.toks[p.i-1]
		if end := prev.off + len(prev.text); end > start && end <= len(p.src) {
			p.d.texts[n] = strings.TrimSpace(p.src[start:end])
		}
	}
	return n
}

func (p *condParser) parseOr() *rule.Node {
	start := p.peek().off
	return p.mark(start, p.parseOr1())
}

func (p *condParser) parseOr1() *rule.Node {
	left := p.parseAnd()
	var kids []*rule.Node
	for p.isKeyword(p.peek(), "or") {
		p.keyword(p.next(), "or")
		if kids == nil {
			kids = []*rule.Node{left}
		}
		kids = append(kids, p.parseAnd())
	}
	if kids == nil {
		return left
	}
	n := rule.Or(kids...)
	n.Pos = left.Pos
	return n
}

func (p *condParser) parseAnd() *rule.Node {
	start := p.peek().off
	return p.mark(start, p.parseAnd1())
}

func (p *condParser) parseAnd1() *rule.Node {
	left := p.parseNot()
	var kids []*rule.Node
	for p.isKeyword(p.peek(), "and") {
		p.keyword(p.next(), "and")
		if kids == nil {
			kids = []*rule.Node{left}
		}
		kids = append(kids, p.parseNot())
	}
	if kids == nil {
		return left
	}
	n := rule.And(kids...)
	n.Pos = left.Pos
	return n
}

// maxDepth bounds nesting of not and parentheses, so hostile input cannot exhaust the
// stack (a fatal error no recover catches).
const maxDepth = 200

func (p *condParser) parseNot() *rule.Node {
	start := p.peek().off
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		t := p.peek()
		p.errf(t.off, "sigma/condition/too-deep", "condition nests deeper than %d levels", maxDepth)
		for p.peek().kind != tEOF {
			p.next()
		}
		return p.opaque(t)
	}
	return p.mark(start, p.parseNot1())
}

func (p *condParser) parseNot1() *rule.Node {
	if p.isKeyword(p.peek(), "not") {
		t := p.next()
		p.keyword(t, "not")
		inner := p.parseNot()
		n := rule.Not(inner)
		n.Pos = p.d.pos(p.at(t.off))
		return n
	}
	return p.parsePrimary()
}

func (p *condParser) opaque(t token) *rule.Node {
	return &rule.Node{Op: rule.OpOpaque, Text: t.text, Pos: p.d.pos(p.at(t.off))}
}

func (p *condParser) parsePrimary() *rule.Node {
	start := p.peek().off
	return p.mark(start, p.parsePrimary1())
}

func (p *condParser) parsePrimary1() *rule.Node {
	t := p.next()
	switch t.kind {
	case tLParen:
		n := p.parseOr()
		if p.peek().kind != tRParen {
			u := p.peek()
			p.errf(u.off, "sigma/condition/syntax", "expected ) to close the ( at column %d, found %s", t.off+1, describe(u))
			return n
		}
		p.next()
		return n
	case tIdent:
		low := strings.ToLower(t.text)
		if (low == "1" || low == "any" || low == "all") && p.isKeyword(p.toks[p.i], "of") {
			if low != t.text {
				p.warnf(t.off, "sigma/condition/keyword-case", "%q should be written %q", t.text, low)
			}
			p.keyword(p.next(), "of")
			pat := p.next()
			if pat.kind != tIdent {
				p.errf(pat.off, "sigma/condition/syntax", "expected a selection pattern or 'them' after '%s of', found %s", t.text, describe(pat))
				return p.opaque(t)
			}
			q := "1"
			if low == "all" {
				q = "all"
			}
			return p.quant(t, q, pat)
		}
		if low == "and" || low == "or" || low == "not" || low == "of" {
			p.errf(t.off, "sigma/condition/syntax", "unexpected %q where a selection was expected", t.text)
			return p.opaque(t)
		}
		if nx := p.peek(); nx.kind == tOp {
			p.errf(nx.off, "sigma/condition/comparison", "%q compares a selection with %s; conditions only combine selections (use a field modifier such as |gt in the selection)", t.text+" "+nx.text, "a value")
			p.next()
			if p.peek().kind == tIdent {
				p.next()
			}
			return p.opaque(t)
		}
		return p.ref(t)
	case tEOF:
		p.errf(t.off, "sigma/condition/syntax", "condition ends where a selection was expected")
		return &rule.Node{Op: rule.OpOpaque, Text: "", Pos: p.d.pos(p.at(t.off))}
	default:
		p.errf(t.off, "sigma/condition/syntax", "unexpected %s where a selection was expected", describe(t))
		return p.opaque(t)
	}
}

func describe(t token) string {
	if t.kind == tEOF {
		return "end of condition"
	}
	return "'" + t.text + "'"
}

func (p *condParser) ref(t token) *rule.Node {
	s := p.by[t.text]
	if s == nil {
		// Selection names are case-sensitive; accept a unique case-insensitive match with a warning.
		var cand *selection
		for _, x := range p.sels {
			if strings.EqualFold(x.name, t.text) {
				if cand != nil {
					cand = nil
					break
				}
				cand = x
			}
		}
		if cand == nil && strings.ContainsAny(t.text, "*?") {
			p.errf(t.off, "sigma/condition/unknown-ref", "condition names %q, which is not a selection of this rule (a pattern needs '1 of' or 'all of' before it)", t.text)
			return p.opaque(t)
		}
		if cand == nil {
			p.errf(t.off, "sigma/condition/unknown-ref", "condition names %q, which is not a selection of this rule", t.text)
			return p.opaque(t)
		}
		p.warnf(t.off, "sigma/condition/ref-case", "condition names %q but the selection is %q", t.text, cand.name)
		s = cand
	}
	p.used[s.name] = true
	n := rule.Ref(s.name, s.body)
	n.Pos = p.d.pos(s.key)
	return n
}

func (p *condParser) quant(t token, q string, pat token) *rule.Node {
	n := &rule.Node{Op: rule.OpQuant, Quant: q, Name: pat.text, Pos: p.d.pos(p.at(t.off))}
	them := strings.EqualFold(pat.text, "them")
	if them && pat.text != "them" && p.by[pat.text] == nil {
		p.warnf(pat.off, "sigma/condition/keyword-case", "%q should be written %q", pat.text, "them")
		n.Name = "them"
	}
	for _, s := range p.sels {
		var ok bool
		if them && p.by[pat.text] == nil {
			// pySigma leaves selections whose name starts with _ out of `them`.
			ok = !strings.HasPrefix(s.name, "_")
		} else {
			ok = nameMatch(pat.text, s.name)
		}
		if ok {
			p.used[s.name] = true
			r := rule.Ref(s.name, s.body)
			r.Pos = p.d.pos(s.key)
			n.Children = append(n.Children, r)
		}
	}
	if len(n.Children) == 0 {
		p.errf(pat.off, "sigma/condition/no-match", "%q matches no selection of this rule", pat.text)
	}
	return n
}

// nameMatch matches a selection name against a condition pattern, where only `*`
// (any run of characters) is special, as in pySigma.
func nameMatch(pat, name string) bool {
	parts := strings.Split(pat, "*")
	if len(parts) == 1 {
		return pat == name
	}
	if !strings.HasPrefix(name, parts[0]) {
		return false
	}
	name = name[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(name, p)
		if i < 0 {
			return false
		}
		name = name[i+len(p):]
	}
	return len(name) >= len(last) && strings.HasSuffix(name, last)
}
