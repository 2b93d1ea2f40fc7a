package kql

import (
	"fmt"
	"strings"
)

// SyntaxError is a located parse problem. Parsing continues after it.
type SyntaxError struct {
	Off       int // byte offset into the parsed text
	Line, Col int
	Msg       string
	// Warn marks problems that do not change the query's meaning (a missing `;`).
	Warn bool
	Code string // diagnostic code when more specific than the default
}

func (e SyntaxError) Error() string { return fmt.Sprintf("%d:%d: %s", e.Line, e.Col, e.Msg) }

// parser is a recursive-descent parser over the whole token slice. It never panics
// on input and always makes progress: every loop either consumes a token or stops.
type parser struct {
	src  string
	toks []Token
	p    int
	errs []SyntaxError
	// inSearch: reading a search predicate, where Field:"x" means Field has "x".
	inSearch bool
}

// Parse parses src into statements. It never fails: problems are returned as
// SyntaxErrors and the parser resynchronizes at the next `|`, `;` or statement.
func Parse(src string) ([]*Stmt, []SyntaxError) {
	toks, lexErrs := Lex(src)
	ps := &parser{src: src, toks: toks}
	for _, e := range lexErrs {
		ps.errs = append(ps.errs, SyntaxError{Off: e.Off, Line: e.Line, Col: e.Col, Msg: e.Msg})
	}
	var out []*Stmt
	for ps.tok().Kind != TEOF {
		before := ps.p
		if st := ps.statement(); st != nil {
			out = append(out, st)
		}
		if ps.p == before {
			ps.errorf(ps.tok(), "unexpected %s", ps.tok())
			ps.p++
		}
	}
	return out, ps.errs
}

func (ps *parser) tok() Token { return ps.toks[ps.p] }
func (ps *parser) peek(n int) Token {
	if ps.p+n >= len(ps.toks) {
		return ps.toks[len(ps.toks)-1]
	}
	return ps.toks[ps.p+n]
}
func (ps *parser) prev() Token {
	if ps.p == 0 {
		return Token{}
	}
	return ps.toks[ps.p-1]
}
func (ps *parser) next() Token {
	t := ps.toks[ps.p]
	if t.Kind != TEOF {
		ps.p++
	}
	return t
}

func (ps *parser) errorf(t Token, format string, a ...any) {
	ps.errs = append(ps.errs, SyntaxError{Off: t.Start, Line: t.Line, Col: t.Col, Msg: fmt.Sprintf(format, a...)})
}
func (ps *parser) warnf(t Token, format string, a ...any) {
	ps.errs = append(ps.errs, SyntaxError{Off: t.Start, Line: t.Line, Col: t.Col, Msg: fmt.Sprintf(format, a...), Warn: true})
}

func (ps *parser) isOp(s string) bool {
	t := ps.tok()
	return t.Kind == TOp && t.Text == s
}
func (ps *parser) isWord(s string) bool {
	t := ps.tok()
	return t.Kind == TIdent && strings.EqualFold(t.Text, s)
}
func (ps *parser) accept(s string) bool {
	if ps.isOp(s) {
		ps.p++
		return true
	}
	return false
}

// adjacent reports whether token i directly follows token i-1 without space.
func (ps *parser) adjacent(i int) bool {
	return i > 0 && i < len(ps.toks) && ps.toks[i].Start == ps.toks[i-1].End
}

func (ps *parser) spanFrom(start Token) Span {
	end := ps.prev().End
	if end < start.Start {
		end = start.Start
	}
	return Span{Start: start.Start, End: end, Line: start.Line, Col: start.Col}
}

// statement parses one top-level statement and its terminating `;`.
func (ps *parser) statement() *Stmt {
	t := ps.tok()
	if ps.atProse() {
		line := t.Line
		// Lexical errors inside the prose (a stray '&') are part of what is skipped.
		kept := ps.errs[:0]
		for _, e := range ps.errs {
			if e.Line != line {
				kept = append(kept, e)
			}
		}
		ps.errs = append(kept, SyntaxError{Off: t.Start, Line: t.Line, Col: t.Col, Msg: "text that is not KQL skipped", Warn: true, Code: "kql/parse/prose"})
		for ps.tok().Kind != TEOF && ps.tok().Line == line {
			ps.p++
		}
		return nil
	}
	switch {
	case ps.accept(";"):
		return nil
	case ps.isWord("let") && ps.peek(1).Kind != TOp:
		l := ps.let()
		st := &Stmt{Span: l.Span, Let: l}
		ps.endStatement(true)
		return st
	case ps.isWord("set") && ps.peek(1).Kind == TIdent, ps.isWord("declare"), ps.isWord("alias"),
		ps.isOp(".") && ps.peek(1).Kind == TIdent:
		ps.skipToStatementEnd()
		st := &Stmt{Span: ps.spanFrom(t)}
		ps.accept(";")
		return st
	}
	pipe := ps.pipeline()
	if pipe == nil {
		return nil
	}
	st := &Stmt{Span: pipe.Span, Pipe: pipe}
	ps.endStatement(false)
	return st
}

// sourceWords start statements with two identifiers in a row (union T, search x).
var sourceWords = map[string]bool{"let": true, "set": true, "declare": true, "alias": true, "union": true, "search": true,
	"find": true, "print": true, "range": true, "evaluate": true, "datatable": true, "externaldata": true, "restrict": true, "pattern": true}

// atProse reports whether the current line is prose pasted into a query file
// ("Custom NRT detection & isolation of ...", "Technique: T1518", "#note"):
// a statement never starts with two plain words or a word and a colon.
func (ps *parser) atProse() bool {
	t := ps.tok()
	if !t.LineStart || t.Depth > 0 {
		return false
	}
	if t.Kind == TOp && t.Text == "#" {
		return true
	}
	if t.Kind == TIllegal {
		return true
	}
	if t.Kind != TIdent || sourceWords[strings.ToLower(t.Text)] {
		return false
	}
	n := ps.peek(1)
	if n.Line != t.Line {
		return false
	}
	switch {
	case n.Kind == TIdent && !stringOps[strings.ToLower(n.Text)] && strings.ToLower(n.Text) != "and" && strings.ToLower(n.Text) != "or":
		return true
	case n.Kind == TOp && n.Text == ":":
		return true
	case n.Kind == TNumber || n.Kind == TString || n.Kind == TIllegal:
		return true
	}
	return false
}

// endStatement consumes a `;`, tolerating its absence before a new line (people
// forget it after lets); anything else left over is reported and skipped.
func (ps *parser) endStatement(isLet bool) {
	if ps.accept(";") {
		return
	}
	t := ps.tok()
	if t.Kind == TEOF || t.LineStart || ps.isOp("}") {
		if isLet && t.Kind != TEOF && !ps.isOp("}") {
			ps.warnf(ps.prev(), "missing ';' after let statement")
		}
		return
	}
	ps.errorf(t, "unexpected %s after statement", t)
	ps.skipToStatementEnd()
	ps.accept(";")
}

// skipToStatementEnd skips balanced tokens up to `;` or a statement boundary.
func (ps *parser) skipToStatementEnd() {
	depth := 0
	for ps.tok().Kind != TEOF {
		t := ps.tok()
		if t.Kind == TOp {
			switch t.Text {
			case "(", "[", "{":
				depth++
			case ")", "]", "}":
				if depth == 0 {
					return
				}
				depth--
			case ";":
				if depth == 0 {
					return
				}
			}
		}
		if depth == 0 && ps.p > 0 && t.LineStart && t.AfterBlank && t.Kind == TIdent {
			return
		}
		ps.p++
	}
}

// let parses `let name = value` without the `;`.
func (ps *parser) let() *Let {
	start := ps.next() // let
	l := &Let{}
	nameTok := ps.next()
	l.Name = nameTok.Text
	if nameTok.Kind == TQIdent {
		l.Name = nameTok.Val
	}
	if !ps.accept("=") {
		ps.errorf(ps.tok(), "expected '=' after let %s, found %s", l.Name, ps.tok())
		ps.skipToStatementEnd()
		l.Span = ps.spanFrom(start)
		return l
	}
	switch {
	case ps.isFunctionAhead():
		ps.function(l)
	case ps.isWord("view") && ps.peek(1).Kind == TOp && ps.peek(1).Text == "(":
		ps.next()
		ps.function(l)
	default:
		e := ps.pipeOrExpr()
		if sq, ok := e.(*SubQuery); ok {
			l.Kind, l.Pipe = LetTabular, sq.P
		} else {
			l.Value = e
			l.Kind = classifyLetValue(e)
			// materialize(T | ...) is the pipeline it caches.
			if c, ok := e.(*Call); ok && strings.EqualFold(c.Fn, "materialize") && len(c.Args) == 1 {
				if sq, ok := unparen(c.Args[0]).(*SubQuery); ok {
					l.Pipe = sq.P
				}
			}
		}
	}
	l.Span = ps.spanFrom(start)
	return l
}

// isFunctionAhead reports whether the tokens at p are a parameter list followed by `{`.
func (ps *parser) isFunctionAhead() bool {
	if !ps.isOp("(") {
		return false
	}
	depth := 0
	for i := ps.p; i < len(ps.toks); i++ {
		t := ps.toks[i]
		if t.Kind == TEOF {
			return false
		}
		if t.Kind == TOp {
			switch t.Text {
			case "(":
				depth++
			case ")":
				depth--
				if depth == 0 {
					n := ps.toks[i+1]
					return n.Kind == TOp && n.Text == "{"
				}
			case ";":
				return false
			}
		}
	}
	return false
}

// function parses `(params) { lets; tabular }`.
func (ps *parser) function(l *Let) {
	l.Kind = LetFunc
	ps.skipBalanced()
	if !ps.accept("{") {
		ps.errorf(ps.tok(), "expected '{' in function %s", l.Name)
		return
	}
	for ps.tok().Kind != TEOF && !ps.isOp("}") {
		before := ps.p
		switch {
		case ps.accept(";"):
		case ps.isWord("let") && ps.peek(1).Kind != TOp:
			l.Body = append(l.Body, ps.let())
			ps.endStatement(true)
		default:
			e := ps.pipeOrExpr()
			if sq, ok := e.(*SubQuery); ok {
				l.Pipe = sq.P
			}
			if !ps.isOp("}") && !ps.accept(";") {
				ps.errorf(ps.tok(), "unexpected %s in function body", ps.tok())
				ps.skipToStatementEnd()
			}
		}
		if ps.p == before {
			ps.p++
		}
	}
	if !ps.accept("}") {
		ps.errorf(ps.tok(), "missing '}' closing function %s", l.Name)
	}
}

// skipBalanced skips one balanced (...) / [...] / {...} group starting at p.
func (ps *parser) skipBalanced() {
	depth := 0
	for ps.tok().Kind != TEOF {
		t := ps.next()
		if t.Kind != TOp {
			if depth == 0 {
				return
			}
			continue
		}
		switch t.Text {
		case "(", "[", "{":
			depth++
		case ")", "]", "}":
			depth--
		}
		if depth <= 0 {
			return
		}
	}
}

func classifyLetValue(e Expr) LetKind {
	switch v := e.(type) {
	case *Call:
		switch strings.ToLower(v.Fn) {
		case "dynamic", "pack_array", "array_concat", "split", "datatable":
			return LetList
		case "materialize", "externaldata", "external_data", "table", "view", "union":
			return LetTabular
		}
	case *List:
		return LetList
	case *Ident:
		return LetScalar
	}
	return LetScalar
}

// nestedExpr parses an operand inside an operator: it continues into a pipeline
// only within parentheses, since at depth 0 a `|` starts the next operator.
func (ps *parser) nestedExpr() Expr {
	if ps.tok().Depth > 0 {
		return ps.pipeOrExpr()
	}
	if src := ps.sourceKeyword(); src != nil {
		return &SubQuery{Span: src.Span, P: &Pipeline{Span: src.Span, Source: src}}
	}
	return ps.expr()
}

// pipeOrExpr parses an expression and, when `|` follows, the pipeline it starts.
func (ps *parser) pipeOrExpr() Expr {
	start := ps.tok()
	if src := ps.sourceKeyword(); src != nil {
		p := &Pipeline{Source: src}
		ps.ops(p)
		p.Span = ps.spanFrom(start)
		return &SubQuery{Span: p.Span, P: p}
	}
	e := ps.expr()
	if !ps.isOp("|") || !tabularShape(e) {
		return e
	}
	p := &Pipeline{Source: &Source{Span: e.span(), Kind: "expr", Expr: e}}
	ps.ops(p)
	p.Span = ps.spanFrom(start)
	return &SubQuery{Span: p.Span, P: p}
}

// tabularShape reports whether e can be a table: a name, a call, a member access or
// a subquery. `(A == "x" | where ...)` is a missing ')', not a pipeline.
func tabularShape(e Expr) bool {
	switch v := e.(type) {
	case *Ident, *Call, *Dot, *SubQuery:
		return true
	case *List:
		return len(v.Elems) == 1 && tabularShape(v.Elems[0])
	}
	return false
}

// pipeline parses a tabular statement.
func (ps *parser) pipeline() *Pipeline {
	start := ps.tok()
	if ps.isOp("|") {
		// A query that starts with `| where` (a fragment); read it against no source.
		p := &Pipeline{Source: &Source{Span: Span{Start: start.Start, End: start.Start, Line: start.Line, Col: start.Col}, Kind: "none"}}
		ps.ops(p)
		p.Span = ps.spanFrom(start)
		return p
	}
	startIdx := ps.p
	e := ps.pipeOrExpr()
	if sq, ok := e.(*SubQuery); ok {
		return sq.P
	}
	if ps.p == startIdx {
		return nil
	}
	return &Pipeline{Span: e.span(), Source: &Source{Span: e.span(), Kind: "expr", Expr: e}}
}

// sourceKeyword parses the source operators that are not expressions.
func (ps *parser) sourceKeyword() *Source {
	t := ps.tok()
	if t.Kind != TIdent {
		return nil
	}
	kw := strings.ToLower(t.Text)
	n := ps.peek(1)
	switch kw {
	case "union":
		if n.Kind == TOp && n.Text != "(" && n.Text != "*" {
			return nil
		}
		ps.next()
		s := &Source{Kind: "union"}
		ps.options()
		s.Members = ps.unionMembers()
		s.Span = ps.spanFrom(t)
		return s
	case "search", "find":
		if n.Kind == TOp && n.Text != "(" && n.Text != "*" {
			return nil
		}
		ps.next()
		s := &Source{Kind: kw}
		ps.searchBody(s)
		s.Span = ps.spanFrom(t)
		return s
	case "print", "range", "evaluate":
		if n.Kind == TOp && (n.Text == "=" || n.Text == "==" || n.Text == "." || n.Text == "|" || n.Text == ";" || n.Text == ",") {
			return nil
		}
		ps.next()
		s := &Source{Kind: kw}
		ps.skipOperatorArgs()
		s.Span = ps.spanFrom(t)
		return s
	}
	return nil
}

// options reads name=value options (kind=inner, withsource=T, hint.strategy=shuffle).
func (ps *parser) options() []*Named {
	var out []*Named
	for ps.tok().Kind == TIdent {
		start := ps.tok()
		i := 1
		name := start.Text
		for ps.peek(i).Kind == TOp && ps.peek(i).Text == "." && ps.peek(i+1).Kind == TIdent {
			name += "." + ps.peek(i+1).Text
			i += 2
		}
		if !(ps.peek(i).Kind == TOp && ps.peek(i).Text == "=") || !isOption(name) || ps.peek(i+1).Kind == TOp {
			return out
		}
		ps.p += i + 1
		v := ps.next()
		out = append(out, &Named{Span: ps.spanFrom(start), Name: name, X: &Ident{Span: ps.spanFrom(v), Name: v.Text}})
	}
	return out
}

// isOption reports whether name is an operator option rather than a column being
// assigned (summarize Count = count()).
func isOption(name string) bool {
	l := strings.ToLower(name)
	switch l {
	case "kind", "withsource", "with_source", "isfuzzy", "bagexpansion", "with_itemindex", "decodeblocks":
		return true
	}
	return strings.HasPrefix(l, "hint.")
}

func (ps *parser) unionMembers() []Expr {
	var out []Expr
	for {
		if ps.atOpEnd() {
			return out
		}
		if ps.isOp("*") {
			t := ps.next()
			out = append(out, &Ident{Span: ps.spanFrom(t), Name: "*"})
		} else {
			out = append(out, ps.nestedExpr())
		}
		if !ps.accept(",") {
			return out
		}
	}
}

// searchBody reads `[kind=...] [in (T1, T2)] predicate` of search/find.
func (ps *parser) searchBody(s *Source) {
	ps.options()
	if ps.isWord("in") && ps.peek(1).Kind == TOp && ps.peek(1).Text == "(" {
		ps.next()
		ps.next()
		for !ps.isOp(")") && ps.tok().Kind != TEOF {
			before := ps.p
			s.Members = append(s.Members, ps.expr())
			ps.accept(",")
			if ps.p == before {
				ps.p++
			}
		}
		ps.accept(")")
	}
	if ps.isWord("where") {
		ps.next()
	}
	if !ps.atOpEnd() {
		ps.inSearch = true
		s.Pred = ps.expr()
		ps.inSearch = false
	}
	// find ... project a, b
	ps.skipOperatorArgs()
}

// ops parses `| op ...` repeatedly.
func (ps *parser) ops(p *Pipeline) {
	for ps.isOp("|") {
		ps.next()
		if op := ps.op(); op != nil {
			p.Ops = append(p.Ops, op)
		}
	}
}

// opName reads an operator name, joining hyphenated forms (mv-expand, project-away).
func (ps *parser) opName() string {
	t := ps.tok()
	if t.Kind != TIdent {
		return ""
	}
	ps.next()
	name := strings.ToLower(t.Text)
	for ps.isOp("-") && ps.adjacent(ps.p) && ps.peek(1).Kind == TIdent && ps.adjacent(ps.p+1) {
		ps.next()
		name += "-" + strings.ToLower(ps.next().Text)
	}
	return name
}

func (ps *parser) op() *Op {
	start := ps.tok()
	name := ps.opName()
	if name == "" {
		ps.errorf(start, "expected an operator after '|', found %s", start)
		ps.skipOperatorArgs()
		return nil
	}
	op := &Op{Name: name}
	switch name {
	case "where", "filter":
		if ps.atOpEnd() {
			ps.errorf(ps.tok(), "missing predicate after %s", name)
			break
		}
		op.Pred = ps.expr()
	case "search":
		s := &Source{}
		ps.searchBody(s)
		op.Pred = s.Pred
	case "extend", "project", "project-rename", "project-reorder", "project-away", "project-keep", "distinct", "serialize":
		op.Args = ps.exprList()
	case "summarize":
		op.Opts = ps.options()
		if !ps.isWord("by") {
			op.Args = ps.exprList()
		}
		if ps.isWord("by") {
			ps.next()
			op.By = ps.exprList()
		}
	case "join", "lookup":
		op.Opts = ps.options()
		if !ps.atOpEnd() && !ps.isWord("on") {
			op.Operands = append(op.Operands, ps.nestedExpr())
		}
	case "union":
		op.Opts = ps.options()
		op.Operands = ps.unionMembers()
	case "as", "invoke", "take", "limit", "count", "getschema":
	}
	ps.skipOperatorArgs()
	op.Span = ps.spanFrom(start)
	return op
}

// exprList parses comma-separated expressions (with name = expr assignments).
func (ps *parser) exprList() []Expr {
	var out []Expr
	for !ps.atOpEnd() {
		before := ps.p
		out = append(out, ps.arg())
		if !ps.accept(",") || ps.p == before {
			break
		}
	}
	return out
}

// arg parses an expression that may be `name = expr`, `(a, b) = expr` or `name:type`.
func (ps *parser) arg() Expr {
	t := ps.tok()
	if (t.Kind == TIdent || t.Kind == TQIdent) && ps.peek(1).Kind == TOp && (ps.peek(1).Text == "=" || ps.peek(1).Text == ":") {
		name := t.Text
		if t.Kind == TQIdent {
			name = t.Val
		}
		ps.next()
		ps.next()
		var x Expr
		if !ps.atOpEnd() && !ps.isOp(",") && !ps.isOp(")") {
			x = ps.nestedExpr()
		}
		return &Named{Span: ps.spanFrom(t), Name: name, X: x}
	}
	return ps.nestedExpr()
}

// atOpEnd reports whether the current operator's text ends at the current token.
func (ps *parser) atOpEnd() bool {
	t := ps.tok()
	if t.Kind == TEOF {
		return true
	}
	if t.Kind == TOp {
		switch t.Text {
		case "|", ";", ")", "]", "}":
			return true
		}
	}
	return ps.atQueryBoundary()
}

// atQueryBoundary guesses that a new query starts at the current token: files that
// hold several queries often separate them only by a blank line, without `;`.
func (ps *parser) atQueryBoundary() bool {
	t := ps.tok()
	if !t.LineStart || ps.p == 0 || t.Depth > 0 {
		return false
	}
	if t.Kind == TIdent && t.Text == "let" {
		return true
	}
	if t.Kind != TIdent && t.Kind != TQIdent {
		return false
	}
	switch strings.ToLower(t.Text) {
	case "by", "on", "with", "and", "or", "asc", "desc", "nulls", "step", "from", "to", "in", "kind", "default":
		return false
	}
	pv := ps.prev()
	if pv.Kind == TOp {
		switch pv.Text {
		case ")", "]", "}":
		default:
			return false
		}
	} else if pv.Kind == TIdent {
		switch strings.ToLower(pv.Text) {
		case "by", "on", "with", "and", "or", "in", "kind", "where", "project", "extend", "summarize":
			return false
		}
	}
	if t.AfterBlank {
		return true
	}
	n := ps.peek(1)
	return n.Kind == TOp && n.Text == "|" && n.LineStart
}

// skipOperatorArgs skips the rest of an operator up to its end, keeping parentheses
// balanced. It is how operators the parser does not model are read.
func (ps *parser) skipOperatorArgs() {
	depth := 0
	for ps.tok().Kind != TEOF {
		t := ps.tok()
		if depth == 0 && ps.atOpEnd() {
			return
		}
		if t.Kind == TOp {
			switch t.Text {
			case "(", "[", "{":
				depth++
			case ")", "]", "}":
				depth--
			}
		}
		ps.p++
	}
}

// Expressions, by increasing precedence: or, and, comparison, additive,
// multiplicative, unary, postfix.

func (ps *parser) expr() Expr { return ps.orExpr() }

func (ps *parser) orExpr() Expr {
	start := ps.tok()
	l := ps.andExpr()
	for ps.isWord("or") && ps.binaryContext() {
		ps.next()
		r := ps.andExpr()
		l = &Binary{Span: ps.spanFrom(start), Op: "or", L: l, R: r}
	}
	return l
}

func (ps *parser) andExpr() Expr {
	start := ps.tok()
	l := ps.cmpExpr()
	for ps.isWord("and") && ps.binaryContext() {
		ps.next()
		r := ps.cmpExpr()
		l = &Binary{Span: ps.spanFrom(start), Op: "and", L: l, R: r}
	}
	return l
}

// binaryContext rejects `and`/`or` used as a column name at a statement start.
func (ps *parser) binaryContext() bool {
	n := ps.peek(1)
	return !(n.Kind == TOp && (n.Text == "=" || n.Text == "|" || n.Text == ";" || n.Text == ","))
}

// stringOps are the KQL string and set operators, lower-cased.
var stringOps = map[string]bool{
	"has": true, "has_cs": true, "contains": true, "contains_cs": true,
	"startswith": true, "startswith_cs": true, "endswith": true, "endswith_cs": true,
	"hasprefix": true, "hasprefix_cs": true, "hassuffix": true, "hassuffix_cs": true,
	"in": true, "has_any": true, "has_all": true, "has_any_cs": true, "has_all_cs": true,
	"like": true, "notlike": true, "notcontains": true, "notcontains_cs": true, "nothas": true,
	"between": true, "matches": true, "in~": true,
}

// cmpOp reads a comparison or string operator at p, returning "" if there is none.
func (ps *parser) cmpOp() string {
	t := ps.tok()
	if t.Kind == TOp {
		switch t.Text {
		case "==", "!=", "=~", "!~", "<", "<=", ">", ">=", "<>":
			ps.next()
			return t.Text
		case ":":
			if ps.inSearch {
				ps.next()
				return "has"
			}
		case "=":
			// A single '=' in a predicate is a common slip for '=='.
			if ps.peek(1).Kind != TOp || ps.peek(1).Text == "(" || ps.peek(1).Text == "-" {
				ps.warnf(t, "'=' used as comparison; read as '=='")
				ps.next()
				return "=="
			}
		case "!":
			n := ps.peek(1)
			if n.Kind == TIdent && ps.adjacent(ps.p+1) && stringOps[strings.ToLower(n.Text)] {
				ps.next()
				ps.next()
				name := "!" + strings.ToLower(n.Text)
				if ps.isOp("~") && ps.adjacent(ps.p) {
					ps.next()
					name += "~"
				}
				return name
			}
		}
		return ""
	}
	if t.Kind != TIdent {
		return ""
	}
	w := strings.ToLower(t.Text)
	if !stringOps[w] {
		return ""
	}
	if w == "matches" {
		if !(ps.peek(1).Kind == TIdent && strings.EqualFold(ps.peek(1).Text, "regex")) {
			return ""
		}
		ps.next()
		ps.next()
		return "matches regex"
	}
	ps.next()
	if ps.isOp("~") && ps.adjacent(ps.p) {
		ps.next()
		w += "~"
	}
	return w
}

func (ps *parser) cmpExpr() Expr {
	start := ps.tok()
	l := ps.addExpr()
	for {
		save := ps.p
		op := ps.cmpOp()
		if op == "" {
			return l
		}
		if op == "between" || op == "!between" {
			b := &Between{X: l, Not: op == "!between"}
			if ps.accept("(") {
				b.Lo = ps.addExpr()
				if !ps.accept("..") {
					ps.errorf(ps.tok(), "expected '..' in between, found %s", ps.tok())
				}
				b.Hi = ps.addExpr()
				if !ps.accept(")") {
					ps.errorf(ps.tok(), "expected ')' closing between, found %s", ps.tok())
					ps.skipOperatorArgs()
				}
			} else {
				ps.errorf(ps.tok(), "expected '(' after between")
			}
			b.Span = ps.spanFrom(start)
			l = b
			continue
		}
		if ps.atOpEnd() {
			ps.p = save
			ps.errorf(ps.tok(), "missing right operand")
			ps.next()
			return l
		}
		r := ps.addExpr()
		l = &Binary{Span: ps.spanFrom(start), Op: op, L: l, R: r}
	}
}

func (ps *parser) addExpr() Expr {
	start := ps.tok()
	l := ps.mulExpr()
	for (ps.isOp("+") || ps.isOp("-")) && !ps.atQueryBoundary() {
		op := ps.next().Text
		r := ps.mulExpr()
		l = &Binary{Span: ps.spanFrom(start), Op: op, L: l, R: r}
	}
	return l
}

func (ps *parser) mulExpr() Expr {
	start := ps.tok()
	l := ps.unary()
	for ps.isOp("*") || ps.isOp("/") || ps.isOp("%") {
		op := ps.next().Text
		r := ps.unary()
		l = &Binary{Span: ps.spanFrom(start), Op: op, L: l, R: r}
	}
	return l
}

func (ps *parser) unary() Expr {
	start := ps.tok()
	if ps.isOp("-") || ps.isOp("+") || ps.isOp("!") {
		op := ps.next().Text
		x := ps.unary()
		return &Unary{Span: ps.spanFrom(start), Op: op, X: x}
	}
	return ps.postfix()
}

func (ps *parser) postfix() Expr {
	start := ps.tok()
	x := ps.primary()
	for {
		switch {
		case ps.isOp(".") && (ps.peek(1).Kind == TIdent || ps.peek(1).Kind == TQIdent):
			ps.next()
			n := ps.next()
			name := n.Text
			if n.Kind == TQIdent {
				name = n.Val
			}
			if ps.isOp("(") && ps.adjacent(ps.p) {
				// cluster('x').database('y'): a method-style call.
				args := ps.callArgs()
				x = &Dot{Span: ps.spanFrom(start), X: x, Name: name}
				x = &Call{Span: ps.spanFrom(start), Fn: name, Args: append([]Expr{x}, args...)}
				continue
			}
			x = &Dot{Span: ps.spanFrom(start), X: x, Name: name}
		case ps.isOp(".") && ps.peek(1).Kind == TOp && ps.peek(1).Text == "[":
			// x.[0] reads as x[0]
			ps.next()
		case ps.tok().Kind == TQIdent && (ps.adjacent(ps.p) || !ps.tok().LineStart):
			n := ps.next()
			x = &Index{Span: ps.spanFrom(start), X: x, I: &Lit{Span: ps.spanFrom(n), Kind: LString, Val: n.Val}}
		case ps.isOp("[") && (ps.adjacent(ps.p) || !ps.tok().LineStart):
			ps.next()
			i := ps.expr()
			if !ps.accept("]") {
				ps.errorf(ps.tok(), "expected ']', found %s", ps.tok())
			}
			x = &Index{Span: ps.spanFrom(start), X: x, I: i}
		default:
			return x
		}
	}
}

// rawCalls are functions whose argument is a literal in its own syntax.
var rawCalls = map[string]bool{"datetime": true, "timespan": true, "guid": true, "typeof": true, "time": true}

func (ps *parser) primary() Expr {
	t := ps.tok()
	switch t.Kind {
	case TString:
		ps.next()
		val := t.Val
		// Adjacent string literals concatenate.
		for ps.tok().Kind == TString {
			val += ps.next().Val
		}
		return &Lit{Span: ps.spanFrom(t), Kind: LString, Val: val}
	case TNumber:
		ps.next()
		return &Lit{Span: ps.spanFrom(t), Kind: LNumber, Val: t.Text}
	case TTimespan:
		ps.next()
		return &Lit{Span: ps.spanFrom(t), Kind: LTimespan, Val: t.Text}
	case TQIdent:
		ps.next()
		return &Ident{Span: ps.spanFrom(t), Name: t.Val, Quoted: true}
	case TIdent:
		ps.next()
		lw := strings.ToLower(t.Text)
		switch lw {
		case "true", "false":
			if !ps.isOp("(") {
				return &Lit{Span: ps.spanFrom(t), Kind: LBool, Val: lw}
			}
		case "null":
			return &Lit{Span: ps.spanFrom(t), Kind: LNull, Val: "null"}
		}
		if ps.isOp("(") {
			if rawCalls[lw] {
				open := ps.tok()
				ps.skipBalanced()
				inner := ""
				if end := ps.prev().Start; end > open.End {
					inner = strings.TrimSpace(ps.src[open.End:end])
				}
				return &Lit{Span: ps.spanFrom(t), Kind: LDatetime, Val: t.Text + "(" + inner + ")"}
			}
			args := ps.callArgs()
			c := &Call{Span: ps.spanFrom(t), Fn: t.Text, Args: args}
			if lw == "datatable" || lw == "externaldata" || lw == "external_data" {
				// datatable(schema)[values], externaldata(schema)[urls] with (...)
				if ps.isOp("[") {
					c.Args = append(c.Args, ps.primary())
				} else if ps.tok().Kind == TQIdent {
					// ["one value"] lexes as a quoted identifier
					q := ps.next()
					c.Args = append(c.Args, &List{Span: ps.spanFrom(q), Elems: []Expr{&Lit{Span: ps.spanFrom(q), Kind: LString, Val: q.Val}}})
				}
				if ps.isWord("with") && ps.peek(1).Kind == TOp && ps.peek(1).Text == "(" {
					ps.next()
					ps.skipBalanced()
				}
				c.Span = ps.spanFrom(t)
			}
			return c
		}
		return &Ident{Span: ps.spanFrom(t), Name: t.Text}
	case TOp:
		switch t.Text {
		case "(":
			ps.next()
			var elems []Expr
			for !ps.isOp(")") && ps.tok().Kind != TEOF && !ps.isOp(";") && !ps.isOp("}") {
				before := ps.p
				elems = append(elems, ps.arg())
				if !ps.accept(",") {
					break
				}
				if ps.p == before {
					break
				}
			}
			if !ps.accept(")") {
				ps.errorf(ps.tok(), "expected ')', found %s", ps.tok())
				ps.recoverTo(")")
			}
			if len(elems) == 1 {
				if sq, ok := elems[0].(*SubQuery); ok {
					sq.Span = ps.spanFrom(t)
					return sq
				}
				if _, ok := elems[0].(*Named); !ok {
					// Parenthesized expression: keep as a one-element list so
					// `x in (a)` and `(a or b)` both read naturally.
					return &List{Span: ps.spanFrom(t), Elems: elems}
				}
			}
			return &List{Span: ps.spanFrom(t), Elems: elems}
		case "[":
			ps.next()
			var elems []Expr
			for !ps.isOp("]") && ps.tok().Kind != TEOF && !ps.isOp(";") {
				before := ps.p
				elems = append(elems, ps.arg())
				ps.accept(",")
				if ps.p == before {
					break
				}
			}
			if !ps.accept("]") {
				ps.errorf(ps.tok(), "expected ']', found %s", ps.tok())
				ps.recoverTo("]")
			}
			return &List{Span: ps.spanFrom(t), Elems: elems}
		case "{":
			ps.skipBalanced()
			return &Raw{Span: ps.spanFrom(t)}
		case "*":
			ps.next()
			return &Ident{Span: ps.spanFrom(t), Name: "*"}
		}
	}
	ps.errorf(t, "unexpected %s in expression", t)
	if !ps.atOpEnd() && !ps.isOp(",") {
		ps.next()
	}
	return &Raw{Span: ps.spanFrom(t)}
}

// recoverTo skips to the closing token (balanced), or to the end of the operator.
func (ps *parser) recoverTo(closer string) {
	depth := 0
	for ps.tok().Kind != TEOF {
		t := ps.tok()
		if t.Kind == TOp {
			switch t.Text {
			case "(", "[", "{":
				depth++
			case ")", "]", "}":
				if depth == 0 {
					if t.Text == closer {
						ps.p++
					}
					return
				}
				depth--
			case "|", ";":
				if depth == 0 {
					return
				}
			}
		}
		ps.p++
	}
}

func (ps *parser) callArgs() []Expr {
	ps.next() // (
	var args []Expr
	for !ps.isOp(")") && ps.tok().Kind != TEOF && !ps.isOp(";") {
		before := ps.p
		args = append(args, ps.arg())
		if !ps.accept(",") || ps.p == before {
			break
		}
	}
	if !ps.accept(")") {
		ps.errorf(ps.tok(), "expected ')' closing call, found %s", ps.tok())
		ps.recoverTo(")")
	}
	return args
}
