package neighbors

import (
	"strconv"
	"strings"

	"github.com/ruledex/ruledex/rule"
)

// implies reports whether every event satisfying x satisfies y. It is sound (never true
// when some event could satisfy x but not y, under two-valued predicate semantics) and
// deliberately incomplete: when in doubt it says false.
func implies(x, y *cnode) bool {
	if x.str == y.str {
		return true
	}
	switch {
	case y.op == cAnd: // x ⇒ a∧b  iff  x ⇒ a and x ⇒ b
		for _, k := range y.kids {
			if !implies(x, k) {
				return false
			}
		}
		return true
	case x.op == cOr: // a∨b ⇒ y  iff  a ⇒ y and b ⇒ y
		for _, k := range x.kids {
			if !implies(k, y) {
				return false
			}
		}
		return true
	}
	if x.op == cAnd { // a∧b ⇒ y  if  a ⇒ y or b ⇒ y
		for _, k := range x.kids {
			if implies(k, y) {
				return true
			}
		}
	}
	if y.op == cOr { // x ⇒ a∨b  if  x ⇒ a or x ⇒ b
		for _, k := range y.kids {
			if implies(x, k) {
				return true
			}
		}
	}
	if x.op == cNot && y.op == cNot { // ¬a ⇒ ¬b  iff  b ⇒ a
		return implies(y.kids[0], x.kids[0])
	}
	if x.op == cAtom && y.op == cAtom {
		return atomImplies(x.atom, y.atom)
	}
	return false
}

// atomImplies reports whether a true implies b true, for one event.
func atomImplies(a, b Atom) bool {
	if a.Field != b.Field {
		return false
	}
	if b.Kind == rule.IsNotNull {
		// A value test on the field can only hold when the field is present. An element
		// of process.args says nothing about a logged command line field.
		if a.Elem || a.Wild {
			return false
		}
		// An empty value may hold on an absent field in languages that read a missing
		// column as "" (KQL), so only non-empty values count.
		_, ok := stringPos[a.Kind]
		return ok && a.Kind != rule.Keyword && a.Value != ""
	}
	// Wildcards and encoding transforms change what substring relations mean: only
	// identical atoms (handled by the caller's string comparison) imply each other.
	if a.Wild || b.Wild || a.Transforms != "" || b.Transforms != "" {
		return false
	}
	if b.Elem && !a.Elem {
		// A test on the whole command line never proves a test on one argument.
		return false
	}
	av, bv, ok := comparable(a, b)
	if !ok {
		return false
	}
	if a.Elem && !b.Elem {
		// One argument is (by the field-map assumption) a verbatim piece of the command
		// line: whatever the argument contains, the command line contains, and nothing
		// more about boundaries is known.
		_, oka := stringPos[a.Kind]
		if !oka || a.Kind == rule.Keyword || b.Kind != rule.Match || strings.ContainsRune(av, '"') {
			return false
		}
		return strings.Contains(av, bv)
	}
	pa, oka := stringPos[a.Kind]
	pb, okb := stringPos[b.Kind]
	if oka || okb {
		if !oka || !okb || (a.Kind == rule.Keyword) != (b.Kind == rule.Keyword) {
			return false
		}
		if a.Cased && !b.Cased {
			// Folding the field can turn the non-ASCII character next to a cased match
			// into an ASCII letter (the Kelvin sign folds to k): a's boundaries from the
			// field are not kept, only those inside its value and its anchors.
			pa.boundStart, pa.boundEnd = pa.anchorStart, pa.anchorEnd
		}
		return occursWithin(av, bv, pa, pb)
	}
	// Bounds: a: v > x (or ≥ x) implies b: v > y (or ≥ y) when x ≥ y, strictly when only
	// b is strict; the upper bounds mirror it.
	if !(lower[a.Kind] && lower[b.Kind] || upper[a.Kind] && upper[b.Kind]) {
		return false
	}
	x, err1 := strconv.ParseFloat(av, 64)
	y, err2 := strconv.ParseFloat(bv, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	if upper[a.Kind] { // v < x implies v < y when x ≤ y, that is -x ≥ -y
		x, y = -x, -y
	}
	if b.Kind == rule.Ge || b.Kind == rule.Le || a.Kind == rule.Gt || a.Kind == rule.Lt {
		return x >= y
	}
	return x > y
}

// comparable returns the two values ready to compare under b's case rule, or false
// when a's test cannot decide b's: a case-insensitive a never proves a cased b unless
// b's value is plain ASCII without letters (then only one spelling exists). EQL's `==`
// (cased) against `:` (not) and Sigma's |cased land here.
func comparable(a, b Atom) (string, string, bool) {
	av, bv := a.Value, b.Value
	switch {
	case a.Cased == b.Cased:
	case a.Cased: // a case-insensitive value is already folded
		av = strings.ToLower(av)
	default:
		if !caseless(bv) {
			return "", "", false
		}
	}
	return av, bv, true
}

// caseless reports whether s is ASCII with no letters: every character of it is the
// only one that folds to itself, so a case-insensitive match of s is a cased one.
func caseless(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' {
			return false
		}
	}
	return true
}

var (
	lower = map[rule.Kind]bool{rule.Gt: true, rule.Ge: true}
	upper = map[rule.Kind]bool{rule.Lt: true, rule.Le: true}
)

// pos says where a string test places its value in the field: anchored at the start
// or end of the field, or bounded there by a character that is no ASCII letter or
// digit (the term kinds, KQL has/hasprefix/hassuffix), or neither (contains).
type pos struct {
	anchorStart, anchorEnd bool
	boundStart, boundEnd   bool
}

// stringPos is the implication table of the string kinds: every kind is one placement
// of its value, and a implies b when b's value occurs inside a's value at a place that
// satisfies b's placement (eq "c:\x.exe" implies ends_with "\x.exe"; term "a b"
// implies term "b"; term "x" implies contains "x" and never the reverse). Anchors are
// boundaries too: the start of the field has nothing before it.
var stringPos = map[rule.Kind]pos{
	rule.Eq:         {anchorStart: true, anchorEnd: true, boundStart: true, boundEnd: true},
	rule.StartsW:    {anchorStart: true, boundStart: true},
	rule.EndsW:      {anchorEnd: true, boundEnd: true},
	rule.Match:      {},
	rule.Keyword:    {},
	rule.Term:       {boundStart: true, boundEnd: true},
	rule.TermPrefix: {boundStart: true},
	rule.TermSuffix: {boundEnd: true},
}

// occursWithin reports whether every field in which av occurs placed as pa also holds
// bv placed as pb: some occurrence of bv inside av meets pb's anchors and boundaries,
// taking them from av's own characters inside and from pa at av's edges.
func occursWithin(av, bv string, pa, pb pos) bool {
	if pb.anchorStart && pb.anchorEnd {
		return pa.anchorStart && pa.anchorEnd && av == bv
	}
	for from := 0; from <= len(av)-len(bv); {
		j := strings.Index(av[from:], bv)
		if j < 0 {
			return false
		}
		i, end := from+j, from+j+len(bv)
		if placed(av, i, end, pa, pb) {
			return true
		}
		from = i + 1
	}
	return false
}

func placed(av string, i, end int, pa, pb pos) bool {
	if pb.anchorStart && !(i == 0 && pa.anchorStart) {
		return false
	}
	if pb.anchorEnd && !(end == len(av) && pa.anchorEnd) {
		return false
	}
	if pb.boundStart && !(i == 0 && pa.boundStart || i > 0 && !alnum(av[i-1])) {
		return false
	}
	if pb.boundEnd && !(end == len(av) && pa.boundEnd || end < len(av) && !alnum(av[end])) {
		return false
	}
	return true
}

func alnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
