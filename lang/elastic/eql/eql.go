// Package eql reads Elastic Event Query Language queries, as Elastic detection rules of
// language "eql" write them, into ruledex's predicate tree and stages.
//
// Semantics kept (Elasticsearch EQL reference):
//   - `category where cond`: the category (process, file, network, any...) is the event
//     category; it is returned in Query.Categories rather than as a predicate, because the
//     catalog scopes rules by log source, not by an event.category test.
//   - `f : "v"` is case-insensitive and `*` / `?` are wildcards: the pattern's shape gives
//     the kind (eq, starts_with, ends_with, match, else glob with Value.Wild); `f : "*"` is
//     is_not_null. A list `f : ("a", "b*")` is the OR of those.
//   - `==` and `!=` are case-sensitive (transform cased) and never wildcards; `== null` is
//     is_null, `!= null` is is_not_null.
//   - `like` (cased) / `like~` take wildcard patterns like `:`; `regex` (cased) / `regex~`
//     (flag i) are anchored in EQL, so the pattern is stored as `^(?:p)$` for ruledex's
//     unanchored regex kind. `in` is cased, `in~` not; `not in` is the negation.
//   - Functions startsWith, endsWith, stringContains, wildcard (cased; `~` variants not),
//     cidrMatch become starts_with, ends_with, match, patterns and cidr. Computed values
//     (length, substring, arithmetic...) and `descendant of` / `child of` / `event of`
//     become opaque nodes with a warning.
//   - Array fields (process.args, event.type, ...: ECS fields normalized as arrays) get
//     transform elem: `process.args : "x"` holds when one element equals x (token
//     membership), never when x is a substring of the command line.
//   - sequence [by f] [with maxspan=t] [q]... [until [q]] and sample by f [q]... make one
//     stage per sub-query plus a correlation stage (temporal_ordered for sequence,
//     temporal for sample); `with runs=n` repeats a sub-query; `![q]` is a missing event.
//   - Pipes head, tail, filter, unique, unique_count, count, sort are pipeline stages;
//     filter adds its condition to a single-event query's Root.
//
// Parse never panics and never loses a query: what it cannot model is an OpOpaque node
// or an opaque stage with a located diagnostic.
package eql

import "github.com/ruledex/ruledex/rule"

// Query is one EQL query read into the IR.
type Query struct {
	// Kind is "event" for `category where ...`, "sequence" or "sample".
	Kind string
	// Categories are the event categories of the query or of each sub-query, in order,
	// without duplicates; "any" is left out.
	Categories []string
	// Root is a single-event query's condition (with its filter pipes); nil for
	// sequences and samples, whose logic is their stages.
	Root *rule.Node
	// Stages are numbered from 1; the caller adds Stage 0 (the query as written).
	Stages []rule.Stage
	// Correlation is set for sequence and sample queries.
	Correlation *rule.Correlation
	Diags       []rule.Diagnostic
}

// Parse reads q. at is the position of q's first character in its file (line and
// column), so diagnostics and predicates are located in the file.
func Parse(q string, at rule.Pos) *Query {
	p := newParser(q, at)
	return p.query()
}
