package yaral

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ruledex/ruledex/rule"
)

// builder turns one rule's sections into IR.
type builder struct {
	r     *rule.Rule
	src   string
	u     *unit
	diags []rule.Diagnostic

	product, category, platform string

	evOrder  []string                // event variables in order of first use
	evSet    map[string]bool         // event variables
	bindings map[string][]binding    // placeholder -> fields it is bound to
	computed map[string]string       // placeholder -> function it is bound to
	lists    []string                // reference lists used
	joins    []string                // cross-event comparisons as written
	outcome  map[string]bool         // outcome variable names
	options  map[string]string       // options section
	matchVar []string                // match section variables, without $
	window   string                  // match window
	conjs    []conj                  // top-level conjuncts of the events section
	typeVals map[string][]string     // metadata.* field -> positive eq values (log source hints)
	varPreds map[string][]*rule.Node // extra per-event-variable predicates (match variables present)
	neg      bool                    // lowering under an odd number of nots
	ordered  bool                    // events compares event timestamps across variables
}

type binding struct {
	ev, path string
	text     string
	line     int
}

// conj is one top-level conjunct of the events section.
type conj struct {
	node *rule.Node
	expr *expr
	vars []string // event variables it reads
	text string
	pos  rule.Pos
}

func (b *builder) errAt(t token, code, format string, a ...any) {
	b.diag(rule.Error, t.line, t.col, code, format, a...)
}

func (b *builder) diag(sev rule.Severity, line, col int, code, format string, a ...any) {
	b.diags = append(b.diags, rule.Diagnostic{Severity: sev, Code: code, Pos: rule.Pos{Line: line, Col: col}, Message: fmt.Sprintf(format, a...)})
}

func (b *builder) text(e *expr) string {
	if e == nil || e.start < 0 || e.end > len(b.src) || e.start > e.end {
		return ""
	}
	return b.src[e.start:e.end]
}

func (b *builder) pos(e *expr) rule.Pos { return rule.Pos{Line: e.line, Col: e.col} }

// build reads one rule.
func build(src rule.Source, text string, u *unit) *rule.Rule {
	r := &rule.Rule{
		Language: rule.YaraL, Name: u.name, Title: u.name, Class: rule.Detection,
		Body: text[u.start:u.end], BodyLang: "yaral", Source: src,
	}
	r.Source.Line = strings.Count(text[:u.start], "\n") + 1
	b := &builder{r: r, src: text, u: u, evSet: map[string]bool{}, bindings: map[string][]binding{},
		computed: map[string]string{}, outcome: map[string]bool{}, options: map[string]string{},
		typeVals: map[string][]string{}, varPreds: map[string][]*rule.Node{}}
	b.diags = append(b.diags, u.diags...)
	if strings.Contains("/"+src.Path, "/_deprecated/") {
		r.Status = "deprecated"
	}
	if s := u.sections["meta"]; s != nil {
		b.meta(s)
	}
	if s := u.sections["options"]; s != nil {
		b.readOptions(s)
	}
	if s := u.sections["events"]; s != nil {
		b.events(s)
	} else {
		b.diag(rule.Error, u.nameTok.line, u.nameTok.col, "yaral/events/missing", "rule %s has no events section", u.name)
	}
	if s := u.sections["match"]; s != nil {
		b.match(s)
	}
	var outStage *section
	if s := u.sections["outcome"]; s != nil {
		b.readOutcome(s)
		outStage = s
	}
	var cond *expr
	if s := u.sections["condition"]; s != nil {
		cond = b.condition(s)
	} else {
		b.diag(rule.Error, u.nameTok.line, u.nameTok.col, "yaral/condition/missing", "rule %s has no condition section", u.name)
	}
	b.logSource()
	b.assemble(cond, outStage)
	r.Diagnostics = b.diags
	return r
}

func (b *builder) sectionText(s *section) string {
	if s == nil || len(s.toks) == 0 {
		return ""
	}
	// From the first token to the end of the last: comments after the last token
	// (often commented-out alternatives) are not part of the text.
	last := -1
	for i, t := range s.toks {
		if t.kind == tEOF {
			break
		}
		last = i
	}
	if last < 0 {
		return ""
	}
	start, end := s.toks[0].start, s.toks[last].end
	if start > end || end > len(b.src) {
		return ""
	}
	return strings.TrimSpace(b.src[start:end])
}

func (b *builder) readOptions(s *section) {
	toks := s.toks
	for i := 0; toks[i].kind != tEOF; {
		k := toks[i]
		if k.kind == tIdent && toks[i+1].text == "=" && toks[i+2].kind != tEOF {
			b.options[k.text] = toks[i+2].text
			b.r.Settings = append(b.r.Settings, rule.Setting{Name: "option " + k.text, Value: toks[i+2].text})
			i += 3
			continue
		}
		b.diag(rule.Warning, k.line, k.col, "yaral/options/syntax", "options: expected name = value, found %q", k.text)
		for i++; toks[i].kind != tEOF && !toks[i].nl; i++ {
		}
	}
}

// events parses the events section and lowers each top-level conjunct.
func (b *builder) events(s *section) {
	ps := &exprParser{toks: s.toks}
	root := ps.all()
	for _, e := range ps.errs {
		b.diag(rule.Error, e.line, e.col, "yaral/events/syntax", "events: %s", e.msg)
	}
	var flat []*expr
	var flatten func(e *expr)
	flatten = func(e *expr) {
		if e.k == eAnd && e.quant == "" {
			for _, k := range e.kids {
				flatten(k)
			}
			return
		}
		flat = append(flat, e)
	}
	flatten(root)
	// Event variables first, so a comparison can tell an event field from a placeholder.
	for _, e := range flat {
		walkExpr(e, func(x *expr) {
			if x.k == eField && !b.evSet[x.name] {
				b.evSet[x.name] = true
				b.evOrder = append(b.evOrder, x.name)
			}
		})
	}
	for _, e := range flat {
		n := b.lower(e)
		if n == nil {
			continue
		}
		b.conjs = append(b.conjs, conj{node: n, expr: e, vars: fieldVars(e), text: b.text(e), pos: b.pos(e)})
	}
}

func walkExpr(e *expr, fn func(*expr)) {
	if e == nil {
		return
	}
	fn(e)
	walkExpr(e.l, fn)
	walkExpr(e.r, fn)
	for _, k := range e.kids {
		walkExpr(k, fn)
	}
}

func fieldVars(e *expr) []string {
	var out []string
	walkExpr(e, func(x *expr) {
		if x.k == eField {
			out = appendUniq(out, x.name)
		}
	})
	return out
}

// lower turns an events expression into a node; nil when the expression only binds
// placeholders (which constrain matching through match and condition, not as filters).
func (b *builder) lower(e *expr) *rule.Node {
	switch e.k {
	case eAnd, eOr:
		var kids []*rule.Node
		for _, k := range e.kids {
			if n := b.lower(k); n != nil {
				kids = append(kids, n)
			} else if e.k == eOr {
				// A binding inside an or cannot be dropped without changing the logic.
				return b.opaque(e, "a placeholder assignment inside or")
			}
		}
		switch len(kids) {
		case 0:
			return nil
		case 1:
			return kids[0]
		}
		n := &rule.Node{Op: rule.OpAnd, Children: kids, Pos: b.pos(e)}
		if e.k == eOr {
			n.Op = rule.OpOr
		}
		return n
	case eNot:
		b.neg = !b.neg
		n := b.lower(e.kids[0])
		b.neg = !b.neg
		if n == nil {
			return b.opaque(e, "not applied to a placeholder assignment")
		}
		return &rule.Node{Op: rule.OpNot, Children: []*rule.Node{n}, Pos: b.pos(e)}
	case eCmp:
		return b.lowerCmp(e)
	case eCall:
		return b.lowerCall(e)
	case eBad:
		return &rule.Node{Op: rule.OpOpaque, Text: b.text(e), Pos: b.pos(e)}
	}
	return b.opaque(e, "a bare value where a test was expected")
}

func (b *builder) opaque(e *expr, why string) *rule.Node {
	b.diag(rule.Warning, e.line, e.col, "yaral/events/unsupported", "events: %s kept as opaque text: %s", why, short(b.text(e)))
	return &rule.Node{Op: rule.OpOpaque, Text: b.text(e), Pos: b.pos(e)}
}

// oneLine joins a source fragment's lines with single spaces.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// native is a predicate's text as written, on one line when it spans several
// (white space inside a literal on one line is kept).
func native(s string) string {
	s = strings.TrimSpace(s)
	if strings.ContainsAny(s, "\n\r") {
		return oneLine(s)
	}
	return s
}

// short is oneLine cut for diagnostic messages.
func short(s string) string {
	s = oneLine(s)
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

var mirror = map[string]string{"=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}

var opKind = map[string]rule.Kind{"=": rule.Eq, "!=": rule.Ne, "<": rule.Lt, "<=": rule.Le, ">": rule.Gt, ">=": rule.Ge}

func isOperand(e *expr) bool { return e != nil && (e.k == eField || e.k == eCall || e.k == eVar) }

func (b *builder) lowerCmp(e *expr) *rule.Node {
	l, r, op := e.l, e.r, e.op
	if op != "in" && !isOperand(l) && isOperand(r) {
		l, r, op = r, l, mirror[op]
	}
	if op == "in" {
		if l.k != eField || r.k != eList {
			return b.opaque(e, "a list membership test not on an event field")
		}
		kind := rule.In
		switch e.inMode {
		case "regex":
			kind = rule.Regex
		case "cidr":
			kind = rule.CIDR
		}
		b.addList(r.name)
		p := b.pred(e, l, kind, rule.Value{S: "%" + r.name, Type: rule.ListRef})
		if e.nocase && kind == rule.Regex {
			p.Transforms = append(p.Transforms, rule.TIgnoreCase)
		} else if !e.nocase && kind == rule.In {
			p.Transforms = append(p.Transforms, rule.TCased)
		}
		return b.quant(e, p)
	}
	switch l.k {
	case eField:
		return b.fieldCmp(e, l, r, op)
	case eCall:
		return b.callCmp(e, l, r, op)
	case eVar:
		if r.k == eField || r.k == eCall {
			return b.fieldCmp(e, r, l, mirror[op])
		}
	}
	return b.opaque(e, "a comparison between values that are not event fields")
}

// pred makes a predicate on field f of an event variable.
func (b *builder) pred(e, f *expr, kind rule.Kind, vals ...rule.Value) *rule.Pred {
	return &rule.Pred{Field: f.path, Kind: kind, Values: vals, Native: native(b.text(e)), Pos: b.pos(e)}
}

func (b *builder) quant(e *expr, p *rule.Pred) *rule.Node {
	switch e.quant {
	case "any":
		p.Transforms = append(p.Transforms, rule.TElem)
	case "all":
		p.Transforms = append(p.Transforms, rule.TElem)
		p.All = true
	}
	return &rule.Node{Op: rule.OpPred, Pred: p, Pos: p.Pos}
}

func litValue(x *expr) (rule.Value, bool) {
	if x.k != eLit {
		return rule.Value{}, false
	}
	switch x.lit {
	case tNumber:
		return rule.Value{S: x.val, Type: rule.Number}, true
	case tIdent:
		switch x.val {
		case "true", "false":
			return rule.Value{S: x.val, Type: rule.Bool}, true
		case "null":
			return rule.Value{S: "", Type: rule.Null}, true
		}
	}
	// Strings, raw strings and enum names (PROCESS_LAUNCH unquoted) compare as text.
	return rule.Value{S: x.val}, true
}

func (b *builder) fieldCmp(e, f, r *expr, op string) *rule.Node {
	if f.k == eCall {
		return b.callCmp(e, f, r, op)
	}
	switch r.k {
	case eLit:
		v, _ := litValue(r)
		kind := opKind[op]
		if v.Type == rule.Null {
			// YARA-L has no null; kept for converted rules that write one.
			kind = rule.IsNull
			if op == "!=" {
				kind = rule.IsNotNull
			}
			return b.quant(e, b.pred(e, f, kind))
		}
		if (v.Type == "" || v.Type == rule.String) && v.S == "" && (op == "=" || op == "!=") && r.lit != tIdent {
			// UDM has no null: an unset string field reads as "", so `!= ""` is
			// presence and `= ""` absence.
			kind = rule.IsNull
			if op == "!=" {
				kind = rule.IsNotNull
			}
			return b.quant(e, b.pred(e, f, kind))
		}
		p := b.pred(e, f, kind, v)
		// YARA-L string comparisons are case-sensitive unless nocase is written.
		if (v.Type == "" || v.Type == rule.String) && !e.nocase && hasCase(v.S) {
			p.Transforms = append(p.Transforms, rule.TCased)
		}
		if v.Type == "" || v.Type == rule.String {
			b.noteType(f.path, op, v.S, e)
		}
		return b.quant(e, p)
	case eRegex:
		if op != "=" && op != "!=" {
			return b.opaque(e, "an ordering comparison with a regular expression")
		}
		n := b.quant(e, b.regexPred(e, f, r.val, e.nocase))
		if op == "!=" {
			return &rule.Node{Op: rule.OpNot, Children: []*rule.Node{n}, Pos: n.Pos}
		}
		return n
	case eVar:
		if op == "=" && e.quant == "" {
			b.bindings[r.name] = append(b.bindings[r.name], binding{ev: f.name, path: f.path, text: oneLine(b.text(e)), line: e.line})
			return nil
		}
		return b.opaque(e, "a comparison with a placeholder other than assignment")
	case eField:
		if r.name == f.name && (op == "=" || op == "!=") {
			p := b.pred(e, f, rule.FieldRef, rule.Value{S: r.path})
			if !e.nocase {
				p.Transforms = append(p.Transforms, rule.TCased)
			}
			n := b.quant(e, p)
			if op == "!=" {
				return &rule.Node{Op: rule.OpNot, Children: []*rule.Node{n}, Pos: n.Pos}
			}
			return n
		}
		if r.name != f.name {
			// Joins and orderings between event variables belong to the correlation.
			b.joins = append(b.joins, oneLine(b.text(e)))
			if op != "=" && op != "!=" && strings.Contains(f.path, "event_timestamp") && strings.Contains(r.path, "event_timestamp") {
				b.ordered = true
			}
			return nil
		}
	case eList:
		b.addList(r.name)
		p := b.pred(e, f, rule.In, rule.Value{S: "%" + r.name, Type: rule.ListRef})
		return b.quant(e, p)
	}
	return b.opaque(e, "a comparison this reader does not model")
}

func (b *builder) addList(name string) {
	for _, l := range b.lists {
		if l == name {
			return
		}
	}
	b.lists = append(b.lists, name)
	b.r.Settings = append(b.r.Settings, rule.Setting{Name: "reference list", Value: "%" + name})
}

// noteType remembers positive equality tests on metadata fields for the log source.
func (b *builder) noteType(path, op, val string, e *expr) {
	if op != "=" || b.neg || !strings.HasPrefix(path, "metadata.") {
		return
	}
	b.typeVals[path] = append(b.typeVals[path], val)
}

// caseFold reports how a case-changing wrapper changes a comparison with val:
// ok is false when val can never match (strings.to_lower(f) = "Abc").
func caseFold(fn, val string) (folded, ok bool) {
	switch fn {
	case "strings.to_lower":
		return true, strings.ToLower(val) == val
	case "strings.to_upper":
		return true, strings.ToUpper(val) == val
	}
	return false, true
}

// unwrapField returns the event field under an optional strings.to_lower/to_upper.
func unwrapField(x *expr) (field *expr, wrapper string) {
	if x == nil {
		return nil, ""
	}
	if x.k == eField {
		return x, ""
	}
	if x.k == eCall && (x.name == "strings.to_lower" || x.name == "strings.to_upper") && len(x.kids) == 1 && x.kids[0].k == eField {
		return x.kids[0], x.name
	}
	return nil, ""
}

// callCmp: a function of an event field compared with a value.
func (b *builder) callCmp(e, call, r *expr, op string) *rule.Node {
	if r.k == eVar && op == "=" {
		b.computed[r.name] = oneLine(b.text(call))
		return nil
	}
	if f, wrap := unwrapField(call); f != nil && wrap != "" && r.k == eLit && (op == "=" || op == "!=") {
		v, _ := litValue(r)
		if _, ok := caseFold(wrap, v.S); !ok {
			return b.opaque(e, "a case-converted field compared with a value of the other case")
		}
		p := b.pred(e, f, opKind[op], v)
		return b.quant(e, p)
	}
	if call.k == eCall && r.k == eLit && r.lit == tIdent && (r.val == "true" || r.val == "false") && (op == "=" || op == "!=") {
		n := b.lowerCall(call)
		if (r.val == "false") != (op == "!=") {
			return &rule.Node{Op: rule.OpNot, Children: []*rule.Node{n}, Pos: n.Pos}
		}
		return n
	}
	return b.opaque(e, "a comparison on the result of "+call.name)
}

// lowerCall lowers a boolean function: re.regex, strings.contains/starts_with/
// ends_with, net.ip_in_range_cidr.
func (b *builder) lowerCall(e *expr) *rule.Node {
	var kind rule.Kind
	switch e.name {
	case "re.regex":
		kind = rule.Regex
	case "strings.contains":
		kind = rule.Match
	case "strings.starts_with":
		kind = rule.StartsW
	case "strings.ends_with":
		kind = rule.EndsW
	case "net.ip_in_range_cidr":
		kind = rule.CIDR
	default:
		return b.opaque(e, "function "+e.name)
	}
	if len(e.kids) != 2 {
		return b.opaque(e, fmt.Sprintf("%s with %d arguments", e.name, len(e.kids)))
	}
	f, wrap := unwrapField(e.kids[0])
	arg := e.kids[1]
	if f == nil || arg.k != eLit || arg.lit == tNumber || arg.lit == tIdent {
		if f != nil && arg.k == eList {
			b.addList(arg.name)
			return b.quant(e, b.pred(e, f, kind, rule.Value{S: "%" + arg.name, Type: rule.ListRef}))
		}
		return b.opaque(e, e.name+" not of an event field and a literal")
	}
	val := arg.val
	if kind == rule.Regex {
		// re.regex is a partial (unanchored) match: the IR's regex convention. nocase
		// folds case; so does lower-casing the field before an all-lowercase pattern.
		if wrap != "" && !foldablePattern(val, wrap) {
			return b.opaque(e, "a regular expression with letters of the other case on a case-converted field")
		}
		return b.quant(e, b.regexPred(e, f, val, e.nocase || wrap != ""))
	}
	p := b.pred(e, f, kind, rule.Value{S: val})
	switch kind {
	case rule.CIDR:
	default:
		if wrap != "" {
			if _, ok := caseFold(wrap, val); !ok {
				return b.opaque(e, "a case-converted field compared with a value of the other case")
			}
		} else if !e.nocase && hasCase(val) {
			p.Transforms = append(p.Transforms, rule.TCased)
		}
	}
	return b.quant(e, p)
}

// foldablePattern: a pattern without letters of the wrong case outside escapes matches
// a lower-cased (upper-cased) field exactly when it matches the field ignoring case.
func foldablePattern(re, wrap string) bool {
	for i := 0; i < len(re); i++ {
		c := re[i]
		if c == '\\' {
			i++
			continue
		}
		if wrap == "strings.to_lower" && c >= 'A' && c <= 'Z' || wrap == "strings.to_upper" && c >= 'a' && c <= 'z' {
			return false
		}
	}
	return true
}

// match reads `$a, $b over 5m [before|after $e]`.
func (b *builder) match(s *section) {
	toks := s.toks
	i := 0
	for ; toks[i].kind != tEOF; i++ {
		t := toks[i]
		if t.kind == tVar {
			b.matchVar = append(b.matchVar, t.text)
			continue
		}
		if t.kind == tPunct && t.text == "," {
			continue
		}
		break
	}
	t := toks[i]
	if t.kind != tIdent || !strings.EqualFold(t.text, "over") || toks[i+1].kind == tEOF || len(b.matchVar) == 0 {
		b.errAt(t, "yaral/match/syntax", "match: expected $var[, $var...] over <window>, found %q", tokText(t))
	} else {
		b.window = toks[i+1].text
	}
	for _, v := range b.matchVar {
		if len(b.bindings[v]) == 0 && b.computed[v] == "" && !b.evSet[v] {
			b.diag(rule.Error, s.head.line, s.head.col, "yaral/match/unknown-var", "match: $%s is not assigned in the events section", v)
		}
	}
	b.r.Settings = append(b.r.Settings, rule.Setting{Name: "match", Value: oneLine(b.sectionText(s))})
	b.r.Timeframe = b.window
	// Chronicle drops events whose match variables hold the zero value unless the rule
	// sets allow_zero_values, so each binding of a match variable is also a filter.
	if b.options["allow_zero_values"] != "true" {
		for _, v := range b.matchVar {
			for _, bd := range b.bindings[v] {
				p := &rule.Pred{Field: bd.path, Kind: rule.IsNotNull, Native: bd.text + " (match variable: zero values dropped)",
					Pos: rule.Pos{Line: bd.line}}
				b.varPreds[bd.ev] = append(b.varPreds[bd.ev], &rule.Node{Op: rule.OpPred, Pred: p, Pos: p.Pos})
			}
		}
	}
}

// readOutcome records each `$name = expression` as a computed column and output.
func (b *builder) readOutcome(s *section) {
	toks := s.toks
	type stmt struct {
		name       string
		tok        token
		start, end int // token indexes of the expression
	}
	var stmts []stmt
	last := 0 // index of the section's end
	for ; toks[last].kind != tEOF; last++ {
	}
	for i := 0; toks[i].kind != tEOF; i++ {
		t := toks[i]
		if t.kind == tVar && (t.nl || i == 0) && toks[i+1].kind == tPunct && toks[i+1].text == "=" {
			if len(stmts) > 0 {
				stmts[len(stmts)-1].end = i
			}
			stmts = append(stmts, stmt{name: t.text, tok: t, start: i + 2})
			i++
			continue
		}
		if len(stmts) == 0 {
			b.diag(rule.Warning, t.line, t.col, "yaral/outcome/syntax", "outcome: expected $name = expression, found %q", t.text)
			for ; toks[i+1].kind != tEOF && !toks[i+1].nl; i++ {
			}
		}
	}
	if len(stmts) > 0 {
		stmts[len(stmts)-1].end = last
	}
	for _, st := range stmts {
		if st.start >= st.end {
			b.diag(rule.Warning, st.tok.line, st.tok.col, "yaral/outcome/syntax", "outcome $%s has no expression", st.name)
			continue
		}
		sub := padEOF(append([]token{}, toks[st.start:st.end]...), token{kind: tEOF, start: toks[st.end].start, line: toks[st.end].line, col: toks[st.end].col})
		ps := &exprParser{toks: sub}
		x := ps.or(0)
		for _, e := range ps.errs {
			b.diag(rule.Warning, e.line, e.col, "yaral/outcome/syntax", "outcome $%s: %s", st.name, e.msg)
		}
		if ps.peek().kind != tEOF && len(ps.errs) == 0 {
			t := ps.peek()
			b.diag(rule.Warning, t.line, t.col, "yaral/outcome/syntax", "outcome $%s: unexpected %q", st.name, t.text)
		}
		def := strings.TrimSpace(b.src[toks[st.start].start:toks[st.end-1].end])
		b.outcome[st.name] = true
		b.r.Outputs = append(b.r.Outputs, "$"+st.name)
		b.r.Computed = append(b.r.Computed, rule.Computed{Name: "$" + st.name, Definition: def})
		// Community rules state ATT&CK ids as outcome columns ($mitre_attack_technique_id).
		if (strings.Contains(st.name, "mitre") || strings.Contains(st.name, "technique") || strings.Contains(st.name, "tactic")) &&
			x != nil && x.k == eLit && x.lit == tString {
			b.attack(st.name, x.val)
		}
		if st.name == "risk_score" {
			if n, ok := constInt(x); ok {
				b.r.RiskScore = n
			}
		}
	}
}

// constInt evaluates 35 and max(35) (a constant aggregated is the constant).
func constInt(x *expr) (int, bool) {
	if x == nil {
		return 0, false
	}
	if x.k == eCall && len(x.kids) == 1 && (x.name == "max" || x.name == "min") {
		x = x.kids[0]
	}
	if x.k == eLit && x.lit == tNumber {
		f, err := strconv.ParseFloat(x.val, 64)
		if err == nil {
			return int(f), true
		}
	}
	return 0, false
}

// condTerm is one term of the condition.
type condTerm struct {
	ev      string // event variable present (or absent when negated)
	negated bool
	count   string // #name
	outVar  string // $outcome compared
	op      string
	value   string
	line    int
	col     int
}

func (b *builder) condition(s *section) *expr {
	ps := &exprParser{toks: s.toks}
	x := ps.all()
	for _, e := range ps.errs {
		b.diag(rule.Error, e.line, e.col, "yaral/condition/syntax", "condition: %s", e.msg)
	}
	b.r.Condition = oneLine(b.sectionText(s))
	if len(x.kids) == 1 {
		return x.kids[0]
	}
	if len(x.kids) == 0 {
		b.diag(rule.Error, s.head.line, s.head.col, "yaral/condition/syntax", "condition: empty")
		return nil
	}
	return x
}

// condTerms lists the condition's terms; conj is false when they are not all AND-ed.
func (b *builder) condTerms(x *expr) (terms []condTerm, conj bool) {
	conj = true
	var walk func(x *expr, neg bool)
	walk = func(x *expr, neg bool) {
		if x == nil {
			return
		}
		switch x.k {
		case eAnd:
			for _, k := range x.kids {
				walk(k, neg)
			}
		case eOr:
			conj = false
			for _, k := range x.kids {
				walk(k, neg)
			}
		case eNot:
			walk(x.kids[0], !neg)
		case eVar:
			if b.evSet[x.name] {
				terms = append(terms, condTerm{ev: x.name, negated: neg, line: x.line, col: x.col})
				return
			}
			b.diag(rule.Error, x.line, x.col, "yaral/condition/unknown-var", "condition: $%s is not an event variable", x.name)
		case eCmp:
			t := condTerm{op: x.op, value: b.text(x.r), negated: neg, line: x.line, col: x.col}
			switch x.l.k {
			case eCount:
				t.count = x.l.name
				if !b.evSet[x.l.name] && len(b.bindings[x.l.name]) == 0 && b.computed[x.l.name] == "" {
					b.diag(rule.Error, x.line, x.col, "yaral/condition/unknown-var", "condition: #%s counts no event or placeholder variable", x.l.name)
				}
			case eVar:
				t.outVar = x.l.name
				if !b.outcome[x.l.name] {
					b.diag(rule.Error, x.line, x.col, "yaral/condition/unknown-var", "condition: $%s is not an outcome variable", x.l.name)
				}
			default:
				b.diag(rule.Warning, x.line, x.col, "yaral/condition/unsupported", "condition: comparison %s not modeled", short(b.text(x)))
			}
			terms = append(terms, t)
		default:
			b.diag(rule.Error, x.line, x.col, "yaral/condition/syntax", "condition: unexpected %s", short(b.text(x)))
		}
	}
	walk(x, false)
	return terms, conj
}

var thresholdOp = map[string]string{">": "gt", ">=": "gte", "<": "lt", "<=": "lte", "=": "eq", "==": "eq", "!=": "neq"}

// assemble builds Root, Stages and Correlation from what the sections gave.
func (b *builder) assemble(cond *expr, outcome *section) {
	r := b.r
	terms, conj := b.condTerms(cond)
	present := map[string]bool{}
	var thresholds []condTerm
	for _, t := range terms {
		if t.ev != "" && !t.negated {
			present[t.ev] = true
		}
		if t.ev != "" && t.negated {
			b.diag(rule.Warning, t.line, t.col, "yaral/condition/absence", "condition: !$%s (absence of an event) kept in the correlation only", t.ev)
		}
		if t.count != "" || t.outVar != "" {
			thresholds = append(thresholds, t)
		}
		if t.count != "" && !t.negated {
			if b.evSet[t.count] {
				present[t.count] = true
			}
			// Counting a placeholder's values needs the events that bind it.
			for _, bd := range b.bindings[t.count] {
				present[bd.ev] = true
			}
		}
	}
	if cond != nil && len(present) == 0 && len(b.evOrder) > 0 {
		b.diag(rule.Error, cond.line, cond.col, "yaral/condition/no-event", "condition names no event variable of the events section")
	}
	r.Stages = append(r.Stages, rule.Stage{Index: 0, Kind: rule.StageCondition, Label: "condition", Text: r.Condition})
	if cond != nil {
		r.Stages[0].Pos = b.pos(cond)
	}
	// Group-by: a match variable bound to one field of one event reads as that field.
	var groupBy []string
	aliases := map[string]map[string]string{}
	for _, v := range b.matchVar {
		bs := b.bindings[v]
		if len(bs) == 1 && len(b.evOrder) == 1 {
			groupBy = append(groupBy, bs[0].path)
		} else {
			groupBy = append(groupBy, "$"+v)
		}
	}
	for v, bs := range b.bindings {
		if len(bs) < 2 {
			continue
		}
		byEv := map[string]string{}
		for _, bd := range bs {
			if prev, ok := byEv[bd.ev]; ok && prev != bd.path {
				// Two fields of one event bound to one placeholder: they are equal.
				p := &rule.Pred{Field: prev, Kind: rule.FieldRef, Values: []rule.Value{{S: bd.path}}, Transforms: []string{rule.TCased},
					Native: bd.text + " (placeholder $" + v + " shared)", Pos: rule.Pos{Line: bd.line}}
				b.varPreds[bd.ev] = append(b.varPreds[bd.ev], &rule.Node{Op: rule.OpPred, Pred: p, Pos: p.Pos})
				continue
			}
			byEv[bd.ev] = bd.path
		}
		if len(byEv) > 1 {
			aliases[v] = byEv
		}
	}
	for _, j := range b.joins {
		r.Settings = append(r.Settings, rule.Setting{Name: "join", Value: j})
	}
	r.GroupBy = groupBy

	single := len(b.evOrder) <= 1
	if single {
		var kids []*rule.Node
		for _, c := range b.conjs {
			if b.isLogSource(c.node) {
				// The event type is the rule's log source, as a Sigma logsource or a KQL
				// table is: the category scope says it, so it is not a predicate of
				// Root (else no rule of another language could ever be equivalent).
				r.Stages = append(r.Stages, rule.Stage{Index: len(r.Stages), Kind: rule.StageSelection,
					Label: "log source: " + c.node.Pred.Field, Text: c.text, Pos: c.pos})
				continue
			}
			kids = append(kids, c.node)
			r.Stages = append(r.Stages, b.conjStage(len(r.Stages), c))
		}
		if last := r.Stages[len(r.Stages)-1]; len(kids) == 1 && last.Node == kids[0] && len(b.varPreds[b.firstEv()]) == 0 {
			// The whole filter is one or: its alternatives show as Sigma's do.
			if alts := b.altStages(last.Index, b.conjs[len(b.conjs)-1]); alts != nil {
				r.Stages = append(r.Stages[:len(r.Stages)-1], alts...)
			}
		}
		for _, ev := range b.evOrder {
			for _, n := range b.varPreds[ev] {
				kids = append(kids, n)
				r.Stages = append(r.Stages, rule.Stage{Index: len(r.Stages), Kind: rule.StageSelection, Label: "$" + ev + ": " + n.Pred.Field,
					Text: n.Pred.Native, Node: n, Pos: n.Pos})
			}
		}
		switch len(kids) {
		case 0:
			r.Root = &rule.Node{Op: rule.OpTrue}
		case 1:
			r.Root = kids[0]
		default:
			r.Root = &rule.Node{Op: rule.OpAnd, Children: kids}
		}
		if len(b.matchVar) > 0 {
			r.Stages = append(r.Stages, rule.Stage{Index: len(r.Stages), Kind: rule.StagePipeline, Op: "match", Label: "match",
				Text: b.sectionText(b.u.sections["match"]), Pos: b.headPos("match")})
		}
	} else {
		c := &rule.Correlation{Type: "temporal", GroupBy: append([]string{}, b.matchVar...), Timespan: b.window}
		if b.ordered {
			c.Type = "temporal_ordered"
		}
		if len(aliases) > 0 {
			c.Aliases = aliases
		}
		for _, ev := range b.evOrder {
			c.Rules = append(c.Rules, ev)
			var kids []*rule.Node
			var texts []string
			var pos rule.Pos
			for _, cj := range b.conjs {
				if len(cj.vars) == 1 && cj.vars[0] == ev {
					kids = append(kids, cj.node)
					texts = append(texts, cj.text)
					if pos.Line == 0 {
						pos = cj.pos
					}
				}
			}
			kids = append(kids, b.varPreds[ev]...)
			var n *rule.Node
			switch len(kids) {
			case 0:
			case 1:
				n = kids[0]
			default:
				n = &rule.Node{Op: rule.OpAnd, Children: kids}
			}
			st := rule.Stage{Index: len(r.Stages), Kind: rule.StageSelection, Label: "$" + ev, Text: strings.Join(texts, "\n"), Node: n, Pos: pos}
			r.Stages = append(r.Stages, st)
		}
		for _, cj := range b.conjs {
			if len(cj.vars) != 1 {
				b.diag(rule.Warning, cj.pos.Line, cj.pos.Col, "yaral/events/cross", "events: a test over several event variables kept in the correlation: %s", short(cj.text))
				r.Settings = append(r.Settings, rule.Setting{Name: "join", Value: oneLine(cj.text)})
			}
		}
		for _, t := range thresholds {
			if t.count != "" && b.evSet[t.count] {
				if f, err := strconv.ParseFloat(t.value, 64); err == nil {
					c.Conditions = append(c.Conditions, rule.Threshold{Op: thresholdOp[t.op], Value: f})
				}
			}
		}
		if len(c.Conditions) > 0 && len(b.evOrder) == 1 {
			c.Type = "event_count"
		}
		if !conj {
			// Sigma's correlation types need every rule; an or of event variables has
			// no counterpart, so the type is kept and the condition says the rest.
			b.diag(rule.Warning, cond.line, cond.col, "yaral/condition/or", "condition: alternatives between event variables are shown as written; the correlation lists every variable")
		}
		r.Correlation = c
		text := "condition: " + r.Condition
		if len(b.matchVar) > 0 {
			text = "match: " + oneLine(b.sectionText(b.u.sections["match"])) + "\n" + text
		}
		r.Stages = append(r.Stages, rule.Stage{Index: len(r.Stages), Kind: rule.StageCorrelation, Label: "match", Op: "match", Text: text,
			Pos: b.headPos("condition")})
	}
	if outcome != nil {
		idx := len(r.Stages)
		r.Stages = append(r.Stages, rule.Stage{Index: idx, Kind: rule.StagePipeline, Op: "outcome", Label: "outcome",
			Text: b.sectionText(outcome), Pos: b.headPos("outcome")})
		for i := range r.Computed {
			r.Computed[i].Stage = idx
		}
	}
	// Thresholds on counts or outcome values make a single-event rule an aggregation.
	if single && len(thresholds) > 0 {
		st := rule.Stage{Index: len(r.Stages), Kind: rule.StageAggregation, Label: "condition", Op: "condition", Text: r.Condition, Pos: b.headPos("condition")}
		if len(thresholds) == 1 {
			t := thresholds[0]
			a := &rule.Aggregation{GroupBy: groupBy, Op: t.op, Value: t.value, Timespan: b.window}
			switch {
			case t.count != "" && b.evSet[t.count]:
				a.Func = "count"
			case t.count != "":
				a.Func = "value_count"
				a.Field = "$" + t.count
				if bs := b.bindings[t.count]; len(bs) == 1 {
					a.Field = bs[0].path
				}
			default:
				a.Func = "outcome"
				a.Field = "$" + t.outVar
			}
			st.Aggregation = a
		}
		r.Stages = append(r.Stages, st)
	}
}

// isLogSource: a top-level `$e.metadata.event_type = "X"` whose type gave the rule's
// category.
func (b *builder) isLogSource(n *rule.Node) bool {
	if n.Op != rule.OpPred || n.Pred.Field != "metadata.event_type" || n.Pred.Kind != rule.Eq || len(n.Pred.Values) != 1 {
		return false
	}
	c, ok := eventCategory[n.Pred.Values[0].S]
	return ok && c == b.r.LogSource.Category && len(n.Pred.Transforms) == 1
}

func (b *builder) headPos(name string) rule.Pos {
	if s := b.u.sections[name]; s != nil {
		return rule.Pos{Line: s.head.line, Col: s.head.col}
	}
	return rule.Pos{}
}

func (b *builder) firstEv() string {
	if len(b.evOrder) == 0 {
		return ""
	}
	return b.evOrder[0]
}

// altStages splits a top-level or into alternatives (Stage.Alt from 1), each of its
// conjuncts a stage; nil when the or's lowered children do not line up with the
// source (a dropped binding).
func (b *builder) altStages(first int, c conj) []rule.Stage {
	n, e := c.node, c.expr
	if n.Op != rule.OpOr || e.k != eOr || len(n.Children) != len(e.kids) {
		return nil
	}
	var out []rule.Stage
	for i, alt := range n.Children {
		ae := e.kids[i]
		parts, exprs := []*rule.Node{alt}, []*expr{ae}
		if alt.Op == rule.OpAnd && ae.k == eAnd && len(alt.Children) == len(ae.kids) {
			parts, exprs = alt.Children, ae.kids
		}
		for j, part := range parts {
			st := b.conjStage(first+len(out), conj{node: part, expr: exprs[j], vars: c.vars, text: b.text(exprs[j]), pos: b.pos(exprs[j])})
			st.Alt = i + 1
			out = append(out, st)
		}
	}
	return out
}

// conjStage is the page stage of one top-level conjunct of a single-event rule.
func (b *builder) conjStage(idx int, c conj) rule.Stage {
	st := rule.Stage{Index: idx, Kind: rule.StageSelection, Text: c.text, Node: c.node, Pos: c.pos}
	ev := ""
	if len(c.vars) > 0 {
		ev = "$" + c.vars[0] + ": "
	}
	n := c.node
	if n.Op == rule.OpNot {
		st.Negated = true
		n = n.Children[0]
	}
	var fields []string
	for _, pp := range rule.Preds(n) {
		fields = appendUniq(fields, pp.Pred.Field)
	}
	label := strings.Join(fields, ", ")
	if len(fields) > 3 {
		label = strings.Join(fields[:3], ", ") + ", ..."
	}
	if label == "" {
		label = "opaque"
	}
	if st.Negated {
		label = "not " + label
	}
	st.Label = ev + label
	return st
}

// eventCategory maps UDM event types to the Sigma categories the event catalog knows.
var eventCategory = map[string]string{
	"PROCESS_LAUNCH": "process_creation", "PROCESS_OPEN": "process_access", "PROCESS_INJECTION": "create_remote_thread",
	"PROCESS_MODULE_LOAD": "image_load", "FILE_CREATION": "file_event", "FILE_MODIFICATION": "file_change",
	"FILE_DELETION": "file_delete", "FILE_MOVE": "file_rename", "FILE_READ": "file_access",
	"REGISTRY_CREATION": "registry_add", "REGISTRY_MODIFICATION": "registry_set", "REGISTRY_DELETION": "registry_delete",
	"NETWORK_DNS": "dns_query", "NETWORK_CONNECTION": "network_connection", "NETWORK_HTTP": "proxy",
	"SERVICE_CREATION": "service_creation",
}

// sysmonCategory maps Windows event ids written as metadata.product_event_type (rules
// converted from Sigma keep them) to categories.
var sysmonCategory = map[string]string{
	"1": "process_creation", "4688": "process_creation", "3": "network_connection", "5156": "network_connection",
	"7": "image_load", "8": "create_remote_thread", "10": "process_access", "11": "file_event",
	"12": "registry_event", "13": "registry_event", "14": "registry_event", "22": "dns_query",
	"17": "pipe_created", "18": "pipe_created", "6": "driver_load", "15": "create_stream_hash", "23": "file_delete", "26": "file_delete",
}

func (b *builder) logSource() {
	r := b.r
	ls := &r.LogSource
	for _, v := range b.typeVals["metadata.event_type"] {
		ls.EventTypes = appendUniq(ls.EventTypes, v)
	}
	ls.Category = b.category
	if ls.Category == "" {
		ls.Category = sameCategory(ls.EventTypes, eventCategory)
	}
	if ls.Category == "" && (b.product == "windows" || ls.Service == "sysmon" || ls.Service == "security" || strings.EqualFold(b.platform, "windows")) {
		ls.Category = sameCategory(b.typeVals["metadata.product_event_type"], sysmonCategory)
	}
	ls.Product = b.product
	if ls.Product == "" && b.platform != "" && !strings.ContainsAny(b.platform, ", ") {
		ls.Product = strings.ToLower(b.platform)
	}
	for _, f := range []string{"metadata.product_name", "metadata.vendor_name"} {
		if ls.Product == "" && len(b.typeVals[f]) > 0 {
			ls.Product = strings.ToLower(b.typeVals[f][0])
		}
	}
}

// sameCategory returns the category all values map to, "" when they disagree or none maps.
func sameCategory(vals []string, m map[string]string) string {
	cat := ""
	for _, v := range vals {
		c, ok := m[v]
		if !ok {
			continue
		}
		if cat != "" && cat != c {
			// Registry sub-kinds together are still registry events.
			if strings.HasPrefix(cat, "registry_") && strings.HasPrefix(c, "registry_") {
				cat = "registry_event"
				continue
			}
			return ""
		}
		cat = c
	}
	return cat
}

// simpleRegex recognizes regular expressions that are a literal with optional anchors
// (`\\bitsadmin\.exe$`, `.*\\Temp\\.*`) and returns the equivalent kind and literal, so
// the same test counts with other languages' ends_with/contains. The search is
// unanchored, so a leading or trailing `.*` adds nothing and an anchor is needed for
// starts_with/ends_with. ci reports a leading (?i).
func simpleRegex(re string) (kind rule.Kind, lit string, ci, ok bool) {
	if strings.HasPrefix(re, "(?i)") {
		re, ci = re[4:], true
	}
	start, end := false, false
	if strings.HasPrefix(re, "^") {
		start, re = true, re[1:]
	} else {
		re = strings.TrimPrefix(re, ".*")
	}
	if strings.HasSuffix(re, "$") && !strings.HasSuffix(re, `\$`) {
		end, re = true, re[:len(re)-1]
	} else if strings.HasSuffix(re, ".*") && !strings.HasSuffix(re, `\.*`) {
		re = re[:len(re)-2]
	}
	var b strings.Builder
	for i := 0; i < len(re); i++ {
		c := re[i]
		switch {
		case c == '\\':
			if i+1 >= len(re) {
				return "", "", false, false
			}
			n := re[i+1]
			if n >= 'a' && n <= 'z' || n >= 'A' && n <= 'Z' || n >= '0' && n <= '9' || n >= 0x80 {
				return "", "", false, false
			}
			b.WriteByte(n)
			i++
		case strings.IndexByte(".^$*+?()[]{}|", c) >= 0:
			return "", "", false, false
		default:
			b.WriteByte(c)
		}
	}
	lit = b.String()
	if lit == "" {
		return "", "", false, false
	}
	switch {
	case start && end:
		kind = rule.Eq
	case start:
		kind = rule.StartsW
	case end:
		kind = rule.EndsW
	default:
		kind = rule.Match
	}
	return kind, lit, ci, true
}

// regexPred builds the predicate for a regular expression test on field f: the
// equivalent literal kind when the pattern is a plain literal, else kind regex.
// Either way case-sensitive unless folded (nocase, (?i), a case-converted field).
func (b *builder) regexPred(e, f *expr, pattern string, fold bool) *rule.Pred {
	if kind, lit, ci, ok := simpleRegex(pattern); ok {
		p := b.pred(e, f, kind, rule.Value{S: lit})
		if !fold && !ci && hasCase(lit) {
			p.Transforms = append(p.Transforms, rule.TCased)
		}
		return p
	}
	p := b.pred(e, f, rule.Regex, rule.Value{S: pattern})
	if fold {
		p.Transforms = append(p.Transforms, rule.TIgnoreCase)
	}
	return p
}

// hasCase reports whether s has a letter with another case: a case-sensitive test of
// a value without one ("4720", "/c") is the same test as a case-insensitive one, and
// is stored as such so it compares equal with other languages' tests.
func hasCase(s string) bool {
	return strings.ToLower(s) != strings.ToUpper(s)
}
