// Package esql reads ES|QL queries (Elastic rules of language "esql") into ruledex's
// stages and predicates, as package kql does for Kusto pipelines.
//
// Reading choices, so pages and relations can be explained:
//
//   - One stage per command (kind pipeline, Op the command name in lower case, Text the
//     command as written); a WHERE stage carries its predicates as Node. Stage.Index and
//     Computed.Stage are 1-based positions in Query.Stages; a caller that puts stages
//     before them shifts both.
//   - Root is the AND of the WHERE filters before the first STATS (or INLINE STATS,
//     LOOKUP JOIN, or ENRICH without WITH, whose columns we cannot name): the rows
//     there are still events. Conjuncts that read a computed column stay in their stage
//     only.
//   - Computed columns: EVAL and STATS targets, DISSECT and GROK keys, ENRICH WITH
//     columns, and expressions compared inline (length(x) > 200 is a predicate on the
//     column "length(x)", recorded with its definition). Predicates on them never reach
//     Root, so they never pass for raw event fields.
//   - Aliases: an EVAL column that is a raw field or its case folding (x = f,
//     x = TO_LOWER(f)) and a RENAME target name that field, as package kql reads extend
//     aliases: a test on x is a test on f (case-insensitive after folding) and may reach
//     Root. They are still listed in Computed with their definition.
//   - Aggregation: set when a WHERE after STATS reads an aggregate (a threshold); the
//     STATS stage then has kind aggregation and Stage.Aggregation holds the first
//     comparison found. STATS ... BY with no such filter is grouping, not a threshold:
//     the rule stays a single-event filter (GroupBy still lists the keys).
//   - Case: ES|QL compares strings byte for byte, so ==, !=, IN, LIKE, RLIKE,
//     STARTS_WITH, ENDS_WITH and LOCATE are cased (rule.TCased); wrapping the field in
//     TO_LOWER or TO_UPPER makes the test case-insensitive (no TCased; regex flag i).
//   - LIKE patterns (* any run, ? one character, \ escape) become starts_with,
//     ends_with, match, eq or glob; RLIKE patterns are anchored (^(?:re)$), since ES|QL
//     matches the whole value and rule.Regex searches, and carry flag s (Lucene's .
//     matches any character, newlines included).
//   - Multi-valued fields: ES|QL operators return null on a multi-valued value, so the
//     row is dropped; comparisons therefore carry no rule.TElem. After MV_EXPAND f each
//     row holds one element, so later tests on f carry TElem and stay event-level.
//   - `@timestamp > now() - 7 day` is the query's time window (Timeframe), not a
//     predicate. KQL("...") and QSTR("...") are read with package kuery; MATCH(f, "q")
//     and f : "q" as the Kibana query f : "q".
//   - Whatever cannot be modeled (an unknown command, a syntax error) becomes an opaque
//     stage or OpOpaque node with a located warning; the rest is still read.
package esql

import (
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/ruledex/ruledex/rule"
)

// Query is one ES|QL query read into the IR.
type Query struct {
	Sources  []string        // FROM index patterns
	Root     *rule.Node      // event-level filter: the WHERE clauses before the first stats (nil if none)
	Stages   []rule.Stage    // one per command, in order; the caller numbers them
	Computed []rule.Computed // columns made by EVAL, STATS, DISSECT, GROK, RENAME
	GroupBy  []string        // STATS ... BY fields
	// Aggregation: rows after STATS are filtered (a threshold), so the rule is not a
	// single-event filter. A STATS ... BY without a later WHERE on its results is not.
	Aggregation bool
	// Timeframe is the look-back the query sets itself (`@timestamp > now() - 7 day`
	// gives "7 day"); such a test is not a predicate.
	Timeframe string
	Diags     []rule.Diagnostic
}

// Parse reads q; at is the position of q's first character in its file. Parse never
// panics; what it cannot model becomes an opaque stage or OpOpaque node with a warning.
func Parse(q string, at rule.Pos) *Query {
	r := &reader{src: q, at: at, computed: map[string]string{}, alias: map[string]operand{}, expanded: map[string]bool{}, q: &Query{}}
	r.run()
	return r.q
}

type reader struct {
	src      string
	at       rule.Pos
	q        *Query
	computed map[string]string  // column name → definition
	alias    map[string]operand // EVAL/RENAME columns that are a raw field, maybe case-folded
	expanded map[string]bool    // fields MV_EXPANDed so far
	// notEvents: a STATS or LOOKUP JOIN was read, so rows are no longer single events,
	// or an ENRICH without WITH added columns we cannot name; later filters stay out of
	// Root either way.
	notEvents  bool
	groupKeys  map[string]bool // group keys of the last STATS
	statsStage int             // index in Stages of the last STATS
	statsAggs  map[string]*ex  // aggregate columns of the last STATS → their expression
	root       []*rule.Node
	stage      int   // 1-based index of the stage being read
	lines      []int // line start offsets, built on first use
	conj       *ex   // the top-level conjunct of the WHERE being lowered
}

func (r *reader) pos(off int) rule.Pos {
	if off > len(r.src) {
		off = len(r.src)
	}
	if off < 0 {
		off = 0
	}
	ps := rule.Pos{File: r.at.File}
	if r.at.Line == 0 {
		return ps
	}
	if r.lines == nil {
		r.lines = []int{0}
		for i := 0; i < len(r.src); i++ {
			if r.src[i] == '\n' {
				r.lines = append(r.lines, i+1)
			}
		}
	}
	line := sort.SearchInts(r.lines, off+1) - 1 // the last line start <= off
	ps.Line = r.at.Line + line
	ps.Col = off - r.lines[line] + 1
	if line == 0 && r.at.Col > 0 {
		ps.Col = r.at.Col + off
	}
	return ps
}

func (r *reader) warn(off int, code, msg string) {
	r.q.Diags = append(r.q.Diags, rule.Diagnostic{Severity: rule.Warning, Code: "esql/" + code, Pos: r.pos(off), Message: msg})
}

func (r *reader) text(s, e int) string {
	if s < 0 {
		s = 0
	}
	if e > len(r.src) {
		e = len(r.src)
	}
	if s > e {
		return ""
	}
	return r.src[s:e]
}

// command is the tokens of one pipe segment (without the pipe and the EOF).
type command struct {
	name string // lower case; "inline stats" and "lookup join" are one name
	toks []tok  // arguments after the name, ending with an EOF token
	s, e int    // span of the whole command
}

func (r *reader) run() {
	toks := lex(r.src)
	var cmds []command
	start := 0
	for i, t := range toks {
		if t.kind == tPipe || t.kind == tEOF {
			if i > start {
				cmds = append(cmds, r.command(toks[start:i]))
			} else if t.kind == tPipe {
				r.warn(t.s, "syntax", "empty command before |")
			}
			start = i + 1
		}
	}
	if len(cmds) == 0 {
		return
	}
	// Hunting files sometimes keep a Markdown fence tag ("sql") before FROM.
	if c := cmds[0]; !knownCommands[c.name] {
		for j, t := range c.toks {
			if t.kind == tIdent && strings.EqualFold(t.val, "from") {
				r.warn(c.s, "prefix", "text before FROM ignored: "+strconv.Quote(r.text(c.s, t.s)))
				rest := append([]tok{}, c.toks[j:]...)
				cmds[0] = r.command(rest[:len(rest)-1])
				break
			}
		}
	}
	for _, c := range cmds {
		r.stage = len(r.q.Stages) + 1
		r.q.Stages = append(r.q.Stages, r.lowerCommand(c))
	}
	r.q.Root = join(rule.OpAnd, r.root)
}

var knownCommands = map[string]bool{
	"from": true, "row": true, "show": true, "ts": true, "where": true, "eval": true, "stats": true,
	"inline stats": true, "inlinestats": true, "keep": true, "drop": true, "rename": true,
	"dissect": true, "grok": true, "mv_expand": true, "sort": true, "limit": true, "enrich": true,
	"lookup join": true, "lookup": true, "completion": true, "sample": true, "fork": true,
	"change_point": true, "rerank": true, "metrics": true, "explain": true,
}

// command builds a command from its tokens (without a trailing EOF).
func (r *reader) command(toks []tok) command {
	c := command{s: toks[0].s, e: toks[len(toks)-1].e}
	name := strings.ToLower(toks[0].val)
	rest := toks[1:]
	if len(rest) > 0 && rest[0].kind == tIdent {
		two := name + " " + strings.ToLower(rest[0].val)
		if two == "inline stats" || two == "lookup join" {
			name, rest = two, rest[1:]
		}
	}
	c.name = name
	c.toks = append(append([]tok{}, rest...), tok{kind: tEOF, s: c.e, e: c.e})
	return c
}

func (r *reader) lowerCommand(c command) rule.Stage {
	st := rule.Stage{Index: r.stage, Kind: rule.StagePipeline, Label: c.name, Op: c.name, Text: r.text(c.s, c.e), Pos: r.pos(c.s)}
	argText := strings.TrimSpace(r.text(c.toks[0].s, c.e))
	switch c.name {
	case "from", "ts", "metrics":
		r.from(argText)
	case "where":
		r.where(c, &st)
	case "eval":
		r.assignments(c, "eval")
	case "stats", "inline stats", "inlinestats":
		r.stats(c)
		r.notEvents = true
	case "rename":
		r.rename(c)
	case "dissect", "grok":
		r.extract(c)
	case "mv_expand":
		if c.toks[0].kind == tIdent {
			r.expanded[c.toks[0].val] = true
		}
	case "enrich":
		r.enrich(c)
	case "lookup join", "lookup":
		// Columns of the lookup index join the rows; any later field may come from it.
		r.notEvents = true
	case "completion":
		if len(c.toks) > 2 && c.toks[0].kind == tIdent && c.toks[1].kind == tOp && c.toks[1].val == "=" {
			r.compute(c.toks[0].val, argText)
		}
	case "keep", "drop", "sort", "limit", "row", "show", "sample", "fork", "change_point", "rerank", "explain":
	default:
		st.Kind = rule.StageOpaque
		r.warn(c.s, "unknown-command", "command "+strconv.Quote(c.name)+" is not modeled")
	}
	return st
}

func (r *reader) from(arg string) {
	// Only ASCII bytes are folded, so offsets in lower are offsets in arg:
	// strings.ToLower (and strings.Map) change the length of some text (invalid UTF-8
	// becomes U+FFFD; a fuzzed "FROM \x91... METADATA 0" sliced past the end).
	b := []byte(arg)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	lower := string(b)
	if i := strings.Index(lower, " metadata "); i >= 0 {
		arg = arg[:i]
	} else if strings.HasSuffix(lower, " metadata") {
		arg = arg[:len(arg)-len(" metadata")]
	}
	for _, s := range strings.Split(arg, ",") {
		if s = strings.Trim(strings.TrimSpace(s), `"`); s != "" {
			r.q.Sources = append(r.q.Sources, s)
		}
	}
}

func (r *reader) compute(name, def string) {
	r.computed[name] = def
	delete(r.alias, name)
	r.q.Computed = append(r.q.Computed, rule.Computed{Name: name, Definition: def, Stage: r.stage})
}

// aliasOf records name as another name of a raw field (EVAL x = f, x = to_lower(f),
// RENAME f AS x): predicates on it are predicates on the field, case-insensitive after
// case folding, as package kql reads extend aliases. The column is still listed in
// Computed with its definition, for display.
func (r *reader) aliasOf(name, def string, x *ex) bool {
	o, ok := r.fieldOf(x)
	if !ok {
		return false
	}
	if _, computed := r.computed[o.field]; computed || o.field == name {
		return false
	}
	delete(r.computed, name)
	r.alias[name] = o
	r.q.Computed = append(r.q.Computed, rule.Computed{Name: name, Definition: def, Stage: r.stage})
	return true
}

// assignments reads `name = expr, expr, ...` (EVAL); an unnamed expression is a
// column named by its text.
func (r *reader) assignments(c command, what string) {
	p := &exParser{toks: c.toks}
	for p.peek().kind != tEOF {
		before := p.i
		name := ""
		if p.peek().kind == tIdent && p.toks[p.i+1].kind == tOp && p.toks[p.i+1].val == "=" {
			name = p.next().val
			p.next()
		}
		x := p.or()
		if name == "" {
			name = r.text(x.st, x.en)
		}
		if def := r.text(x.st, x.en); name == def || !r.aliasOf(name, def, x) {
			r.compute(name, def)
		}
		if p.isOp(",") {
			p.next()
		} else if p.peek().kind != tEOF {
			p.fail("expected , in " + what)
			break
		}
		if p.i == before {
			break
		}
	}
	if p.err != "" {
		r.warn(p.errAt, "syntax", what+": "+p.err)
	}
}

// stats reads `[name =] agg [WHERE cond], ... [BY key, name = expr, ...]`.
func (r *reader) stats(c command) {
	p := &exParser{toks: c.toks}
	r.groupKeys = map[string]bool{}
	r.statsAggs = map[string]*ex{}
	r.statsStage = r.stage - 1
	inBy := false
	var keys []string
	for p.peek().kind != tEOF {
		before := p.i
		if p.isKw("by") {
			p.next()
			inBy = true
			continue
		}
		name := ""
		if p.peek().kind == tIdent && p.toks[p.i+1].kind == tOp && p.toks[p.i+1].val == "=" {
			name = p.next().val
			p.next()
		}
		x := p.or()
		def := r.text(x.st, x.en)
		if p.isKw("where") {
			p.next()
			w := p.or()
			def = r.text(x.st, w.en)
		}
		if inBy {
			if name == "" && x.k == xIdent {
				name = x.s
			} else {
				if name == "" {
					name = def
				}
				r.compute(name, def)
			}
			r.groupKeys[name] = true
			keys = append(keys, name)
		} else {
			if name == "" {
				name = def
			}
			r.compute(name, def)
			r.statsAggs[name] = x
		}
		if p.isOp(",") {
			p.next()
		} else if p.peek().kind != tEOF && !p.isKw("by") {
			p.fail("expected , or BY in stats")
			break
		}
		if p.i == before {
			break
		}
	}
	if p.err != "" {
		r.warn(p.errAt, "syntax", "stats: "+p.err)
	}
	if r.q.GroupBy == nil {
		r.q.GroupBy = keys
	}
}

func (r *reader) rename(c command) {
	p := &exParser{toks: c.toks}
	for p.peek().kind == tIdent {
		a := p.next()
		switch {
		case p.isKw("as"):
			p.next()
			if b := p.next(); b.kind == tIdent && !r.aliasOf(b.val, "rename "+a.val, &ex{k: xIdent, s: a.val}) {
				r.compute(b.val, "rename "+a.val)
			}
		case p.isOp("="):
			p.next()
			if b := p.next(); b.kind == tIdent && !r.aliasOf(a.val, "rename "+b.val, &ex{k: xIdent, s: b.val}) {
				r.compute(a.val, "rename "+b.val)
			}
		default:
			r.warn(a.s, "syntax", "rename: AS expected")
			return
		}
		if !p.isOp(",") {
			return
		}
		p.next()
	}
}

var (
	dissectKey = regexp.MustCompile(`%\{([^}]*)\}`)
	grokKey    = regexp.MustCompile(`%\{[A-Za-z0-9_]+:([^}:]+)(?::[a-z]+)?\}|\(\?<([A-Za-z0-9_.@]+)>`)
)

// extract records the columns a DISSECT or GROK pattern creates.
func (r *reader) extract(c command) {
	if len(c.toks) < 3 || c.toks[1].kind != tString {
		r.warn(c.s, "syntax", c.name+": field and pattern string expected")
		return
	}
	def := c.name + " " + r.text(c.toks[0].s, c.toks[1].e)
	pat := c.toks[1].val
	if c.name == "dissect" {
		for _, m := range dissectKey.FindAllStringSubmatch(pat, -1) {
			k := strings.TrimLeft(m[1], "+?&*")
			k = strings.TrimSuffix(k, "->")
			if i := strings.IndexByte(k, '/'); i >= 0 {
				k = k[:i]
			}
			if k != "" && !strings.HasPrefix(m[1], "?") {
				r.compute(k, def)
			}
		}
		return
	}
	for _, m := range grokKey.FindAllStringSubmatch(pat, -1) {
		k := m[1]
		if k == "" {
			k = m[2]
		}
		r.compute(k, def)
	}
}

func (r *reader) enrich(c command) {
	for i, t := range c.toks {
		if t.kind == tIdent && strings.EqualFold(t.val, "with") {
			p := &exParser{toks: c.toks[i+1:]}
			for p.peek().kind == tIdent {
				a := p.next()
				name, src := a.val, a.val
				if p.isOp("=") {
					p.next()
					src = p.next().val
				}
				r.compute(name, "enrich "+src)
				if !p.isOp(",") {
					break
				}
				p.next()
			}
			return
		}
	}
	// Without WITH, every enrich field of the policy is added and we cannot name them:
	// a later filter may read one, so none reaches Root.
	r.notEvents = true
}

// where lowers a WHERE: the stage gets the whole condition; Root gets the conjuncts
// that test raw event fields, while rows are still events.
func (r *reader) where(c command, st *rule.Stage) {
	p := &exParser{toks: c.toks}
	x := p.or()
	if p.err == "" && p.peek().kind != tEOF {
		p.fail("unexpected " + describe(p.peek()))
	}
	if p.err != "" {
		n := &rule.Node{Op: rule.OpOpaque, Text: strings.TrimSpace(r.text(c.toks[0].s, c.e)), Pos: r.pos(c.toks[0].s)}
		r.warn(p.errAt, "syntax", "where: "+p.err)
		st.Node = n
		if !r.notEvents {
			r.root = append(r.root, n)
		}
		return
	}
	if r.notEvents && r.statsAggs != nil && r.readsAggregate(x) {
		r.q.Aggregation = true
		s := &r.q.Stages[r.statsStage]
		if s.Aggregation == nil {
			s.Kind = rule.StageAggregation
			s.Aggregation = r.threshold(x)
		}
	}
	var parts []*rule.Node
	for _, cj := range conjuncts(x) {
		r.conj = cj
		n := r.pred(cj)
		r.conj = nil
		if n == nil {
			continue
		}
		parts = append(parts, n)
		if !r.notEvents && !r.readsComputed(cj) {
			r.root = append(r.root, n)
		}
	}
	st.Node = join(rule.OpAnd, parts)
	if u := unparen(x); u.k == xNot {
		st.Negated = true
		st.Label = "where not"
	}
}

func conjuncts(x *ex) []*ex {
	x = unparen(x)
	if x.k == xBinary && x.op == "and" {
		return append(conjuncts(x.kids[0]), conjuncts(x.kids[1])...)
	}
	return []*ex{x}
}

// readsComputed reports whether x reads a computed column or is itself an expression
// test that pred turned into one.
func (r *reader) readsComputed(x *ex) bool {
	found := false
	idents(x, func(n string) {
		if _, ok := r.computed[n]; ok {
			found = true
		}
	})
	if found {
		return true
	}
	// Inline expression columns (length(x) > 5) were recorded by pred with their text.
	var walk func(*ex)
	walk = func(y *ex) {
		if y == nil || found {
			return
		}
		if _, ok := r.computed[r.text(y.st, y.en)]; ok && y.k != xIdent {
			found = true
			return
		}
		for _, k := range y.kids {
			walk(k)
		}
	}
	walk(x)
	return found
}

// readsAggregate reports whether a post-STATS filter reads anything but group keys:
// an aggregate column by name, or by its text when STATS left it unnamed (count(*)).
func (r *reader) readsAggregate(x *ex) bool {
	found := false
	var walk func(*ex)
	walk = func(y *ex) {
		if y == nil || found {
			return
		}
		if _, ok := r.statsAggs[r.text(y.st, y.en)]; ok {
			found = true
			return
		}
		if y.k == xIdent && !r.groupKeys[y.s] {
			found = true
			return
		}
		for _, k := range y.kids {
			walk(k)
		}
	}
	walk(x)
	return found
}

// threshold finds the first `column op literal` in a post-STATS filter.
func (r *reader) threshold(x *ex) *rule.Aggregation {
	a := &rule.Aggregation{GroupBy: r.q.GroupBy}
	var find func(*ex) bool
	find = func(y *ex) bool {
		y = unparen(y)
		if y.k == xBinary && cmpOps[y.op] && y.op != ":" {
			l, rt := unparen(y.kids[0]), unparen(y.kids[1])
			if (l.k == xIdent || l.k == xCall) && isLiteral(rt) {
				name := l.s
				if l.k == xCall {
					name = r.text(l.st, l.en)
				}
				a.Op, a.Value = y.op, literal(rt).S
				if agg, ok := r.statsAggs[name]; ok && agg.k == xCall {
					a.Func = agg.op
					if len(agg.kids) > 0 {
						a.Field = r.text(agg.kids[0].st, agg.kids[0].en)
					}
				} else {
					a.Func = name
				}
				return true
			}
		}
		for _, k := range y.kids {
			if find(k) {
				return true
			}
		}
		return false
	}
	if !find(x) {
		a.Func = "filter"
	}
	return a
}

// join makes an AND/OR node, flattening nested ones of the same op.
func join(op rule.Op, kids []*rule.Node) *rule.Node {
	var flat []*rule.Node
	for _, k := range kids {
		if k == nil {
			continue
		}
		if k.Op == op {
			flat = append(flat, k.Children...)
			continue
		}
		flat = append(flat, k)
	}
	switch len(flat) {
	case 0:
		return nil
	case 1:
		return flat[0]
	}
	return &rule.Node{Op: op, Children: flat, Pos: flat[0].Pos}
}
