// Package esql reads ES|QL queries (Elastic rules of language "esql") into ruledex's
// stages and predicates, as package kql does for Kusto pipelines.
package esql

import "github.com/ruledex/ruledex/rule"

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
	Diags       []rule.Diagnostic
}

// Parse reads q; at is the position of q's first character in its file. Parse never
// panics; what it cannot model becomes an opaque stage or OpOpaque node with a warning.
func Parse(q string, at rule.Pos) *Query {
	return &Query{
		Stages: []rule.Stage{{Kind: rule.StageOpaque, Label: "query", Text: q, Pos: at}},
		Diags:  []rule.Diagnostic{{Severity: rule.Warning, Code: "esql/unsupported", Pos: at, Message: "query not modeled yet"}},
	}
}
