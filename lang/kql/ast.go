package kql

// The syntax tree keeps byte offsets into the parsed text so that every stage and
// predicate can show its source verbatim, as go/ast does with token.Pos.

// Span is a node's extent: byte offsets [Start, End) and the 1-based position of Start.
type Span struct {
	Start, End int
	Line, Col  int
}

func (s Span) span() Span { return s }

// Expr is any expression node.
type Expr interface{ span() Span }

// Ident is a column, table, let or function name. Quoted is set for ['name'].
type Ident struct {
	Span
	Name   string
	Quoted bool
}

// LitKind is a literal's type.
type LitKind int

const (
	LString LitKind = iota
	LNumber
	LTimespan
	LBool
	LNull
	LDatetime // datetime(...), timespan(...), guid(...): Val is the raw text inside the parentheses
)

// Lit is a literal. Val is the decoded value.
type Lit struct {
	Span
	Kind LitKind
	Val  string
}

// Call is a function call; Fn is the function name as written.
type Call struct {
	Span
	Fn   string
	Args []Expr
}

// Binary is a binary operation. Op is normalized to lower case ("and", "==", "has_any",
// "!contains", "in~", "matches regex", "+").
type Binary struct {
	Span
	Op   string
	L, R Expr
}

// Unary is a prefix operation ("-", "+", "!").
type Unary struct {
	Span
	Op string
	X  Expr
}

// List is a parenthesized or bracketed list: (a, b) or [a, b].
type List struct {
	Span
	Elems []Expr
}

// Dot is member access x.name.
type Dot struct {
	Span
	X    Expr
	Name string
}

// Index is x[i].
type Index struct {
	Span
	X, I Expr
}

// Between is x between (lo .. hi), Not for !between.
type Between struct {
	Span
	X, Lo, Hi Expr
	Not       bool
}

// Named is name = expr (an assignment in extend/summarize, an option kind=inner, or a
// typed parameter name:type).
type Named struct {
	Span
	Name string
	X    Expr
}

// SubQuery is a tabular expression used inside an expression or as a join operand.
type SubQuery struct {
	Span
	P *Pipeline
}

// Raw is text the parser skipped over without modelling it.
type Raw struct{ Span }

// Pipeline is a tabular expression: a source and its operators.
type Pipeline struct {
	Span
	Source *Source
	Ops    []*Op
}

// Source is the first element of a pipeline.
type Source struct {
	Span
	// Kind is "expr" (a table, let name, function call or parenthesized query), or the
	// keyword of a source operator: "union", "search", "find", "print", "range",
	// "datatable", "externaldata", "evaluate".
	Kind string
	Expr Expr
	// Members are union members and the tables named by search/find `in (...)`.
	Members []Expr
	// Pred is the predicate of search/find.
	Pred Expr
}

// Op is one pipeline operator after `|`.
type Op struct {
	Span
	Name string // lower case, hyphenated names joined: "project-away", "mv-expand"
	// Pred is the where/filter expression (or the search predicate).
	Pred Expr
	// Args are the comma-separated items of extend, project, summarize, distinct...
	Args []Expr
	By   []Expr
	// Operands are join/lookup right sides and union members.
	Operands []Expr
	Opts     []*Named
}

// LetKind classifies a let statement.
type LetKind int

const (
	LetScalar  LetKind = iota // let x = 10; let s = "a";
	LetList                   // let l = dynamic([...]); datatable single column
	LetTabular                // let t = T | where ...; materialize(...)
	LetFunc                   // let f = (a:string) { ... };
)

// Let is a let statement.
type Let struct {
	Span
	Name  string
	Kind  LetKind
	Value Expr      // scalar, list or call value
	Pipe  *Pipeline // tabular value, or the function body's final tabular statement
	Body  []*Let    // lets inside a function body
}

// Stmt is one top-level statement: exactly one of Let and Pipe is set, or neither for
// statements kept as text only (set, declare, alias, management commands).
type Stmt struct {
	Span
	Let  *Let
	Pipe *Pipeline
}
