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
	switch a.Kind {
	case rule.Eq:
		switch b.Kind {
		case rule.Eq:
			return av == bv
		case rule.Match:
			return strings.Contains(av, bv)
		case rule.StartsW:
			return strings.HasPrefix(av, bv)
		case rule.EndsW:
			return strings.HasSuffix(av, bv)
		}
	case rule.StartsW:
		switch b.Kind {
		case rule.StartsW:
			return strings.HasPrefix(av, bv)
		case rule.Match:
			return strings.Contains(av, bv)
		}
	case rule.EndsW:
		switch b.Kind {
		case rule.EndsW:
			return strings.HasSuffix(av, bv)
		case rule.Match:
			return strings.Contains(av, bv)
		}
	case rule.Match, rule.Keyword:
		if b.Kind == a.Kind {
			return strings.Contains(av, bv)
		}
	case rule.Gt, rule.Ge:
		if b.Kind == rule.Gt || b.Kind == rule.Ge {
			x, err1 := strconv.ParseFloat(av, 64)
			y, err2 := strconv.ParseFloat(bv, 64)
			if err1 != nil || err2 != nil {
				return false
			}
			// a: v > x (or ≥ x); b: v > y (or ≥ y).
			if b.Kind == rule.Ge || a.Kind == rule.Gt {
				return x >= y
			}
			return x > y // a: v ≥ x, b: v > y
		}
	case rule.Lt, rule.Le:
		if b.Kind == rule.Lt || b.Kind == rule.Le {
			x, err1 := strconv.ParseFloat(av, 64)
			y, err2 := strconv.ParseFloat(bv, 64)
			if err1 != nil || err2 != nil {
				return false
			}
			if b.Kind == rule.Le || a.Kind == rule.Lt {
				return x <= y
			}
			return x < y
		}
	}
	return false
}
