package esql

import (
	"regexp/syntax"
	"strings"

	"github.com/ruledex/ruledex/lang/elastic/kuery"
	"github.com/ruledex/ruledex/rule"
)

// operand is the field side of a test: a column, possibly under TO_LOWER/TO_UPPER.
type operand struct {
	field string
	ci    bool // compared after case folding
	x     *ex
}

// fieldOf reads x as a (possibly case-folded) column; an alias made by EVAL
// (x = f, x = to_lower(f)) or RENAME reads as the field it names.
func (r *reader) fieldOf(x *ex) (operand, bool) {
	x = unparen(x)
	switch x.k {
	case xIdent:
		if a, ok := r.alias[x.s]; ok {
			a.x = x
			return a, true
		}
		return operand{field: x.s, x: x}, true
	case xCall:
		if (x.op == "to_lower" || x.op == "to_upper") && len(x.kids) == 1 {
			if in := unparen(x.kids[0]); in.k == xIdent {
				o, _ := r.fieldOf(in)
				o.ci, o.x = true, x
				return o, true
			}
		}
	}
	return operand{}, false
}

func isLiteral(x *ex) bool {
	switch unparen(x).k {
	case xString, xNumber, xBool, xNull:
		return true
	}
	return false
}

func literal(x *ex) rule.Value {
	x = unparen(x)
	switch x.k {
	case xNumber:
		return rule.Value{S: x.s, Type: rule.Number}
	case xBool:
		return rule.Value{S: x.s, Type: rule.Bool}
	case xNull:
		return rule.Value{S: "null", Type: rule.Null}
	}
	return rule.Value{S: x.s}
}

// leaf builds a predicate; cased applies only to text values, and a field MV_EXPANDed
// earlier is tested per element.
func (r *reader) leaf(x *ex, o operand, kind rule.Kind, vals []rule.Value, tr []string, native string) *rule.Node {
	var t []string
	for _, s := range tr {
		if s == rule.TCased && (o.ci || untexted(vals)) {
			continue
		}
		if s == rule.TIgnoreCase && !o.ci {
			continue
		}
		t = append(t, s)
	}
	if r.expanded[o.field] {
		t = append(t, rule.TElem)
	}
	return rule.Leaf(&rule.Pred{Field: o.field, Kind: kind, Values: vals, Transforms: t, Native: native, Pos: r.pos(x.st)})
}

func untexted(vs []rule.Value) bool {
	if len(vs) == 0 {
		return true
	}
	for _, v := range vs {
		if v.Type == "" || v.Type == rule.String {
			return false
		}
	}
	return true
}

var flip = map[string]string{"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}

var cmpKind = map[string]rule.Kind{"==": rule.Eq, "!=": rule.Ne, "<": rule.Lt, "<=": rule.Le, ">": rule.Gt, ">=": rule.Ge}

// pred lowers a boolean expression. Time windows return nil; tests on expressions that
// are not a column become predicates on a computed column named by their text.
func (r *reader) pred(x *ex) *rule.Node {
	x = unparen(x)
	switch x.k {
	case xBinary:
		switch x.op {
		case "and", "or":
			op := rule.OpAnd
			if x.op == "or" {
				op = rule.OpOr
			}
			return join(op, []*rule.Node{r.pred(x.kids[0]), r.pred(x.kids[1])})
		case ":":
			return r.match(x, x.kids[0], x.kids[1])
		}
		if k, ok := cmpKind[x.op]; ok {
			return r.compare(x, k)
		}
	case xNot:
		in := r.pred(x.kids[0])
		if in == nil {
			return nil
		}
		return &rule.Node{Op: rule.OpNot, Children: []*rule.Node{in}, Pos: in.Pos}
	case xIn:
		return r.in(x)
	case xLike:
		return r.like(x)
	case xIsNull:
		o, ok := r.fieldOf(x.kids[0])
		if !ok {
			o = r.exprColumn(x.kids[0])
		}
		if x.not {
			return r.leaf(x, o, rule.IsNotNull, nil, nil, o.field+" is not null")
		}
		return r.leaf(x, o, rule.IsNull, nil, nil, o.field+" is null")
	case xCall:
		return r.call(x)
	case xIdent:
		// A boolean column used as a condition.
		return r.leaf(x, operand{field: x.s, x: x}, rule.Eq, []rule.Value{{S: "true", Type: rule.Bool}}, nil, x.s)
	case xBool:
		if x.s == "true" {
			return &rule.Node{Op: rule.OpTrue, Pos: r.pos(x.st)}
		}
	}
	return r.exprPred(x)
}

// exprColumn records an expression that is not a column as a computed column.
func (r *reader) exprColumn(x *ex) operand {
	name := strings.Join(strings.Fields(r.text(x.st, x.en)), " ")
	if _, ok := r.computed[name]; !ok {
		r.computed[name] = name
		r.q.Computed = append(r.q.Computed, rule.Computed{Name: name, Definition: name, Stage: r.stage})
	}
	// Keep the raw text as the key readsComputed looks up.
	r.computed[r.text(x.st, x.en)] = name
	return operand{field: name, x: x}
}

// exprPred is a boolean expression we read as the computed column it is, tested true.
func (r *reader) exprPred(x *ex) *rule.Node {
	o := r.exprColumn(x)
	return r.leaf(x, o, rule.Eq, []rule.Value{{S: "true", Type: rule.Bool}}, nil, o.field)
}

func (r *reader) compare(x *ex, k rule.Kind) *rule.Node {
	l, rt, op := x.kids[0], x.kids[1], x.op
	if isLiteral(l) && !isLiteral(rt) {
		l, rt, op = rt, l, flip[op]
		k = cmpKind[op]
	}
	// @timestamp > now() - 7 day as a conjunct of its WHERE: the look-back window.
	// Under OR or NOT it is a real condition and stays one.
	if lf, ok := r.fieldOf(l); ok && unparen(x) == unparen(r.conj) && lf.field == "@timestamp" && (op == ">" || op == ">=") && callsNow(rt) {
		if r.q.Timeframe == "" {
			r.q.Timeframe = strings.TrimSpace(r.text(rt.st, rt.en))
			if d := findDuration(rt); d != "" {
				r.q.Timeframe = d
			}
		}
		return nil
	}
	// locate(f, "x") > 0: f contains x.
	if c := unparen(l); c.k == xCall && c.op == "locate" && len(c.kids) == 2 && isLiteral(rt) && isLiteral(c.kids[1]) {
		v := literal(rt)
		if o, ok := r.fieldOf(c.kids[0]); ok && v.Type == rule.Number && (op == ">" && v.S == "0" || op == ">=" && v.S == "1") {
			return r.leaf(x, o, rule.Match, []rule.Value{literal(c.kids[1])}, []string{rule.TCased}, "locate")
		}
	}
	o, ok := r.fieldOf(l)
	if !ok {
		o = r.exprColumn(l)
	}
	if isLiteral(rt) {
		v := literal(rt)
		if v.Type == rule.Null {
			// Any comparison with null is null: the row never passes.
			return r.exprPred(x)
		}
		tr := []string{rule.TCased}
		if k != rule.Eq && k != rule.Ne {
			tr = nil
		}
		return r.leaf(x, o, k, []rule.Value{v}, tr, o.field+" "+op)
	}
	if rf, ok := r.fieldOf(rt); ok && (k == rule.Eq) && !rf.ci && !o.ci {
		return r.leaf(x, o, rule.FieldRef, []rule.Value{{S: rf.field}}, nil, o.field+" "+op)
	}
	return r.exprPred(x)
}

func callsNow(x *ex) bool {
	found := false
	var walk func(*ex)
	walk = func(y *ex) {
		if y == nil {
			return
		}
		if y.k == xCall && y.op == "now" {
			found = true
		}
		for _, k := range y.kids {
			walk(k)
		}
	}
	walk(x)
	return found
}

func findDuration(x *ex) string {
	if x == nil {
		return ""
	}
	if x.k == xDuration {
		return x.s
	}
	for _, k := range x.kids {
		if d := findDuration(k); d != "" {
			return d
		}
	}
	return ""
}

func (r *reader) in(x *ex) *rule.Node {
	o, ok := r.fieldOf(x.kids[0])
	var vals []rule.Value
	for _, v := range x.kids[1:] {
		if !isLiteral(v) {
			ok = false
			break
		}
		vals = append(vals, literal(v))
	}
	if !ok {
		n := r.exprPred(&ex{k: xIn, kids: x.kids, st: x.st, en: x.en})
		if x.not {
			return &rule.Node{Op: rule.OpNot, Children: []*rule.Node{n}, Pos: n.Pos}
		}
		return n
	}
	n := r.leaf(x, o, rule.In, vals, []string{rule.TCased}, o.field+" in")
	if x.not {
		return &rule.Node{Op: rule.OpNot, Children: []*rule.Node{n}, Pos: n.Pos}
	}
	return n
}

// like lowers LIKE (glob: * ? and \ escapes) and RLIKE (anchored Lucene regex).
func (r *reader) like(x *ex) *rule.Node {
	o, ok := r.fieldOf(x.kids[0])
	if !ok {
		o = r.exprColumn(x.kids[0])
	}
	var kids []*rule.Node
	for _, pv := range x.kids[1:] {
		pv = unparen(pv)
		if pv.k != xString {
			kids = append(kids, r.exprPred(x))
			continue
		}
		if x.op == "rlike" {
			re := "^(?:" + pv.s + ")$"
			if _, err := syntax.Parse(re, syntax.Perl); err != nil {
				r.warn(pv.st, "regex", "RLIKE pattern does not compile as RE2: "+err.Error())
			}
			// Lucene's . matches any character, newlines included: flag s.
			kids = append(kids, r.leaf(x, o, rule.Regex, []rule.Value{{S: re}}, []string{rule.TCased, rule.TIgnoreCase, rule.TDotAll}, o.field+" rlike"))
			continue
		}
		k, v := likeValue(pv.s)
		kids = append(kids, r.leaf(x, o, k, []rule.Value{v}, []string{rule.TCased}, o.field+" like"))
	}
	n := join(rule.OpOr, kids)
	if n != nil && x.not {
		return &rule.Node{Op: rule.OpNot, Children: []*rule.Node{n}, Pos: n.Pos}
	}
	return n
}

// likeValue turns a LIKE pattern into the narrowest kind: a literal with * only at the
// ends is eq/starts_with/ends_with/match; anything else a ruledex glob.
func likeValue(pat string) (rule.Kind, rule.Value) {
	var glob, lit strings.Builder
	wild := false
	for i := 0; i < len(pat); i++ {
		c := pat[i]
		switch {
		case c == '\\' && i+1 < len(pat):
			i++
			globEscape(&glob, pat[i])
			lit.WriteByte(pat[i])
		case c == '*' || c == '?':
			wild = true
			glob.WriteByte(c)
		default:
			globEscape(&glob, c)
			lit.WriteByte(c)
		}
	}
	if !wild {
		return rule.Eq, rule.Value{S: lit.String()}
	}
	g := glob.String()
	lead := strings.HasPrefix(g, "*")
	inner := strings.TrimPrefix(g, "*")
	trail := trailingWild(inner)
	if trail {
		inner = inner[:len(inner)-1]
	}
	if s, ok := unglob(inner); ok && s != "" {
		switch {
		case lead && trail:
			return rule.Match, rule.Value{S: s}
		case lead:
			return rule.EndsW, rule.Value{S: s}
		case trail:
			return rule.StartsW, rule.Value{S: s}
		}
	}
	return rule.Glob, rule.Value{S: g, Wild: true}
}

func globEscape(b *strings.Builder, c byte) {
	if c == '*' || c == '?' || c == '\\' {
		b.WriteByte('\\')
	}
	b.WriteByte(c)
}

func unglob(g string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(g); i++ {
		c := g[i]
		if c == '*' || c == '?' {
			return "", false
		}
		if c == '\\' && i+1 < len(g) && (g[i+1] == '*' || g[i+1] == '?' || g[i+1] == '\\') {
			i++
			c = g[i]
		}
		b.WriteByte(c)
	}
	return b.String(), true
}

// call lowers a boolean function: starts_with, ends_with, cidr_match, match, kql, qstr.
func (r *reader) call(x *ex) *rule.Node {
	args := x.kids
	switch x.op {
	case "starts_with", "ends_with":
		if len(args) == 2 && isLiteral(args[1]) {
			if o, ok := r.fieldOf(args[0]); ok {
				k := rule.StartsW
				if x.op == "ends_with" {
					k = rule.EndsW
				}
				return r.leaf(x, o, k, []rule.Value{literal(args[1])}, []string{rule.TCased}, x.op)
			}
		}
	case "cidr_match":
		if len(args) >= 2 {
			if o, ok := r.fieldOf(args[0]); ok && !o.ci {
				var vals []rule.Value
				for _, a := range args[1:] {
					if !isLiteral(a) {
						return r.exprPred(x)
					}
					vals = append(vals, literal(a))
				}
				return r.leaf(x, o, rule.CIDR, vals, nil, "cidr_match")
			}
		}
	case "match", "match_phrase":
		// With options (fuzziness, operator...) the test is no longer a term match.
		if len(args) == 2 && unparen(args[1]).k == xString {
			return r.match(x, args[0], args[1])
		}
	case "kql", "qstr":
		if len(args) == 1 && unparen(args[0]).k == xString {
			s := unparen(args[0])
			n, diags := kuery.Parse(s.s, x.op == "qstr", r.stringPos(s))
			if !r.verbatim(s) {
				// Escapes (\n, \") make the text parsed differ from the text written, so
				// offsets inside it would point elsewhere: the string itself is the place.
				for i := range diags {
					diags[i].Pos = r.stringPos(s)
				}
			}
			r.q.Diags = append(r.q.Diags, diags...)
			return n
		}
	}
	return r.exprPred(x)
}

// match lowers MATCH(f, "q") and f : "q" as the Kibana query f : "q" (a term query on
// keyword fields, an analyzed one on text fields).
func (r *reader) match(x, fx, qx *ex) *rule.Node {
	o, ok := r.fieldOf(fx)
	q := unparen(qx)
	if !ok || o.ci || q.k != xString {
		return r.exprPred(x)
	}
	esc := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(q.s)
	n, diags := kuery.Parse(o.field+` : "`+esc+`"`, false, r.pos(x.st))
	for i := range diags {
		diags[i].Pos = r.pos(x.st) // the text parsed is made up here: the test is the place
	}
	r.q.Diags = append(r.q.Diags, diags...)
	return n
}

// stringPos is the position of a string literal's content.
func (r *reader) stringPos(s *ex) rule.Pos {
	off := s.st + 1
	if strings.HasPrefix(r.text(s.st, s.en), `"""`) {
		off = s.st + 3
	}
	return r.pos(off)
}

// verbatim reports whether string literal s holds its value as written (no escapes),
// so that offsets in the value are offsets in the source from stringPos.
func (r *reader) verbatim(s *ex) bool {
	lit := r.text(s.st, s.en)
	q := 1
	if strings.HasPrefix(lit, `"""`) {
		q = 3
	}
	return len(lit) >= 2*q && lit[q:len(lit)-q] == s.s
}

// trailingWild reports whether glob g ends with an unescaped *: the backslashes
// before it, if any, are an even number (each pair a literal backslash).
func trailingWild(g string) bool {
	if !strings.HasSuffix(g, "*") {
		return false
	}
	n := 0
	for i := len(g) - 2; i >= 0 && g[i] == '\\'; i-- {
		n++
	}
	return n%2 == 0
}
