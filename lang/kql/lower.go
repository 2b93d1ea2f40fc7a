package kql

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"

	"github.com/ruledex/ruledex/rule"
)

// query is one KQL query of a file: its own let statements and its tabular
// statements (the last one is the main pipeline). Start/End are offsets in the text.
type query struct {
	lets       []*Let
	pipes      []*Pipeline
	start, end int // first and last statement
}

// splitQueries groups statements into queries. With split, every tabular statement
// ends a query (files that hold several queries); otherwise all statements form one.
func splitQueries(stmts []*Stmt, split bool) []*query {
	var out []*query
	cur := &query{start: -1}
	add := func(s *Stmt) {
		if cur.start < 0 {
			cur.start = s.Start
		}
		cur.end = s.End
	}
	for _, s := range stmts {
		switch {
		case s.Let != nil:
			add(s)
			cur.lets = append(cur.lets, s.Let)
		case s.Pipe != nil:
			add(s)
			cur.pipes = append(cur.pipes, s.Pipe)
			if split {
				out = append(out, cur)
				cur = &query{start: -1}
			}
		default:
			add(s)
		}
	}
	if cur.start >= 0 {
		out = append(out, cur)
	}
	return out
}

// posMap maps a line/column of the parsed text to the file.
type posMap func(line, col int) rule.Pos

// lowerer turns one query into IR. env holds every let seen so far in the file, so a
// query may use a list defined by an earlier one.
type lowerer struct {
	src   string
	env   map[string]*Let
	pos   posMap
	file  string
	diags []rule.Diagnostic
	alias map[string]aliasInfo // extend/project-rename aliases of the pipeline being read
	// computed names the columns the pipeline being read derives (extend x = f(...),
	// parse, summarize, mv-expand), mapped to their definition.
	computed map[string]string
	pending  []rule.Computed // columns computed by the let or query being read, stage not yet known
	letStage map[string]int  // stage index of each tabular let
	time     []string        // time-window expressions seen (ago(7d))
	depth    int
	search   bool // lowering a search predicate: bare strings are keywords
}

type aliasInfo struct {
	field string
	ci    bool
}

func (lw *lowerer) text(s Span) string {
	if s.Start < 0 || s.End > len(lw.src) || s.Start > s.End {
		return ""
	}
	return lw.src[s.Start:s.End]
}

func (lw *lowerer) at(s Span) rule.Pos { return lw.pos(s.Line, s.Col) }

func (lw *lowerer) warn(s Span, code, msg string) {
	lw.diags = append(lw.diags, rule.Diagnostic{Severity: rule.Warning, Code: code, Pos: lw.at(s), Message: msg})
}

// lowered is what a query contributes to a rule.
type lowered struct {
	stages    []rule.Stage
	root      *rule.Node
	cond      string
	params    []rule.Param
	tables    []string
	outputs   []string
	groupBy   []string
	timeframe string
	computed  []rule.Computed
}

// aggregating operators end the event-level part of a pipeline: predicates after
// them test aggregated rows, not events, so they stay out of Root.
var aggregating = map[string]bool{
	"summarize": true, "make-series": true, "count": true, "top-nested": true, "join": true,
	"lookup": true, "union": true, "evaluate": true, "fork": true, "facet": true, "distinct": true,
	"top-hitters": true, "as": true, "invoke": true, "mv-apply": true, "scan": true,
}

func (lw *lowerer) lower(q *query) lowered {
	var out lowered
	for _, l := range q.lets {
		lw.env[l.Name] = l
		// A function body's own lets are what its statements read: without them a
		// body's `logonFail | union logonSuccess` would name two tables that do not exist.
		for _, b := range l.Body {
			if _, taken := lw.env[b.Name]; !taken {
				lw.env[b.Name] = b
			}
		}
	}
	// Stage 1: parameters (scalar and list lets), as one stage.
	var ptext []string
	for _, l := range q.lets {
		if l.Kind == LetScalar || l.Kind == LetList {
			ptext = append(ptext, lw.text(l.Span)+";")
			val := ""
			if l.Value != nil {
				val = lw.text(l.Value.span())
			}
			out.params = append(out.params, rule.Param{Name: l.Name, Value: val, Pos: lw.at(l.Span)})
		}
	}
	idx := 1
	addStage := func(s rule.Stage) {
		s.Index = idx
		idx++
		out.stages = append(out.stages, s)
	}
	if len(ptext) > 0 {
		addStage(rule.Stage{Kind: rule.StageParameter, Label: "let", Op: "let", Text: strings.Join(ptext, "\n"), Pos: out.params[0].Pos})
	}
	lw.letStage = map[string]int{}
	for _, l := range q.lets {
		if l.Kind != LetTabular && l.Kind != LetFunc {
			continue
		}
		lw.pending = nil
		lw.alias = map[string]aliasInfo{}
		lw.computed = map[string]string{}
		var node *rule.Node
		st := rule.Stage{Kind: rule.StagePipeline, Label: "let " + l.Name, Op: "let", Text: lw.text(l.Span) + ";", Pos: lw.at(l.Span)}
		if l.Pipe != nil {
			node = andOf(lw.pipelinePreds(l.Pipe))
			// A let that joins or aggregates gives the rule that shape: the stage names
			// the operator, so the rule is never taken for a plain event filter.
			lw.shapeLet(&st, l.Pipe)
		}
		st.Node = node
		lw.letStage[l.Name] = idx
		out.computed = appendComputed(out.computed, lw.pending, idx)
		lw.pending = nil
		addStage(st)
	}
	if len(q.pipes) == 0 {
		out.tables = lw.tables(q)
		return out
	}
	for _, p := range q.pipes[:len(q.pipes)-1] {
		lw.alias = map[string]aliasInfo{}
		lw.computed = map[string]string{}
		lw.pending = nil
		node := andOf(lw.pipelinePreds(p))
		out.computed = appendComputed(out.computed, lw.pending, idx)
		lw.pending = nil
		addStage(rule.Stage{Kind: rule.StagePipeline, Label: "query", Op: "query", Text: lw.text(p.Span), Node: node, Pos: lw.at(p.Span)})
	}
	main := q.pipes[len(q.pipes)-1]
	lw.alias = map[string]aliasInfo{}
	lw.computed = map[string]string{}
	var root []*rule.Node
	// A main pipeline reading a tabular let inherits that let's event filters.
	root = append(root, lw.inheritedPreds(main.Source, 0)...)
	src := main.Source
	if src.Kind != "none" {
		st := rule.Stage{Kind: rule.StagePipeline, Label: "source", Op: "source", Text: lw.text(src.Span), Pos: lw.at(src.Span)}
		if src.Kind != "expr" {
			st.Label, st.Op = src.Kind, src.Kind
		}
		st.Node = andOf(lw.sourcePreds(src))
		if st.Node != nil {
			root = append(root, st.Node)
		}
		addStage(st)
	}
	var conds []string
	// A main pipeline that reads an aggregating or joining let filters its rows, not events.
	eventLevel := !lw.aggregatingSource(main.Source, 0)
	groupPos := -1 // position in out.stages of the summarize later filters test, if any
	var byCols map[string]bool
	for i := 0; i < len(main.Ops); i++ {
		op := main.Ops[i]
		text := lw.text(op.Span)
		st := rule.Stage{Kind: rule.StagePipeline, Label: op.Name, Op: op.Name, Text: text, Pos: lw.at(op.Span)}
		var defs []rule.Computed
		switch op.Name {
		case "where", "filter", "search":
			conds = append(conds, text)
			if op.Pred != nil {
				lw.search = op.Name == "search"
				st.Node = lw.pred(op.Pred)
				lw.search = false
				if isNegation(op.Pred) {
					st.Negated = true
					st.Label = op.Name + " not"
				}
				switch {
				case st.Node == nil:
				case eventLevel:
					root = append(root, lw.eventPart(st.Node, idx)...)
				case groupPos >= 0 && lw.onlyReads(st.Node, byCols):
					// A filter on the group-by columns tests the events' own values:
					// a group passes exactly when its key does.
					root = append(root, st.Node)
				case groupPos >= 0:
					lw.threshold(&out.stages[groupPos], op)
				}
			}
		case "join", "lookup", "union":
			var sub []*rule.Node
			for _, o := range op.Operands {
				sub = append(sub, lw.joinedPreds(o, main.Source)...)
			}
			st.Node = andOf(sub)
		case "extend", "project", "project-rename":
			lw.recordAliases(op)
			defs = lw.derived(op)
		case "parse", "parse-where", "parse-kv", "mv-expand", "mv-apply", "evaluate", "make-series", "top-nested":
			defs = lw.derived(op)
		case "summarize":
			st.Aggregation = lw.aggregation(op)
			defs = lw.derived(op)
			// A summarize followed by a filter on its aggregates or a row limit
			// thresholds its groups: an aggregation (threshold marks it when one comes).
			// Without one it only groups: every event that passes the filters before it
			// is in some group, so the rule stays an event filter and the stage stays a
			// pipeline stage that carries its grouping.
			byCols = lw.groupColumns(op)
			out.groupBy = st.Aggregation.GroupBy
		default:
			if thresholding[op.Name] && groupPos >= 0 {
				lw.threshold(&out.stages[groupPos], op)
			}
		}
		if aggregating[op.Name] {
			eventLevel = false
		}
		// Consecutive operators of the same non-filtering kind read as one step.
		if n := len(out.stages); n > 0 && st.Node == nil && st.Aggregation == nil && collapsible[op.Name] {
			prev := &out.stages[n-1]
			if prev.Op == op.Name && prev.Node == nil && prev.Aggregation == nil {
				prev.Text += "\n| " + text
				out.computed = appendComputed(out.computed, defs, prev.Index)
				continue
			}
		}
		out.computed = appendComputed(out.computed, defs, idx)
		addStage(st)
		switch {
		case op.Name == "summarize":
			groupPos = len(out.stages) - 1
		case aggregating[op.Name]:
			groupPos = -1 // rows now come from elsewhere too
		}
	}
	out.cond = strings.Join(conds, "\n| ")
	out.root = andOf(root)
	if len(out.computed) == 0 {
		out.computed = nil
	}
	out.tables = lw.tables(q)
	out.outputs = lw.outputs(main)
	if len(lw.time) > 0 {
		out.timeframe = lw.time[0]
	}
	return out
}

var collapsible = map[string]bool{
	"extend": true, "project": true, "project-away": true, "project-rename": true, "project-reorder": true,
	"project-keep": true, "sort": true, "order": true, "mv-expand": true, "parse": true, "take": true, "limit": true,
}

func isComparison(op string) bool {
	switch op {
	case "<", "<=", ">", ">=", "==", "!=":
		return true
	}
	return false
}

func unparen(e Expr) Expr {
	for {
		l, ok := e.(*List)
		if !ok || len(l.Elems) != 1 {
			return e
		}
		e = l.Elems[0]
	}
}

// isNegation reports whether a where expression is a negation as a whole.
func isNegation(e Expr) bool {
	switch v := unparen(e).(type) {
	case *Call:
		return strings.EqualFold(v.Fn, "not")
	case *Unary:
		return v.Op == "!"
	}
	return false
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
		return nil
	case 1:
		return kept[0]
	}
	return rule.And(kept...)
}

// pipelinePreds returns the filters of a whole pipeline: its source, every where and
// the right sides of its joins.
func (lw *lowerer) pipelinePreds(p *Pipeline) []*rule.Node {
	if p == nil || lw.depth > 8 {
		return nil
	}
	lw.depth++
	defer func() { lw.depth-- }()
	out := lw.sourcePreds(p.Source)
	for _, op := range p.Ops {
		switch op.Name {
		case "where", "filter", "search":
			if op.Pred != nil {
				out = append(out, lw.pred(op.Pred))
			}
		case "join", "lookup", "union":
			for _, o := range op.Operands {
				out = append(out, lw.joinedPreds(o, p.Source)...)
			}
		case "extend", "project", "project-rename":
			lw.recordAliases(op)
			lw.pending = append(lw.pending, lw.derived(op)...)
		case "parse", "parse-where", "parse-kv", "mv-expand", "summarize":
			lw.pending = append(lw.pending, lw.derived(op)...)
		}
	}
	return out
}

func (lw *lowerer) exprPipelinePreds(e Expr) []*rule.Node {
	if sq, ok := unparen(e).(*SubQuery); ok {
		saved, savedC, savedP := lw.alias, lw.computed, lw.pending
		lw.alias, lw.computed = map[string]aliasInfo{}, map[string]string{}
		defer func() { lw.alias, lw.computed, lw.pending = saved, savedC, savedP }()
		return lw.pipelinePreds(sq.P)
	}
	return nil
}

func (lw *lowerer) sourcePreds(s *Source) []*rule.Node {
	if s == nil {
		return nil
	}
	var out []*rule.Node
	if s.Pred != nil {
		lw.search = true
		out = append(out, lw.pred(s.Pred))
		lw.search = false
	}
	if s.Kind == "union" {
		var alts []*rule.Node
		for _, m := range s.Members {
			if n := andOf(lw.exprPipelinePreds(m)); n != nil {
				alts = append(alts, n)
			}
		}
		// Members are alternatives only when each filters; otherwise rows from the
		// unfiltered members pass anyway.
		if len(alts) == len(s.Members) && len(alts) > 1 {
			out = append(out, rule.Or(alts...))
		} else if len(alts) == 1 && len(s.Members) == 1 {
			out = append(out, alts[0])
		}
	}
	if s.Kind == "expr" {
		out = append(out, lw.exprPipelinePreds(s.Expr)...)
	}
	return out
}

// inheritedPreds follows a source that names a tabular let to that let's filters.
func (lw *lowerer) inheritedPreds(s *Source, depth int) []*rule.Node {
	if s == nil || s.Kind != "expr" || depth > 4 {
		return nil
	}
	l := lw.sourceLet(s)
	if l == nil {
		return nil
	}
	for _, op := range l.Pipe.Ops {
		if op.Name == "union" {
			// Rows also come from the union's members: the filters before it hold
			// for only some of them.
			return nil
		}
	}
	var out []*rule.Node
	out = append(out, lw.inheritedPreds(l.Pipe.Source, depth+1)...)
	saved, savedC, savedP := lw.alias, lw.computed, lw.pending
	lw.alias, lw.computed = map[string]aliasInfo{}, map[string]string{}
	out = append(out, lw.sourcePreds(l.Pipe.Source)...)
	stage := lw.letStage[l.Name]
	for _, op := range l.Pipe.Ops {
		if aggregating[op.Name] {
			break
		}
		switch op.Name {
		case "where", "filter":
			if op.Pred != nil {
				if n := lw.pred(op.Pred); n != nil {
					out = append(out, lw.eventPart(n, stage)...)
				}
			}
		case "extend", "project", "project-rename":
			lw.recordAliases(op)
			lw.derived(op)
		case "parse", "parse-where", "parse-kv", "mv-expand":
			lw.derived(op)
		}
	}
	// The let's aliases and computed columns stay visible to the main pipeline that reads it.
	for k, v := range lw.alias {
		saved[k] = v
	}
	for k, v := range lw.computed {
		savedC[k] = v
	}
	lw.alias, lw.computed, lw.pending = saved, savedC, savedP
	return out
}

// recordAliases notes columns that are only another column under a new name
// (extend x = tolower(FileName), project-rename New = Old), so predicates on them
// count as predicates on the original field.
func (lw *lowerer) recordAliases(op *Op) {
	for _, a := range op.Args {
		n, ok := a.(*Named)
		if !ok || n.X == nil {
			continue
		}
		if f, ci, ok := lw.field(n.X); ok && f != n.Name {
			lw.alias[n.Name] = aliasInfo{field: f, ci: ci}
		}
	}
}

func (lw *lowerer) aggregation(op *Op) *rule.Aggregation {
	agg := &rule.Aggregation{Func: "summarize"}
	for i, a := range op.Args {
		x := a
		if n, ok := a.(*Named); ok {
			x = n.X
		}
		if c, ok := x.(*Call); ok && i == 0 {
			agg.Func = c.Fn
			if len(c.Args) > 0 {
				agg.Field = lw.text(c.Args[0].span())
			}
		}
	}
	for _, b := range op.By {
		if n, ok := b.(*Named); ok {
			agg.GroupBy = append(agg.GroupBy, n.Name)
			continue
		}
		t := lw.text(b.span())
		if c, ok := b.(*Call); ok && strings.EqualFold(c.Fn, "bin") && len(c.Args) == 2 {
			agg.Timespan = lw.text(c.Args[1].span())
		}
		agg.GroupBy = append(agg.GroupBy, t)
	}
	return agg
}

func (lw *lowerer) scalarText(e Expr) string {
	if vs, ok := lw.values(e, 0); ok && len(vs) == 1 {
		return vs[0].S
	}
	return lw.text(e.span())
}

// outputs returns the columns the main pipeline emits: those of the last
// project/summarize/distinct, plus what extends add after it.
func (lw *lowerer) outputs(p *Pipeline) []string {
	var cols []string
	for _, op := range p.Ops {
		switch op.Name {
		case "project", "distinct":
			cols = nil
			for _, a := range op.Args {
				cols = append(cols, lw.colName(a))
			}
		case "summarize":
			cols = nil
			for _, a := range op.By {
				cols = append(cols, lw.colName(a))
			}
			for _, a := range op.Args {
				cols = append(cols, lw.colName(a))
			}
		case "extend":
			for _, a := range op.Args {
				cols = append(cols, lw.colName(a))
			}
		case "project-rename":
			for _, a := range op.Args {
				if n, ok := a.(*Named); ok {
					cols = append(cols, n.Name)
				}
			}
		}
	}
	return dedupe(cols)
}

func (lw *lowerer) colName(e Expr) string {
	switch v := e.(type) {
	case *Named:
		return v.Name
	case *Ident:
		return v.Name
	}
	return lw.text(e.span())
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		out = append(out, s)
	}
	return out
}

// notTables are source functions that produce rows without reading a table.
var notTables = map[string]bool{
	"datatable": true, "externaldata": true, "external_data": true, "print": true, "range": true,
	"toscalar": true, "materialize": true, "view": true, "table": true, "cluster": true, "database": true,
	"workspace": true, "app": true, "dynamic": true, "pack_array": true, "evaluate": true,
}

// tables lists the tables a query reads, through lets, unions, joins and lookups.
func (lw *lowerer) tables(q *query) []string {
	var out []string
	var pipe func(p *Pipeline, depth int)
	var expr func(e Expr, depth int)
	expr = func(e Expr, depth int) {
		if depth > 8 || e == nil {
			return
		}
		switch v := unparen(e).(type) {
		case *Ident:
			if l := lw.env[v.Name]; l != nil {
				if (l.Kind == LetTabular || l.Kind == LetFunc) && l.Pipe != nil && depth < 4 {
					pipe(l.Pipe, depth+1)
				}
				return
			}
			if v.Name != "*" && v.Name != "" {
				out = append(out, v.Name)
			}
		case *SubQuery:
			pipe(v.P, depth+1)
		case *Call:
			fn := strings.ToLower(v.Fn)
			if l := lw.env[v.Fn]; l != nil {
				if l.Pipe != nil && depth < 4 {
					pipe(l.Pipe, depth+1)
				}
				return
			}
			switch fn {
			case "table":
				if len(v.Args) > 0 {
					if lit, ok := v.Args[0].(*Lit); ok {
						out = append(out, lit.Val)
					}
				}
				return
			case "materialize", "toscalar", "view":
				for _, a := range v.Args {
					expr(a, depth+1)
				}
				return
			}
			if notTables[fn] {
				return
			}
			out = append(out, v.Fn)
		case *Dot:
			// cluster('c').database('d').Table
			if _, ok := v.X.(*Call); ok {
				out = append(out, v.Name)
			}
		}
	}
	pipe = func(p *Pipeline, depth int) {
		if p == nil {
			return
		}
		s := p.Source
		switch s.Kind {
		case "expr":
			expr(s.Expr, depth)
		case "union", "search", "find":
			for _, m := range s.Members {
				expr(m, depth)
			}
		}
		for _, op := range p.Ops {
			for _, o := range op.Operands {
				expr(o, depth)
			}
		}
	}
	for _, l := range q.lets {
		if l.Pipe != nil {
			pipe(l.Pipe, 1)
		}
		if l.Kind == LetTabular && l.Value != nil {
			expr(l.Value, 1)
		}
	}
	for _, p := range q.pipes {
		pipe(p, 0)
	}
	return dedupe(out)
}

// Predicates.

// strOp describes how a KQL comparison operator maps to a predicate kind. Case
// sensitivity follows the Kusto string operator reference: ==, !=, in, !in, the _cs
// variants and matches regex are case-sensitive; =~, !~, in~, has, contains,
// startswith, endswith, hasprefix, hassuffix, has_any and has_all are not.
type strOp struct {
	kind  rule.Kind
	cased bool
	neg   bool
	all   bool
}

// The has family is term matching (rule.Term*), never substring matching: `has
// "shadowcopy"` does not hold on "shadowcopies", while `contains` would. in/in~ are
// equality against a list, the same test as Sigma's eq with several values, so they
// lower to Eq and count with == / =~ under one indicator key.
var strOps = map[string]strOp{
	"==": {rule.Eq, true, false, false}, "=~": {rule.Eq, false, false, false},
	"!=": {rule.Ne, true, false, false}, "<>": {rule.Ne, true, false, false}, "!~": {rule.Ne, false, false, false},
	"has": {rule.Term, false, false, false}, "has_cs": {rule.Term, true, false, false},
	"!has": {rule.Term, false, true, false}, "!has_cs": {rule.Term, true, true, false},
	"nothas":   {rule.Term, false, true, false},
	"contains": {rule.Match, false, false, false}, "contains_cs": {rule.Match, true, false, false},
	"!contains": {rule.Match, false, true, false}, "!contains_cs": {rule.Match, true, true, false},
	"notcontains": {rule.Match, false, true, false}, "notcontains_cs": {rule.Match, true, true, false},
	"startswith": {rule.StartsW, false, false, false}, "startswith_cs": {rule.StartsW, true, false, false},
	"!startswith": {rule.StartsW, false, true, false}, "!startswith_cs": {rule.StartsW, true, true, false},
	"hasprefix": {rule.TermPrefix, false, false, false}, "hasprefix_cs": {rule.TermPrefix, true, false, false},
	"!hasprefix": {rule.TermPrefix, false, true, false}, "!hasprefix_cs": {rule.TermPrefix, true, true, false},
	"endswith": {rule.EndsW, false, false, false}, "endswith_cs": {rule.EndsW, true, false, false},
	"!endswith": {rule.EndsW, false, true, false}, "!endswith_cs": {rule.EndsW, true, true, false},
	"hassuffix": {rule.TermSuffix, false, false, false}, "hassuffix_cs": {rule.TermSuffix, true, false, false},
	"!hassuffix": {rule.TermSuffix, false, true, false}, "!hassuffix_cs": {rule.TermSuffix, true, true, false},
	"in": {rule.Eq, true, false, false}, "in~": {rule.Eq, false, false, false},
	"!in": {rule.Eq, true, true, false}, "!in~": {rule.Eq, false, true, false},
	"has_any": {rule.Term, false, false, false}, "has_all": {rule.Term, false, false, true},
	"has_any_cs": {rule.Term, true, false, false}, "has_all_cs": {rule.Term, true, false, true},
	"matches regex": {rule.Regex, true, false, false},
	"<":             {rule.Lt, false, false, false}, "<=": {rule.Le, false, false, false},
	">": {rule.Gt, false, false, false}, ">=": {rule.Ge, false, false, false},
}

// pred converts a where expression to a boolean tree. Time-window tests return nil
// (they become the rule's time window); what it cannot model becomes OpOpaque.
func (lw *lowerer) pred(e Expr) *rule.Node {
	switch v := e.(type) {
	case *List:
		if len(v.Elems) == 1 {
			return lw.pred(v.Elems[0])
		}
	case *Binary:
		switch v.Op {
		case "and", "or":
			l, r := lw.pred(v.L), lw.pred(v.R)
			if l == nil {
				return r
			}
			if r == nil {
				return l
			}
			op := rule.OpAnd
			if v.Op == "or" {
				op = rule.OpOr
			}
			var kids []*rule.Node
			for _, k := range []*rule.Node{l, r} {
				if k.Op == op {
					kids = append(kids, k.Children...)
				} else {
					kids = append(kids, k)
				}
			}
			return &rule.Node{Op: op, Children: kids, Pos: lw.at(v.Span)}
		}
		if _, ok := strOps[v.Op]; ok {
			return lw.compare(v)
		}
	case *Unary:
		if v.Op == "!" {
			if n := lw.pred(v.X); n != nil {
				return rule.Not(n)
			}
			return nil
		}
	case *Between:
		return lw.between(v)
	case *Call:
		if n, ok := lw.callPred(v); ok {
			return n
		}
	case *Lit:
		if v.Kind == LBool && v.Val == "true" {
			return &rule.Node{Op: rule.OpTrue}
		}
		if v.Kind == LString && lw.search {
			// search "term": the term anywhere in the row.
			return lw.leaf(v, "", rule.Keyword, []rule.Value{{S: v.Val}}, false, false, "search")
		}
	}
	return lw.opaque(e)
}

func (lw *lowerer) opaque(e Expr) *rule.Node {
	s := e.span()
	t := lw.text(s)
	lw.warn(s, "kql/predicate/opaque", "predicate not modelled, kept as text: "+shorten(t, 120))
	return &rule.Node{Op: rule.OpOpaque, Text: t, Pos: lw.at(s)}
}

func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func (lw *lowerer) leaf(e Expr, field string, kind rule.Kind, vals []rule.Value, cased, all bool, native string) *rule.Node {
	p := &rule.Pred{Field: field, Kind: kind, Values: vals, All: all, Native: native, Pos: lw.at(e.span())}
	if cased {
		p.Transforms = []string{rule.TCased}
	}
	return rule.Leaf(p)
}

func (lw *lowerer) compare(b *Binary) *rule.Node {
	so := strOps[b.Op]
	if lw.isTimeTest(b.L, b.R) {
		if lw.isTimeExpr(b.L, 0) && !lw.isTimeExpr(b.R, 0) {
			lw.noteTime(b.L) // ago(1d) < Timestamp
		} else {
			lw.noteTime(b.R)
		}
		return nil
	}
	l, r := b.L, b.R
	// "x" == Field reads as Field == "x".
	isList := strings.HasPrefix(b.Op, "in") || strings.HasPrefix(b.Op, "!in")
	if _, _, lok := lw.field(l); !lok {
		if _, _, rok := lw.field(r); rok && !isList && (so.kind == rule.Eq || so.kind == rule.Ne) {
			if _, ok := lw.values(l, 0); ok {
				l, r = r, l
			}
		}
	}
	native := func(f string) string { return f + " " + b.Op }
	// `* has "x"`: a keyword search over all columns.
	if id, ok := unparen(l).(*Ident); ok && id.Name == "*" {
		vals, ok := lw.values(r, 0)
		if !ok {
			return lw.opaque(b)
		}
		n := lw.leaf(b, "", rule.Keyword, vals, so.cased, so.all, "* "+b.Op)
		if so.neg {
			return rule.Not(n)
		}
		return n
	}
	field, ci, ok := lw.field(l)
	if !ok {
		return lw.opaque(b)
	}
	cased := so.cased && !ci
	vals, ok := lw.values(r, 0)
	if !ok {
		// Field against field: a field reference (equality only).
		if rf, _, rok := lw.field(r); rok && !isList && (so.kind == rule.Eq || so.kind == rule.Ne) {
			n := lw.leaf(b, field, rule.FieldRef, []rule.Value{{S: rf}}, cased, false, native(lw.text(l.span())))
			if so.kind == rule.Ne {
				return rule.Not(n)
			}
			return n
		}
		return lw.opaque(b)
	}
	if len(vals) == 0 {
		return lw.opaque(b)
	}
	kind := so.kind
	if kind == rule.Lt || kind == rule.Le || kind == rule.Gt || kind == rule.Ge {
		cased = false
	}
	// A value without letters compares the same with or without case (EventID == 4624,
	// LocalPort == "445"): leave it uncased, so it reads like the same test elsewhere.
	if cased && kind != rule.Regex && !anyLetter(vals) {
		cased = false
	}
	n := lw.leaf(b, field, kind, vals, cased, so.all, native(lw.text(l.span())))
	if kind == rule.Regex {
		// matches regex is an unanchored RE2 search, case-sensitive unless the pattern
		// says (?i); a regex on tolower(x) is read as a case-insensitive one. The
		// pattern itself is never case-folded.
		n.Pred.Transforms = []string{rule.TCased}
		if ci || strings.HasPrefix(vals[0].S, "(?i)") {
			n.Pred.Transforms = append(n.Pred.Transforms, rule.TIgnoreCase)
		}
	}
	if so.neg {
		return rule.Not(n)
	}
	return n
}

func (lw *lowerer) between(v *Between) *rule.Node {
	if lw.isTimeTest(v.X, v.Lo) || lw.isTimeTest(v.X, v.Hi) {
		lw.noteTime(v.Lo)
		return nil
	}
	field, _, ok := lw.field(v.X)
	lo, ok1 := lw.values(v.Lo, 0)
	hi, ok2 := lw.values(v.Hi, 0)
	if !ok || !ok1 || !ok2 || len(lo) != 1 || len(hi) != 1 {
		return lw.opaque(v)
	}
	native := lw.text(v.X.span()) + " between"
	n := rule.And(lw.leaf(v, field, rule.Ge, lo, false, false, native), lw.leaf(v, field, rule.Le, hi, false, false, native))
	if v.Not {
		return rule.Not(n)
	}
	return n
}

// privateRanges are the networks ipv4_is_private tests (RFC 1918).
var privateRanges = []rule.Value{{S: "10.0.0.0/8"}, {S: "172.16.0.0/12"}, {S: "192.168.0.0/16"}}

func (lw *lowerer) callPred(c *Call) (*rule.Node, bool) {
	fn := strings.ToLower(c.Fn)
	arg := func(i int) Expr {
		if i < len(c.Args) {
			return c.Args[i]
		}
		return nil
	}
	switch fn {
	case "not":
		if len(c.Args) != 1 {
			return nil, false
		}
		n := lw.pred(c.Args[0])
		if n == nil {
			return nil, true
		}
		return &rule.Node{Op: rule.OpNot, Children: []*rule.Node{n}, Pos: lw.at(c.Span)}, true
	case "isnotempty", "isnotnull", "isempty", "isnull":
		if len(c.Args) != 1 {
			return nil, false
		}
		f, _, ok := lw.field(c.Args[0])
		if !ok {
			return nil, false
		}
		kind := rule.IsNotNull
		if fn == "isempty" || fn == "isnull" {
			kind = rule.IsNull
		}
		return lw.leaf(c, f, kind, nil, false, false, c.Fn+"()"), true
	case "ipv4_is_in_range", "ipv4_is_in_any_range", "ipv6_is_in_range", "ipv6_is_in_any_range":
		if len(c.Args) < 2 {
			return nil, false
		}
		f, _, ok := lw.field(c.Args[0])
		if !ok {
			return nil, false
		}
		var vals []rule.Value
		for _, a := range c.Args[1:] {
			vs, ok := lw.values(a, 0)
			if !ok {
				return nil, false
			}
			vals = append(vals, vs...)
		}
		return lw.leaf(c, f, rule.CIDR, vals, false, false, c.Fn+"()"), true
	case "ipv4_is_private":
		f, _, ok := lw.field(arg(0))
		if !ok {
			return nil, false
		}
		return lw.leaf(c, f, rule.CIDR, privateRanges, false, false, c.Fn+"()"), true
	case "startswith", "endswith", "contains", "has":
		// Function forms some authors use: startswith(x, "y") is not KQL, but reads plainly.
		return nil, false
	}
	return nil, false
}

// field resolves an expression to the field it reads. ci is set when the
// expression folds case (tolower/toupper), making == case-insensitive.
func (lw *lowerer) field(e Expr) (string, bool, bool) {
	return lw.fieldDepth(e, 0)
}

func (lw *lowerer) fieldDepth(e Expr, depth int) (string, bool, bool) {
	if e == nil || depth > 8 {
		return "", false, false
	}
	switch v := unparen(e).(type) {
	case *Ident:
		if v.Name == "*" {
			return "", false, false
		}
		if l := lw.env[v.Name]; l != nil && !v.Quoted {
			return "", false, false
		}
		if lower := strings.ToLower(v.Name); lower == "true" || lower == "false" {
			return "", false, false
		}
		if a, ok := lw.alias[v.Name]; ok {
			return a.field, a.ci, true
		}
		return v.Name, false, true
	case *Call:
		fn := strings.ToLower(v.Fn)
		switch fn {
		case "tolower", "toupper":
			if len(v.Args) == 1 {
				f, _, ok := lw.fieldDepth(v.Args[0], depth+1)
				return f, true, ok
			}
		case "tostring", "parse_json", "todynamic", "trim_start", "trim_end", "trim", "todatetime", "toint", "tolong", "toreal", "todouble":
			if len(v.Args) >= 1 {
				return lw.fieldDepth(v.Args[len(v.Args)-1], depth+1)
			}
		case "column_ifexists":
			if len(v.Args) >= 1 {
				if lit, ok := v.Args[0].(*Lit); ok && lit.Kind == LString {
					return lit.Val, false, true
				}
			}
		}
	case *Dot:
		if f, ci, ok := lw.fieldDepth(v.X, depth+1); ok {
			return f + "." + v.Name, ci, true
		}
	case *Index:
		f, ci, ok := lw.fieldDepth(v.X, depth+1)
		if !ok {
			return "", false, false
		}
		if lit, ok := v.I.(*Lit); ok {
			if lit.Kind == LString {
				return f + "." + lit.Val, ci, true
			}
			return f + "[" + lit.Val + "]", ci, true
		}
	}
	return "", false, false
}

// values resolves an expression to literal values, following lets, dynamic
// arrays, single-column datatables and list functions.
func (lw *lowerer) values(e Expr, depth int) ([]rule.Value, bool) {
	if e == nil || depth > 8 {
		return nil, false
	}
	switch v := e.(type) {
	case *Lit:
		switch v.Kind {
		case LString:
			return []rule.Value{{S: v.Val}}, true
		case LNumber:
			return []rule.Value{{S: v.Val, Type: rule.Number}}, true
		case LBool:
			return []rule.Value{{S: v.Val, Type: rule.Bool}}, true
		case LNull:
			return []rule.Value{{S: "", Type: rule.Null}}, true
		case LTimespan, LDatetime:
			return []rule.Value{{S: v.Val}}, true
		}
	case *Unary:
		if v.Op == "-" {
			if vs, ok := lw.values(v.X, depth+1); ok && len(vs) == 1 && vs[0].Type == rule.Number {
				return []rule.Value{{S: "-" + vs[0].S, Type: rule.Number}}, true
			}
		}
	case *Ident:
		l := lw.env[v.Name]
		if l == nil || v.Quoted || l.Value == nil || (l.Kind != LetScalar && l.Kind != LetList) {
			return nil, false
		}
		return lw.values(l.Value, depth+1)
	case *List:
		var out []rule.Value
		for _, el := range v.Elems {
			vs, ok := lw.values(el, depth+1)
			if !ok {
				return nil, false
			}
			out = append(out, vs...)
		}
		return out, true
	case *Call:
		fn := strings.ToLower(v.Fn)
		switch fn {
		case "dynamic", "pack_array", "array_concat", "set_union":
			var out []rule.Value
			for _, a := range v.Args {
				if id, ok := a.(*Ident); ok && id.Quoted && fn == "dynamic" {
					// dynamic(['x']) lexes its one element as a quoted identifier.
					out = append(out, rule.Value{S: id.Name})
					continue
				}
				vs, ok := lw.values(a, depth+1)
				if !ok {
					return nil, false
				}
				out = append(out, vs...)
			}
			return out, true
		case "tolower", "toupper", "tostring":
			if len(v.Args) != 1 {
				return nil, false
			}
			vs, ok := lw.values(v.Args[0], depth+1)
			if !ok {
				return nil, false
			}
			for i := range vs {
				switch fn {
				case "tolower":
					vs[i].S = strings.ToLower(vs[i].S)
				case "toupper":
					vs[i].S = strings.ToUpper(vs[i].S)
				}
				vs[i].Type = ""
			}
			return vs, true
		case "strcat":
			var b strings.Builder
			for _, a := range v.Args {
				vs, ok := lw.values(a, depth+1)
				if !ok || len(vs) != 1 {
					return nil, false
				}
				b.WriteString(vs[0].S)
			}
			return []rule.Value{{S: b.String()}}, true
		case "split":
			if len(v.Args) != 2 {
				return nil, false
			}
			s, ok1 := lw.values(v.Args[0], depth+1)
			sep, ok2 := lw.values(v.Args[1], depth+1)
			if !ok1 || !ok2 || len(s) != 1 || len(sep) != 1 || sep[0].S == "" {
				return nil, false
			}
			var out []rule.Value
			for _, p := range strings.Split(s[0].S, sep[0].S) {
				out = append(out, rule.Value{S: p})
			}
			return out, true
		case "datatable":
			// datatable(col:type)[v1, v2, ...]: only a single column is a list.
			if len(v.Args) == 2 {
				if _, ok := v.Args[0].(*Named); ok {
					return lw.values(v.Args[1], depth+1)
				}
			}
		}
	case *SubQuery:
		// (datatable(x:string)["a","b"]) used inline, or a let of one.
		if v.P != nil && len(v.P.Ops) == 0 && v.P.Source.Kind == "expr" {
			return lw.values(v.P.Source.Expr, depth+1)
		}
	}
	if id, ok := e.(*Ident); ok {
		if l := lw.env[id.Name]; l != nil && l.Kind == LetTabular && l.Pipe != nil && len(l.Pipe.Ops) == 0 && l.Pipe.Source.Kind == "expr" {
			return lw.values(l.Pipe.Source.Expr, depth+1)
		}
	}
	return nil, false
}

var timeFieldRe = regexp.MustCompile(`(?i)(^|_)(timestamp|timegenerated|eventtime|timecreated|creationtime|createddatetime|activitydatetime|time|date|datetime|starttime|endtime|firstseen|lastseen|timecreatedutc|eventcreationtime|ingestiontime)$`)

// isTimeTest reports whether a comparison tests a time window (Timestamp > ago(7d)).
func (lw *lowerer) isTimeTest(l, r Expr) bool {
	if lw.isTimeExpr(l, 0) || lw.isTimeExpr(r, 0) {
		return true
	}
	if f, _, ok := lw.field(l); ok && timeFieldRe.MatchString(f) {
		if _, ok := r.(*Lit); ok {
			return r.(*Lit).Kind == LTimespan || r.(*Lit).Kind == LDatetime
		}
		if id, ok := r.(*Ident); ok {
			if l := lw.env[id.Name]; l != nil {
				return l.Value != nil && lw.isTimeExpr(l.Value, 1)
			}
			return false
		}
	}
	return false
}

var timeFuncs = map[string]bool{
	"ago": true, "now": true, "startofday": true, "startofweek": true, "startofmonth": true, "startofyear": true,
	"endofday": true, "endofweek": true, "endofmonth": true, "endofyear": true, "ingestion_time": true,
	"todatetime": true, "datetime_add": true, "unixtime_seconds_todatetime": true, "make_datetime": true,
}

func (lw *lowerer) isTimeExpr(e Expr, depth int) bool {
	if depth > 6 || e == nil {
		return false
	}
	switch v := unparen(e).(type) {
	case *Call:
		return timeFuncs[strings.ToLower(v.Fn)]
	case *Lit:
		return v.Kind == LDatetime && strings.HasPrefix(strings.ToLower(v.Val), "datetime")
	case *Binary:
		if v.Op == "+" || v.Op == "-" {
			return lw.isTimeExpr(v.L, depth+1) || lw.isTimeExpr(v.R, depth+1)
		}
	case *Ident:
		if l := lw.env[v.Name]; l != nil && l.Value != nil && l.Kind == LetScalar {
			return lw.isTimeExpr(l.Value, depth+1)
		}
	}
	return false
}

var agoRe = regexp.MustCompile(`(?i)^ago\s*\(\s*(.+?)\s*\)$`)

// noteTime records a time window: ago(7d) gives "7d", a let name its value.
func (lw *lowerer) noteTime(e Expr) {
	e = unparen(e)
	if id, ok := e.(*Ident); ok {
		if l := lw.env[id.Name]; l != nil && l.Value != nil {
			e = l.Value
		}
	}
	t := strings.TrimSpace(lw.text(e.span()))
	if m := agoRe.FindStringSubmatch(t); m != nil {
		inner := m[1]
		// ago(timeframe) with a let timeframe = 1d;
		if l := lw.env[inner]; l != nil && l.Value != nil {
			inner = lw.text(l.Value.span())
		}
		t = inner
	}
	if t != "" {
		lw.time = append(lw.time, t)
	}
}

// thresholding operators after a summarize keep only some of its groups.
var thresholding = map[string]bool{
	"where": true, "filter": true, "search": true, "take": true, "limit": true, "top": true,
	"sample": true, "sample-distinct": true, "top-hitters": true,
}

func appendComputed(out, defs []rule.Computed, stage int) []rule.Computed {
	for _, d := range defs {
		d.Stage = stage
		out = append(out, d)
	}
	return out
}

// derived records the columns an operator computes and returns them, so predicates
// on them are told apart from predicates on event fields. A bare column under a new
// name (an alias, see recordAliases) is not computed.
func (lw *lowerer) derived(op *Op) []rule.Computed {
	var out []rule.Computed
	add := func(name, def string) {
		if name == "" {
			return
		}
		delete(lw.alias, name)
		lw.computed[name] = def
		out = append(out, rule.Computed{Name: name, Definition: strings.Join(strings.Fields(def), " ")})
	}
	switch op.Name {
	case "extend", "project":
		for _, a := range op.Args {
			n, ok := a.(*Named)
			if !ok || n.X == nil {
				continue
			}
			if f, _, ok := lw.field(n.X); ok {
				if f != n.Name {
					continue // an alias
				}
				// x = tolower(x): the same column, case-folded; computed if x was.
				continue
			}
			add(n.Name, lw.text(n.X.span()))
		}
	case "summarize":
		by := ""
		if len(op.By) > 0 {
			var parts []string
			for _, b := range op.By {
				parts = append(parts, lw.text(b.span()))
			}
			by = " by " + strings.Join(parts, ", ")
		}
		for _, a := range op.Args {
			if n, ok := a.(*Named); ok && n.X != nil {
				add(n.Name, lw.text(n.X.span())+by)
				continue
			}
			if c, ok := a.(*Call); ok {
				add(defaultAggName(c, lw), lw.text(c.Span)+by)
			}
		}
		for _, b := range op.By {
			if n, ok := b.(*Named); ok && n.X != nil {
				if f, _, ok := lw.field(n.X); ok && f == n.Name {
					continue
				}
				add(n.Name, lw.text(n.X.span()))
			}
		}
	case "parse", "parse-where", "parse-kv", "mv-expand":
		for _, c := range opColumns(op.Name, lw.text(op.Span)) {
			add(c.Name, c.Definition)
		}
	}
	return out
}

// defaultAggName is the column name Kusto gives an unnamed aggregate: count() is
// count_, dcount(x) is dcount_x, make_set(x) is set_x.
func defaultAggName(c *Call, lw *lowerer) string {
	fn := strings.ToLower(c.Fn)
	arg := ""
	if len(c.Args) > 0 {
		if f, _, ok := lw.field(c.Args[0]); ok {
			arg = f
		}
	}
	switch fn {
	case "count", "countif":
		return fn + "_"
	case "make_set", "make_set_if", "makeset":
		return "set_" + arg
	case "make_list", "make_list_if", "makelist":
		return "list_" + arg
	case "make_bag", "make_bag_if":
		return "bag_" + arg
	case "take_any", "any", "arg_max", "arg_min", "take_anyif", "anyif":
		return "" // keep the source columns' names
	}
	if arg == "" {
		return fn + "_"
	}
	return fn + "_" + arg
}

// opColumns reads the columns a parse or mv-expand operator defines from its text.
// parse: the names after `with` (those after `:` are types); parse-kv: the names in
// its `as (...)` schema; mv-expand: each expanded column, or the name assigned.
func opColumns(name, text string) []rule.Computed {
	toks, _ := Lex(text)
	var out []rule.Computed
	switch name {
	case "parse", "parse-where":
		with := -1
		for i, t := range toks {
			if t.Kind == TIdent && strings.EqualFold(t.Text, "with") && t.Depth == toks[0].Depth {
				with = i
				break
			}
		}
		if with < 0 {
			return nil
		}
		for i := with + 1; i < len(toks); i++ {
			t := toks[i]
			if (t.Kind != TIdent && t.Kind != TQIdent) || t.Text == "*" {
				continue
			}
			if p := toks[i-1]; p.Kind == TOp && p.Text == ":" {
				continue // a type
			}
			n := t.Text
			if t.Kind == TQIdent {
				n = t.Val
			}
			out = append(out, rule.Computed{Name: n, Definition: text})
		}
	case "parse-kv":
		in := false
		for i, t := range toks {
			if t.Kind == TIdent && strings.EqualFold(t.Text, "as") {
				in = true
				continue
			}
			if in && t.Kind == TIdent && strings.EqualFold(t.Text, "with") && t.Depth == toks[0].Depth {
				break
			}
			if in && (t.Kind == TIdent || t.Kind == TQIdent) && i > 0 && !(toks[i-1].Kind == TOp && toks[i-1].Text == ":") {
				n := t.Text
				if t.Kind == TQIdent {
					n = t.Val
				}
				out = append(out, rule.Computed{Name: n, Definition: text})
			}
		}
	case "mv-expand":
		// Segments at the operator's own depth, split by commas; options name=value
		// (bagexpansion, with_itemindex, kind) and `limit n` are not columns.
		d := -1
		start := true
		first := 1 // after the operator's name, lexed as mv - expand
		for i, t := range toks {
			if t.Kind == TIdent && strings.EqualFold(t.Text, "expand") {
				first = i + 1
				break
			}
		}
		for i := first; i < len(toks); i++ {
			t := toks[i]
			if d < 0 {
				d = t.Depth
			}
			if t.Depth != d {
				continue
			}
			if t.Kind == TOp && t.Text == "," {
				start = true
				continue
			}
			if !start {
				continue
			}
			if t.Kind == TIdent && strings.EqualFold(t.Text, "limit") {
				break
			}
			if t.Kind != TIdent && t.Kind != TQIdent {
				start = false
				continue
			}
			n := t.Text
			if t.Kind == TQIdent {
				n = t.Val
			}
			if i+1 < len(toks) && toks[i+1].Kind == TOp && toks[i+1].Text == "(" {
				// mv-expand todynamic(Entities): the expanded column is the argument's.
				for j := i + 2; j < len(toks) && toks[j].Depth > d; j++ {
					if toks[j].Kind == TIdent || toks[j].Kind == TQIdent {
						n = toks[j].Text
						if toks[j].Kind == TQIdent {
							n = toks[j].Val
						}
						break
					}
				}
			}
			if i+1 < len(toks) && toks[i+1].Kind == TOp && toks[i+1].Text == "=" {
				switch strings.ToLower(n) {
				case "bagexpansion", "with_itemindex", "kind":
					if strings.EqualFold(n, "with_itemindex") && i+2 < len(toks) {
						out = append(out, rule.Computed{Name: toks[i+2].Text, Definition: text})
					}
					i += 2 // option=value; the column follows
					continue
				}
			}
			out = append(out, rule.Computed{Name: n, Definition: text})
			start = false
		}
	}
	return out
}

// onComputed reports whether a predicate tree reads a computed column.
func (lw *lowerer) onComputed(n *rule.Node) []string {
	var cols []string
	for _, pp := range rule.Preds(n) {
		f := pp.Pred.Field
		if i := strings.IndexAny(f, ".["); i > 0 {
			f = f[:i]
		}
		if _, ok := lw.computed[f]; ok {
			cols = append(cols, f)
		}
	}
	return dedupe(cols)
}

// eventPart returns what an event-level where contributes to Root: its conjuncts on
// event fields, and for the conjuncts on computed columns one opaque node that
// stands for them. The predicates themselves stay in their stage; the placeholder
// keeps Root from claiming to be the rule's whole logic.
func (lw *lowerer) eventPart(n *rule.Node, stage int) []*rule.Node {
	if len(lw.computed) == 0 {
		return []*rule.Node{n}
	}
	conj := []*rule.Node{n}
	if n.Op == rule.OpAnd {
		conj = n.Children
	}
	var keep []*rule.Node
	var cols []string
	for _, c := range conj {
		if cs := lw.onComputed(c); len(cs) > 0 {
			cols = append(cols, cs...)
			continue
		}
		keep = append(keep, c)
	}
	if len(cols) == 0 {
		return []*rule.Node{n}
	}
	text := fmt.Sprintf("filter on computed column %s (stage %d)", strings.Join(dedupe(cols), ", "), stage)
	return append(keep, &rule.Node{Op: rule.OpOpaque, Text: text, Pos: n.Pos})
}

// shapeLet names, on a tabular let's stage, the first operator of its pipeline that
// joins or aggregates, so a rule reading the let has the let's shape.
func (lw *lowerer) shapeLet(st *rule.Stage, p *Pipeline) {
	for _, op := range p.Ops {
		if !aggregating[op.Name] {
			continue
		}
		st.Op = op.Name
		if op.Name == "summarize" {
			// What reads the let filters its groups, if not the let itself: unlike a
			// final summarize, a let's is never a mere grouping.
			st.Aggregation = lw.aggregation(op)
			st.Kind = rule.StageAggregation
		}
		return
	}
}

// joinedPreds returns the filters of a join/lookup/union operand. Columns of an operand
// that reads another table than the main source are qualified with that table
// (DeviceFileEvents.FileName), the same Table.column convention as CIM's
// Dataset.field, so the field map resolves them in the joined table's context.
func (lw *lowerer) joinedPreds(o Expr, main *Source) []*rule.Node {
	nodes := lw.exprPipelinePreds(o)
	sq, ok := unparen(o).(*SubQuery)
	if !ok || sq.P == nil || sq.P.Source == nil || sq.P.Source.Kind != "expr" {
		return nodes
	}
	tbl := lw.sourceTable(sq.P.Source)
	if tbl == "" || tbl == lw.sourceTable(main) || !tableScoped(tbl) {
		return nodes
	}
	for _, n := range nodes {
		rule.Walk(n, func(x *rule.Node, _ bool) bool {
			if x.Op == rule.OpPred && x.Pred != nil && x.Pred.Field != "" && !strings.ContainsAny(x.Pred.Field, ".[") {
				x.Pred.Field = tbl + "." + x.Pred.Field
			}
			return true
		})
	}
	return nodes
}

// tableScoped reports whether a table's column names mean different things from one
// table of its family to another (Defender XDR's Device* tables: FileName is the
// launched image in DeviceProcessEvents, the written file in DeviceFileEvents;
// Security events; ASIM parsers). Other tables' columns keep their plain names, so
// their counts do not split between a table read first and the same table joined.
func tableScoped(t string) bool {
	return strings.HasPrefix(t, "Device") || t == "SecurityEvent" || strings.HasPrefix(t, "im")
}

// sourceTable is the table a pipeline source names directly, "" when it is not a
// plain table (a let, a function, a union).
func (lw *lowerer) sourceTable(s *Source) string {
	// Lets are followed a few deep, never round a cycle: "let y = y | ..." names itself
	// (a fuzzed input recursed until the stack overflowed).
	for range 8 {
		if s == nil || s.Kind != "expr" {
			return ""
		}
		id, ok := unparen(s.Expr).(*Ident)
		if !ok || id.Name == "*" || strings.ContainsAny(id.Name, "*?") {
			return ""
		}
		l := lw.env[id.Name]
		if l == nil {
			return id.Name
		}
		if l.Kind != LetTabular || l.Pipe == nil {
			return ""
		}
		s = l.Pipe.Source
	}
	return ""
}

// aggregatingSource reports whether a pipeline source is a let (or a chain of lets)
// that aggregates or joins.
func (lw *lowerer) aggregatingSource(s *Source, depth int) bool {
	if s == nil || depth > 4 {
		return false
	}
	if s.Kind == "union" {
		// A union of pipelines or lets aggregates when one of its members does.
		for _, m := range s.Members {
			if sq, ok := unparen(m).(*SubQuery); ok && sq.P != nil {
				if lw.aggregatingPipe(sq.P, depth+1) {
					return true
				}
				continue
			}
			if lw.aggregatingSource(&Source{Kind: "expr", Expr: m}, depth+1) {
				return true
			}
		}
		return false
	}
	if s.Kind != "expr" {
		return false
	}
	l := lw.sourceLet(s)
	if l == nil {
		return false
	}
	for _, op := range l.Pipe.Ops {
		if aggregating[op.Name] {
			return true
		}
	}
	return lw.aggregatingSource(l.Pipe.Source, depth+1)
}

// anyLetter reports whether some value holds a letter, the only characters case
// sensitivity can tell apart.
func anyLetter(vals []rule.Value) bool {
	for _, v := range vals {
		for _, r := range v.S {
			if unicode.IsLetter(r) {
				return true
			}
		}
	}
	return false
}

// groupColumns returns the event fields a summarize groups by (bare columns and their
// aliases; bin(...) and computed keys are not event fields).
func (lw *lowerer) groupColumns(op *Op) map[string]bool {
	cols := map[string]bool{}
	for _, b := range op.By {
		x := b
		if n, ok := b.(*Named); ok {
			x = n.X
			if f, _, ok := lw.field(x); !ok || f != n.Name {
				continue
			}
		}
		if _, ok := unparen(x).(*Ident); !ok {
			continue
		}
		if f, _, ok := lw.field(x); ok {
			if _, comp := lw.computed[f]; !comp {
				cols[f] = true
			}
		}
	}
	return cols
}

// onlyReads reports whether a predicate tree reads nothing but the given columns and
// holds nothing opaque.
func (lw *lowerer) onlyReads(n *rule.Node, cols map[string]bool) bool {
	ok := len(cols) > 0
	rule.Walk(n, func(x *rule.Node, _ bool) bool {
		switch x.Op {
		case rule.OpOpaque:
			ok = false
		case rule.OpPred:
			if x.Pred == nil || !cols[x.Pred.Field] {
				ok = false
			}
			if x.Pred != nil && x.Pred.Kind == rule.FieldRef {
				for _, v := range x.Pred.Values {
					ok = ok && cols[v.S]
				}
			}
		}
		return ok
	})
	return ok
}

// threshold marks a summarize stage as an aggregation because op keeps only some of
// its groups; the first comparison found names the threshold.
func (lw *lowerer) threshold(st *rule.Stage, op *Op) {
	if st.Kind == rule.StageAggregation {
		return
	}
	st.Kind = rule.StageAggregation
	if st.Aggregation == nil {
		st.Aggregation = &rule.Aggregation{Func: "summarize"}
	}
	if op.Pred != nil {
		if b, ok := unparen(op.Pred).(*Binary); ok && isComparison(b.Op) {
			st.Aggregation.Op = b.Op
			st.Aggregation.Field = lw.text(b.L.span())
			st.Aggregation.Value = lw.scalarText(b.R)
		}
	}
}

// sourceLet is the tabular let, or function called without arguments, a pipeline
// source names; nil for anything else.
func (lw *lowerer) sourceLet(s *Source) *Let {
	var name string
	switch v := unparen(s.Expr).(type) {
	case *Ident:
		name = v.Name
	case *Call:
		if len(v.Args) > 0 {
			return nil
		}
		name = v.Fn
	default:
		return nil
	}
	l := lw.env[name]
	if l == nil || l.Pipe == nil || (l.Kind != LetTabular && l.Kind != LetFunc) {
		return nil
	}
	return l
}

// aggregatingPipe reports whether a pipeline aggregates or joins, or reads a source
// that does.
func (lw *lowerer) aggregatingPipe(p *Pipeline, depth int) bool {
	for _, op := range p.Ops {
		if aggregating[op.Name] {
			return true
		}
	}
	return lw.aggregatingSource(p.Source, depth)
}
