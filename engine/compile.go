package engine

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ruledex/ruledex/fieldmap"
	"github.com/ruledex/ruledex/rule"
)

type compiler struct {
	m       *Matcher
	lits    map[litKey]int32
	litKeys []litKey
	rename  map[string]string
	resolve func(string) (string, bool)
	// placeholders are the values of %name% for the expand modifier.
	placeholders map[string][]string
	// tests are the value tests of predicates compiled ahead (precompileTests); a
	// predicate not in it is compiled when met.
	tests map[*rule.Pred][]valueTests
	// nodes and preds are the unused rest of the current blocks (newNode, newPred).
	nodes []cnode
	preds []cpred
}

// slabSize is how many nodes (predicates) newNode (newPred) allocates at once.
const slabSize = 256

// newNode and newPred place the condition trees in few large blocks, in compile order:
// evaluation walks thousands of trees per second, and nodes next to each other share
// cache lines instead of sitting between the maps and strings compiled with them.
func (c *compiler) newNode(n cnode) *cnode { return slabNew(&c.nodes, n) }

func (c *compiler) newPred(cp cpred) *cpred { return slabNew(&c.preds, cp) }

// slabNew stores v in the next free element of *slab, a fresh slab of slabSize when
// it is used up.
func slabNew[T any](slab *[]T, v T) *T {
	if len(*slab) == 0 {
		*slab = make([]T, slabSize)
	}
	p := &(*slab)[0]
	*p = v
	*slab = (*slab)[1:]
	return p
}

// valueTests is compileTests' result for one value of a predicate.
type valueTests struct {
	ts  []vtest
	err error
}

// precompileTests compiles the value tests of every predicate of rules (the bulk of
// Compile: globs, regexes, encodings) on all cores. A predicate's tests depend on the
// predicate alone, so each rule is compiled apart and the result is the same in any
// order; the routes of one rule share them. Compile reads the map in rule order, so the
// Matcher does not depend on the schedule.
func precompileTests(rules []*rule.Rule, placeholders map[string][]string) map[*rule.Pred][]valueTests {
	per := make([]map[*rule.Pred][]valueTests, len(rules))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range max(1, min(runtime.GOMAXPROCS(0), len(rules)/64)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(rules) {
					return
				}
				r := rules[i]
				if r == nil || r.Root == nil || r.Correlation != nil {
					continue
				}
				m := map[*rule.Pred][]valueTests{}
				walkPreds(r.Root, 0, func(p *rule.Pred) {
					if _, done := m[p]; done || !valueKinds[p.Kind] {
						return
					}
					vt := make([]valueTests, len(p.Values))
					for j, v := range p.Values {
						vt[j].ts, vt[j].err = compileTests(p, v, placeholders)
					}
					m[p] = vt
				})
				per[i] = m
			}
		}()
	}
	wg.Wait()
	out := map[*rule.Pred][]valueTests{}
	for _, m := range per {
		for p, vt := range m {
			out[p] = vt
		}
	}
	return out
}

// valueKinds are the predicate kinds whose values pred compiles with compileTests.
var valueKinds = map[rule.Kind]bool{
	rule.Eq: true, rule.Ne: true, rule.Match: true, rule.StartsW: true, rule.EndsW: true,
	rule.Glob: true, rule.Regex: true, rule.CIDR: true, rule.In: true, rule.Gt: true,
	rule.Ge: true, rule.Lt: true, rule.Le: true, rule.Keyword: true,
}

func walkPreds(n *rule.Node, depth int, f func(*rule.Pred)) {
	if n == nil || depth > maxDepth {
		return
	}
	if n.Op == rule.OpPred && n.Pred != nil {
		f(n.Pred)
	}
	for _, k := range n.Children {
		walkPreds(k, depth+1, f)
	}
}

// litKey is a required literal: folded text that must occur in the folded value of a
// field slot (slotAll: in any value).
// litUse says a hit of a literal makes variant v a candidate (see bucket.uses).
type litUse struct {
	v int32
	// rest indexes the bucket's rest: the variant's other required sets, -1 when it
	// has none (the same for every literal of the variant in the bucket).
	rest int32
}

// varLit is one literal of one of a variant's required sets.
type varLit struct {
	lit int32
	bit uint8
}

type litKey struct {
	slot int32
	s    string
}

// slot interns a field name; lookups try the name as written, then folded.
func (c *compiler) slot(name string) int32 {
	if s, ok := c.m.slots[name]; ok {
		return s
	}
	f := fold(name)
	s, ok := c.m.slots[f]
	if !ok {
		s = int32(c.m.nslots)
		c.m.nslots++
		c.m.slots[f] = s
	}
	c.m.slots[name] = s
	return s
}

func (c *compiler) literal(k litKey) int32 {
	if id, ok := c.lits[k]; ok {
		return id
	}
	id := int32(len(c.litKeys))
	c.lits[k] = id
	c.litKeys = append(c.litKeys, k)
	return id
}

// field resolves a rule field for the current route.
func (c *compiler) field(name string) string {
	if to, ok := c.rename[name]; ok {
		return to
	}
	for from, to := range c.rename {
		if strings.EqualFold(from, name) {
			return to
		}
	}
	return name
}

func (c *compiler) compileVariant(r *rule.Rule, ri int32, rt Route) (*variant, [][]litKey, error) {
	c.rename, c.resolve = rt.Rename, rt.Resolve
	v := &variant{rule: ri, chans: rt.Channels, eids: rt.EventIDs, via: rt.Via}
	// ECS/UDM envelope tests (event.type == "start") are what the route already
	// selects; no Windows event carries them.
	root, err := c.node(fieldmap.ScopeRoot(r), v, false, 0)
	if err != nil {
		return nil, nil, err
	}
	if len(rt.Where) > 0 {
		c.resolve = nil // Where names the event's own fields
		and := c.newNode(cnode{op: opAnd})
		for f, val := range rt.Where {
			p := &rule.Pred{Field: f, Kind: rule.Eq, Values: []rule.Value{{S: val}}}
			cp, err := c.pred(p)
			if err != nil {
				return nil, nil, err
			}
			and.kids = append(and.kids, c.newNode(cnode{op: opPred, p: cp}))
		}
		and.kids = append(and.kids, root)
		root = and
	}
	v.root = root
	return v, pickSets(requiredSets(root)), nil
}

const maxDepth = 200

func (c *compiler) node(n *rule.Node, v *variant, neg bool, depth int) (*cnode, error) {
	if n == nil {
		return nil, fmt.Errorf("empty node in condition tree")
	}
	if depth > maxDepth {
		return nil, fmt.Errorf("condition nested deeper than %d", maxDepth)
	}
	kids := func(ng bool) ([]*cnode, error) {
		out := make([]*cnode, 0, len(n.Children))
		for _, ch := range n.Children {
			k, err := c.node(ch, v, ng, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, k)
		}
		return out, nil
	}
	switch n.Op {
	case rule.OpAnd, rule.OpOr:
		ks, err := kids(neg)
		if err != nil {
			return nil, err
		}
		if len(ks) == 1 {
			return ks[0], nil
		}
		return c.newNode(cnode{op: nodeOpOf(n.Op), kids: ks}), nil
	case rule.OpNot:
		if len(n.Children) != 1 {
			return nil, fmt.Errorf("not with %d operands", len(n.Children))
		}
		ks, err := kids(!neg)
		if err != nil {
			return nil, err
		}
		return c.newNode(cnode{op: opNot, kids: ks}), nil
	case rule.OpRef:
		if len(n.Children) == 0 {
			return nil, fmt.Errorf("selection %q has no body", n.Name)
		}
		ks, err := kids(neg)
		if err != nil {
			return nil, err
		}
		if len(ks) == 1 {
			return ks[0], nil
		}
		return c.newNode(cnode{op: opAnd, kids: ks}), nil
	case rule.OpQuant:
		ks, err := kids(neg)
		if err != nil {
			return nil, err
		}
		switch n.Quant {
		case "all":
			return c.newNode(cnode{op: opAnd, kids: ks}), nil
		case "1", "any", "":
			return c.newNode(cnode{op: opOr, kids: ks}), nil
		}
		return nil, fmt.Errorf("quantifier %q of %s is not supported", n.Quant, n.Name)
	case rule.OpTrue:
		return c.newNode(cnode{op: opTrue}), nil
	case rule.OpPred:
		if n.Pred == nil {
			return nil, fmt.Errorf("predicate node without predicate")
		}
		p, err := c.pred(n.Pred)
		if err != nil {
			return nil, err
		}
		if !neg {
			v.preds = append(v.preds, p)
		}
		return c.newNode(cnode{op: opPred, p: p}), nil
	case rule.OpOpaque:
		return nil, fmt.Errorf("condition part the parser could not model: %q", n.Text)
	}
	return nil, fmt.Errorf("unknown condition node %q", n.Op)
}

// pred compiles one predicate.
func (c *compiler) pred(p *rule.Pred) (*cpred, error) {
	cp := c.newPred(cpred{src: p, kind: p.Kind, all: p.All, field: slotAll, ref: -1, alt: -1, id: int32(c.m.npreds)})
	c.m.npreds++
	where := p.Native
	if where == "" {
		where = p.Field
	}
	fail := func(err error) (*cpred, error) {
		if p.Pos.Line > 0 {
			return nil, fmt.Errorf("%s:%d:%d: %s: %w", p.Pos.File, p.Pos.Line, p.Pos.Col, where, err)
		}
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if p.Kind != rule.Keyword {
		if p.Field == "" {
			return fail(fmt.Errorf("%s predicate without a field", p.Kind))
		}
		cp.field = c.slot(c.field(p.Field))
		if c.resolve != nil {
			name, nameOnly := c.resolve(p.Field)
			cp.field, cp.nameOnly = c.slot(name), nameOnly
			if !strings.EqualFold(name, p.Field) {
				cp.alt = c.slot(p.Field)
			}
		}
	}
	switch p.Kind {
	case rule.IsNull, rule.IsNotNull:
		cp.exists, cp.null = true, p.Kind == rule.IsNull
		return cp, nil
	case rule.FieldRef:
		if len(p.Values) != 1 {
			return fail(fmt.Errorf("fieldref needs exactly one field name, got %d", len(p.Values)))
		}
		cp.ref = c.slot(c.field(p.Values[0].S))
		cp.refCase = p.Cased()
		for _, t := range p.Transforms {
			switch t {
			case "contains":
				cp.refPos = tContains
			case "startswith":
				cp.refPos = tPrefix
			case "endswith":
				cp.refPos = tSuffix
			case rule.TCased:
			default:
				return fail(fmt.Errorf("modifier %q with fieldref is not supported", t))
			}
		}
		return cp, nil
	case rule.Ne:
		cp.neg = true
	case rule.Eq, rule.Match, rule.StartsW, rule.EndsW, rule.Glob, rule.Regex, rule.CIDR,
		rule.In, rule.Gt, rule.Ge, rule.Lt, rule.Le, rule.Keyword:
	case rule.Term, rule.TermPrefix, rule.TermSuffix:
		for _, v := range p.Values {
			if v.Wild {
				return fail(fmt.Errorf("%s with a wildcard value %q", p.Kind, v.S))
			}
		}
	default:
		return fail(fmt.Errorf("predicate kind %q is not supported", p.Kind))
	}
	if len(p.Values) == 0 {
		return fail(fmt.Errorf("%s predicate without values", p.Kind))
	}
	if p.Has(rule.TElem) {
		cp.elem = true
		if argsFields[strings.ToLower(p.Field)] {
			for _, f := range commandLineFields {
				cp.argsFrom = append(cp.argsFrom, c.slot(c.field(f)))
			}
		}
	}
	pre, ok := c.tests[p]
	all := make([][]vtest, 0, len(p.Values))
	n := 0
	for i, val := range p.Values {
		var ts []vtest
		var err error
		if ok {
			ts, err = pre[i].ts, pre[i].err
		} else {
			ts, err = compileTests(p, val, c.placeholders)
		}
		if err != nil {
			return fail(err)
		}
		for _, t := range ts {
			if t.kind == tNull {
				cp.hasNull = true
			}
		}
		all = append(all, ts)
		n += len(ts)
	}
	// The groups are consecutive parts of one list (flat): without all, any alternative
	// of any value decides, and evalValue walks the list.
	cp.flat = make([]vtest, 0, n)
	cp.groups = make([][]vtest, len(all))
	for i, ts := range all {
		lo := len(cp.flat)
		cp.flat = append(cp.flat, ts...)
		cp.groups[i] = cp.flat[lo:len(cp.flat):len(cp.flat)]
	}
	return cp, nil
}

// atoms returns the literals one of which must occur for the predicate to hold, or nil
// when it can hold without any (negation, null, numbers, regexes, ...).
func (p *cpred) atoms() []litKey {
	if p.exists || p.ref >= 0 || p.neg || p.hasNull || p.argsFrom != nil || p.elem && p.all {
		return nil
	}
	groupAtoms := func(g []vtest) []litKey {
		var out []litKey
		for i := range g {
			t := &g[i]
			var s string
			switch t.kind {
			case tEq, tContains, tPrefix, tSuffix, tTerm, tTermPrefix, tTermSuffix:
				s = t.s
			case tGlob:
				s = t.g.longestLiteral()
			case tRegex:
				lits := regexAtoms(t.expr)
				if lits == nil {
					return nil
				}
				for _, l := range lits {
					out = append(out, litKey{p.field, l})
					if p.alt >= 0 {
						out = append(out, litKey{p.alt, l})
					}
				}
				continue
			}
			if s == "" {
				return nil
			}
			out = append(out, litKey{p.field, fold(s)})
			if p.alt >= 0 {
				// Either field may carry the value: a literal on either satisfies the set.
				out = append(out, litKey{p.alt, fold(s)})
			}
		}
		return out
	}
	if p.all {
		var best []litKey
		for _, g := range p.groups {
			if a := groupAtoms(g); a != nil && better(a, best) {
				best = a
			}
		}
		return best
	}
	var out []litKey
	for _, g := range p.groups {
		a := groupAtoms(g)
		if a == nil {
			return nil
		}
		out = append(out, a...)
	}
	return out
}

// requiredSets returns necessary literal sets of a compiled tree, read as a
// conjunction of disjunctions: for the node to hold, at least one literal of every set
// must occur. An empty result means the node can hold without any literal, so the rule
// must always run.
func requiredSets(n *cnode) [][]litKey {
	switch n.op {
	case opPred:
		if a := n.p.atoms(); a != nil {
			return [][]litKey{a}
		}
	case opAnd:
		var out [][]litKey
		for _, k := range n.kids {
			out = append(out, requiredSets(k)...)
		}
		return out
	case opOr:
		// When an OR holds, some kid holds, and then every set of that kid has a hit: the
		// union of one set per kid is necessary, for every choice. The choices are
		// combined kid by kid, keeping the best few, so that `(Image: A and CommandLine: B)
		// or CommandLine: C` waits for {A, C} and {B, C}, not for the likelier of them only.
		out := [][]litKey{{}}
		for _, k := range n.kids {
			sets := pickSets(requiredSets(k))
			if len(sets) == 0 {
				return nil
			}
			next := make([][]litKey, 0, len(out)*len(sets))
			for _, u := range out {
				for _, s := range sets {
					next = append(next, append(u[:len(u):len(u)], s...))
				}
			}
			out = pickSets(next)
		}
		return out
	}
	return nil
}

// maxSets bounds the sets a variant waits for (one bit each in the per-event mask).
const maxSets = 3

// pickSets keeps the most selective sets: requiring two or three literals from
// different conjuncts (Image and CommandLine) leaves far fewer candidates than one.
func pickSets(sets [][]litKey) [][]litKey {
	sort.SliceStable(sets, func(i, j int) bool { return better(sets[i], sets[j]) })
	if len(sets) > maxSets {
		sets = sets[:maxSets]
	}
	return sets
}

// better prefers the set whose shortest literal is longest (short literals such as
// ".exe" occur in most events), then the smaller set.
func better(a, b []litKey) bool {
	if b == nil {
		return true
	}
	ma, mb := minLen(a), minLen(b)
	if ma != mb {
		return ma > mb
	}
	return len(a) < len(b)
}

func minLen(a []litKey) int {
	m := 1 << 30
	for _, k := range a {
		if len(k.s) < m {
			m = len(k.s)
		}
	}
	return m
}
