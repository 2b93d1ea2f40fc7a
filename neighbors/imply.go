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
		// A value test on the field can only hold when the field is present.
		switch a.Kind {
		case rule.Eq, rule.Match, rule.StartsW, rule.EndsW:
			return a.Value != "" && !a.Wild
		}
		return false
	}
	// Wildcards and encoding transforms change what substring relations mean: only
	// identical atoms (handled by the caller's string comparison) imply each other.
	if a.Wild || b.Wild || a.Transforms != "" || b.Transforms != "" {
		return false
	}
	if b.Cased && !a.Cased {
		return false
	}
	av, bv := a.Value, b.Value
	if !b.Cased && a.Cased { // a case-insensitive value is already folded
		av = strings.ToLower(av)
	}
	if targets, ok := stringImplies[a.Kind]; ok {
		for _, k := range targets {
			if k == b.Kind {
				return stringTest(b.Kind, av, bv)
			}
		}
		return false
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

var (
	lower = map[rule.Kind]bool{rule.Gt: true, rule.Ge: true}
	upper = map[rule.Kind]bool{rule.Lt: true, rule.Le: true}
)

// stringImplies lists, for a string test, the kinds of test it can imply; whether it
// does is then b's own test applied to a's value (eq "c:\x.exe" implies ends_with "\x.exe"
// because "c:\x.exe" ends with "\x.exe").
var stringImplies = map[rule.Kind][]rule.Kind{
	rule.Eq:      {rule.Eq, rule.Match, rule.StartsW, rule.EndsW},
	rule.StartsW: {rule.StartsW, rule.Match},
	rule.EndsW:   {rule.EndsW, rule.Match},
	rule.Match:   {rule.Match},
	rule.Keyword: {rule.Keyword},
}

func stringTest(kind rule.Kind, v, want string) bool {
	switch kind {
	case rule.Eq:
		return v == want
	case rule.StartsW:
		return strings.HasPrefix(v, want)
	case rule.EndsW:
		return strings.HasSuffix(v, want)
	}
	return strings.Contains(v, want) // match, keyword
}
