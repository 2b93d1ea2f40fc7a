package neighbors

import (
	"fmt"
	"strings"
)

// describe says how stricter rule a differs from broader rule b, from b's page
// (fromBroader: "adds 2 filters") or from a's page ("drops 2 filters this rule applies").
func describe(a, b *cnode, fromBroader bool) string {
	bset := map[string]bool{}
	for _, c := range b.conjuncts() {
		bset[c.str] = true
	}
	aset := map[string]bool{}
	for _, c := range a.conjuncts() {
		aset[c.str] = true
	}
	var filters, conds int
	for _, c := range a.conjuncts() {
		if bset[c.str] {
			continue
		}
		if c.op == cNot {
			filters++
		} else if !narrowsSome(c, b) {
			conds++
		}
	}
	var narrows []string
	for _, c := range b.conjuncts() {
		if aset[c.str] {
			continue
		}
		for _, ac := range a.conjuncts() {
			if ac.str == c.str || !implies(ac, c) {
				continue
			}
			if f, ok := singleField(c); ok && c.op != cAnd && ac.op != cNot {
				na, nb := atomCount(ac), atomCount(c)
				if na < nb {
					if fromBroader {
						narrows = append(narrows, fmt.Sprintf("narrows %s to %d of its %d values", f, na, nb))
					} else {
						narrows = append(narrows, fmt.Sprintf("widens %s from %d to %d values", f, na, nb))
					}
				} else if fromBroader {
					narrows = append(narrows, "narrows "+f)
				} else {
					narrows = append(narrows, "relaxes "+f)
				}
			}
			break
		}
	}
	var parts []string
	verb := "adds"
	if !fromBroader {
		verb = "drops"
	}
	if filters > 0 {
		s := fmt.Sprintf("%s %d %s", verb, filters, plural(filters, "filter", "filters"))
		if !fromBroader {
			s += " this rule applies"
		}
		parts = append(parts, s)
	}
	if conds > 0 {
		s := fmt.Sprintf("%s %d %s", verb, conds, plural(conds, "condition", "conditions"))
		if !fromBroader {
			s += " this rule requires"
		}
		parts = append(parts, s)
	}
	seen := map[string]bool{}
	for _, n := range narrows { // two conjuncts on one field narrowed read as one phrase
		if !seen[n] {
			seen[n] = true
			parts = append(parts, n)
		}
	}
	if len(parts) == 0 {
		if fromBroader {
			return "matches a subset of this rule's events"
		}
		return "matches a superset of this rule's events"
	}
	return strings.Join(parts, ", ")
}

// narrowsSome reports whether conjunct c of the stricter rule is a narrowed version of
// some conjunct of b (counted as a narrowing, not as an added condition).
func narrowsSome(c, b *cnode) bool {
	for _, bc := range b.conjuncts() {
		if bc.op != cNot && implies(c, bc) {
			return true
		}
	}
	return false
}

func atomCount(n *cnode) int {
	if n.op == cAtom {
		return 1
	}
	return len(n.kids)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
