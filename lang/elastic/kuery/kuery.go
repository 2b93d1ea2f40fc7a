// Package kuery reads Kibana query language (KQL, "kuery") and Lucene query strings, as
// Elastic detection rules of language "kuery" and "lucene" write them, into ruledex's
// predicate tree.
package kuery

import "github.com/ruledex/ruledex/rule"

// Parse reads q, a Kibana query (lucene false) or a Lucene query string (lucene true),
// into a predicate tree over ECS field names as written. at is the position of q's first
// character in its file: diagnostics are located from it (line by line). Parse never
// panics; what it cannot model becomes an OpOpaque node with a warning.
func Parse(q string, lucene bool, at rule.Pos) (*rule.Node, []rule.Diagnostic) {
	return &rule.Node{Op: rule.OpOpaque, Text: q, Pos: at}, []rule.Diagnostic{{
		Severity: rule.Warning, Code: "kuery/unsupported", Pos: at, Message: "query not modeled yet",
	}}
}
