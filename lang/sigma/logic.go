package sigma

import (
	"strconv"
	"strings"

	"github.com/ruledex/ruledex/rule"
	"go.yaml.in/yaml/v3"
)

// parsedCond is one condition string after parsing.
type parsedCond struct {
	node *yaml.Node
	tree *rule.Node
	agg  *rule.Aggregation
	aggT string // the aggregation as written, after the pipe
	pos  rule.Pos
}

// logic parses the conditions over the selections and fills Condition, Root and Stages.
func (d *docCtx) logic(sels []*selection, conds []*yaml.Node, condNode, section *yaml.Node) {
	r := d.r
	if d.texts == nil {
		d.texts = map[*rule.Node]string{}
	}
	texts := make([]string, len(conds))
	for i, c := range conds {
		texts[i] = c.Value
	}
	r.Condition = strings.Join(texts, "\n")
	by := map[string]*selection{}
	for _, s := range sels {
		by[s.name] = s
	}
	used := map[string]bool{}
	var parsed []*parsedCond
	for _, c := range conds {
		p := &condParser{d: d, src: c.Value, node: c, toks: lexCondition(c.Value), sels: sels, by: by, used: used}
		pc := &parsedCond{node: c, pos: d.pos(c)}
		pc.tree = p.parseOr()
		switch t := p.peek(); t.kind {
		case tEOF:
		case tPipe:
			p.next()
			pc.agg, pc.aggT = p.aggregation(t.off)
		default:
			p.errf(t.off, "sigma/condition/syntax", "unexpected %s after a complete condition", describe(t))
		}
		parsed = append(parsed, pc)
	}
	for _, s := range sels {
		if s.empty == "" {
			continue
		}
		if used[s.name] {
			d.errf(s.key, "sigma/detection/empty", "selection %q %s", s.name, s.empty)
		} else {
			// Unused, so the rule's meaning does not depend on it.
			d.warnf(s.key, "sigma/detection/empty-unused", "selection %q %s and is not used by the condition", s.name, s.empty)
		}
	}
	if len(parsed) == 0 {
		if condNode != nil || section != nil {
			r.Stages = append(r.Stages, rule.Stage{Index: 0, Kind: rule.StageCondition, Label: "condition", Pos: d.pos(condNode)})
		}
		return
	}
	if len(parsed) == 1 {
		r.Root = parsed[0].tree
	} else {
		kids := make([]*rule.Node, len(parsed))
		for i, pc := range parsed {
			kids[i] = pc.tree
		}
		r.Root = rule.Or(kids...)
		r.Root.Pos = parsed[0].pos
	}
	for _, pc := range parsed {
		if pc.agg != nil {
			pc.agg.Timespan = r.Timeframe
			if r.GroupBy == nil {
				r.GroupBy = pc.agg.GroupBy
			}
		}
	}
	d.stages(parsed, by, condNode)
}

// stages renders the rule as REFERENCE §1.7 describes: Stage 0 is the condition as
// written; then each top-level conjunct is a stage; a top-level OR (or a list of
// conditions) makes alternatives, each with its own stages.
func (d *docCtx) stages(parsed []*parsedCond, by map[string]*selection, condNode *yaml.Node) {
	r := d.r
	r.Stages = append(r.Stages, rule.Stage{Index: 0, Kind: rule.StageCondition, Label: "condition",
		Text: r.Condition, Pos: d.pos(condNode)})
	var alts []*rule.Node
	for _, pc := range parsed {
		if pc.tree.Op == rule.OpOr {
			alts = append(alts, pc.tree.Children...)
		} else {
			alts = append(alts, pc.tree)
		}
	}
	for i, a := range alts {
		alt := 0
		if len(alts) > 1 {
			alt = i + 1
		}
		conj := []*rule.Node{a}
		if a.Op == rule.OpAnd {
			conj = a.Children
		}
		for _, c := range conj {
			for _, st := range d.conjunctStages(c, by) {
				st.Index = len(r.Stages)
				st.Alt = alt
				r.Stages = append(r.Stages, st)
			}
		}
	}
	for _, pc := range parsed {
		if pc.agg == nil {
			continue
		}
		r.Stages = append(r.Stages, rule.Stage{Index: len(r.Stages), Kind: rule.StageAggregation,
			Label: pc.aggT, Op: pc.agg.Func, Text: pc.aggT, Aggregation: pc.agg, Pos: pc.pos})
	}
}

// conjunctStages turns one top-level conjunct into its stage(s).
func (d *docCtx) conjunctStages(c *rule.Node, by map[string]*selection) []rule.Stage {
	neg := false
	inner := c
	if c.Op == rule.OpNot && len(c.Children) == 1 {
		neg, inner = true, c.Children[0]
	}
	prefix := ""
	if neg {
		prefix = "not "
	}
	switch inner.Op {
	case rule.OpRef:
		return []rule.Stage{{Kind: rule.StageSelection, Label: prefix + inner.Name, Negated: neg,
			Text: d.render(by[inner.Name]), Node: c, Pos: c.Pos}}
	case rule.OpQuant:
		label := prefix + d.quantLabel(inner)
		if inner.Quant == "all" && !neg {
			var out []rule.Stage
			for _, ref := range inner.Children {
				out = append(out, rule.Stage{Kind: rule.StageSelection, Label: ref.Name,
					Text: d.render(by[ref.Name]), Node: ref, Pos: ref.Pos})
			}
			if len(out) > 0 {
				return out
			}
		}
		return []rule.Stage{{Kind: rule.StageQuantified, Label: label, Negated: neg,
			Text: d.renderRefs(inner, by), Node: c, Pos: c.Pos}}
	case rule.OpOpaque:
		return []rule.Stage{{Kind: rule.StageOpaque, Label: prefix + inner.Text, Negated: neg, Text: inner.Text, Node: c, Pos: c.Pos}}
	}
	label := d.texts[c]
	if label == "" {
		label = prefix + d.texts[inner]
	}
	return []rule.Stage{{Kind: rule.StageQuantified, Label: label, Negated: neg,
		Text: d.renderRefs(inner, by), Node: c, Pos: c.Pos}}
}

// quantLabel is `1 of p`, `any of p` or `all of p` as written, keywords lower-cased.
func (d *docCtx) quantLabel(q *rule.Node) string {
	word := q.Quant
	if f := strings.Fields(d.texts[q]); len(f) > 0 {
		word = strings.ToLower(f[0])
	}
	return word + " of " + q.Name
}

// renderRefs renders every selection a node refers to, in order of first reference.
func (d *docCtx) renderRefs(n *rule.Node, by map[string]*selection) string {
	var parts []string
	seen := map[string]bool{}
	var walk func(*rule.Node)
	walk = func(n *rule.Node) {
		if n == nil {
			return
		}
		if n.Op == rule.OpRef {
			if !seen[n.Name] {
				seen[n.Name] = true
				parts = append(parts, d.render(by[n.Name]))
			}
			return
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(n)
	return strings.Join(parts, "\n")
}

// aggregation parses the legacy part after the pipe: `count(field) by a, b > n`,
// `sum|min|max|avg(field) by g op n`, or `near a and b and not c`.
func (p *condParser) aggregation(pipeOff int) (*rule.Aggregation, string) {
	text := strings.TrimSpace(p.src[pipeOff+1:])
	if i := strings.Index(text, " #"); i >= 0 {
		text = strings.TrimSpace(text[:i])
	}
	t := p.next()
	if t.kind != tIdent {
		p.errf(t.off, "sigma/aggregation/syntax", "expected an aggregation function after |, found %s", describe(t))
		return nil, text
	}
	fn := strings.ToLower(t.text)
	agg := &rule.Aggregation{Func: fn}
	switch fn {
	case "near":
		p.warnf(t.off, "sigma/aggregation/near", "near is a legacy correlation that no current Sigma tool implements")
		p.parseOr()
		if u := p.peek(); u.kind != tEOF {
			p.errf(u.off, "sigma/aggregation/syntax", "unexpected %s after the near expression", describe(u))
		}
		return agg, text
	case "count", "min", "max", "avg", "sum":
	default:
		p.errf(t.off, "sigma/aggregation/unknown", "unknown aggregation function %q (count, min, max, avg, sum, near)", t.text)
		return nil, text
	}
	if p.next().kind != tLParen {
		p.errf(t.off, "sigma/aggregation/syntax", "expected ( after %s", t.text)
		return nil, text
	}
	if u := p.peek(); u.kind == tIdent {
		agg.Field = u.text
		p.next()
	}
	if u := p.next(); u.kind != tRParen {
		p.errf(u.off, "sigma/aggregation/syntax", "expected ) in %s(...), found %s", t.text, describe(u))
		return nil, text
	}
	if p.isKeyword(p.peek(), "by") {
		p.keyword(p.next(), "by")
		for {
			u := p.next()
			if u.kind != tIdent {
				p.errf(u.off, "sigma/aggregation/syntax", "expected a field after by, found %s", describe(u))
				return nil, text
			}
			agg.GroupBy = append(agg.GroupBy, u.text)
			if p.peek().kind != tComma {
				break
			}
			p.next()
		}
	}
	op := p.next()
	if op.kind != tOp || op.text == "!" {
		p.errf(op.off, "sigma/aggregation/syntax", "expected a comparison (>, >=, <, <=, ==) after the aggregation, found %s", describe(op))
		return nil, text
	}
	agg.Op = op.text
	num := p.next()
	if _, err := strconv.ParseFloat(num.text, 64); num.kind != tIdent || err != nil {
		p.errf(num.off, "sigma/aggregation/syntax", "expected a number after %s, found %s", op.text, describe(num))
		return nil, text
	}
	agg.Value = num.text
	if u := p.peek(); u.kind != tEOF {
		p.errf(u.off, "sigma/aggregation/syntax", "unexpected %s after the aggregation", describe(u))
	}
	return agg, text
}
