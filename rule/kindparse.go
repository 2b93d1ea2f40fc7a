package rule

import "strings"

// Kinds lists every predicate kind, in the order help texts and errors show them.
var Kinds = []Kind{Eq, Ne, Match, StartsW, EndsW, Glob, Regex, CIDR, In,
	Gt, Ge, Lt, Le, IsNull, IsNotNull, Keyword, FieldRef,
	Term, TermPrefix, TermSuffix}

// Transforms lists the value transforms and flags a predicate can carry.
var Transforms = []string{TCased, TWindash, TBase64, TBase64Offset, TUTF16LE, TUTF16BE,
	TUTF16, TWide, TExpand, TIgnoreCase, TMultiline, TDotAll, TElem,
	TMinute, THour, TDay, TWeek, TMonth, TYear}

// kindAliases are the spellings people know from Sigma modifiers and KQL operators.
var kindAliases = map[string]Kind{
	"contains": Match, "endswith": EndsW, "startswith": StartsW, "equals": Eq,
	"re": Regex, "exists": IsNotNull, "=": Eq, "==": Eq, "!=": Ne,
	"has": Term, "hasprefix": TermPrefix, "hassuffix": TermSuffix,
}

// ParseKind reads a kind as the IR names it or as a user types it: Sigma modifiers with
// or without the leading bar (|endswith), KQL operators, and the IR names with dashes or
// without underscores (ends-with, endswith). It is how the CLI and the MCP server accept
// indicators, so both understand the same words.
func ParseKind(s string) (Kind, bool) {
	s = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), "|")))
	s = strings.ReplaceAll(s, "-", "_")
	if k, ok := kindAliases[s]; ok {
		return k, true
	}
	for _, k := range Kinds {
		if string(k) == s || strings.ReplaceAll(string(k), "_", "") == s {
			return k, true
		}
	}
	return "", false
}
