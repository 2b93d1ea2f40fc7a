package engine

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/dlclark/regexp2/v2"
	"github.com/ruledex/ruledex/rule"
)

// testKind is what one compiled value test does with a field value.
type testKind uint8

const (
	tEq testKind = iota
	tContains
	tPrefix
	tSuffix
	tGlob
	tAny  // the pattern `*`: any value of a present field
	tNull // the value null: field absent or empty
	tNumEq
	tGt
	tGe
	tLt
	tLe
	tRegex
	tCIDR
	tTerm       // KQL has: s occurs with no ASCII letter or digit next to it
	tTermPrefix // KQL hasprefix: no letter or digit before it
	tTermSuffix // KQL hassuffix: no letter or digit after it
)

// vtest is one alternative of one value of a predicate. Lists of hundreds of strings
// are tested one vtest after another, so the rare kinds' data (globs, regexes,
// networks) is behind a pointer: a vtest is 40 bytes instead of 112, and evalValue
// walks fewer cache lines.
type vtest struct {
	kind  testKind
	cased bool
	s     string // folded unless cased
	num   float64
	*vext // tGlob, tRegex and tCIDR only
}

// vext is the data of the rarer test kinds.
type vext struct {
	g    *glob
	expr string // regex as compiled, flags included
	re   *regexp.Regexp
	gate *reGate // necessary condition of re, nil when none was found
	re2  *regexp2.Regexp
	net  netip.Prefix
}

// cpred is a compiled predicate.
type cpred struct {
	src     *rule.Pred
	id      int32 // index in the per-event results (state.predGen)
	field   int32 // slot of the field; slotAll for keywords
	kind    rule.Kind
	neg     bool      // Ne: true when no value matches
	all     bool      // every group must match (Sigma |all)
	groups  [][]vtest // one group per rule value: its alternatives (OR)
	flat    []vtest   // without all: the groups' tests in order, one list (evalValue)
	ref     int32     // FieldRef: slot of the other field
	refCase bool
	refPos  testKind // FieldRef: tEq, tContains, tPrefix or tSuffix
	exists  bool     // IsNotNull/IsNull: test presence only
	null    bool     // IsNull
	hasNull bool     // some group accepts an absent field
	// elem (rule.TElem): the field is an array, logged as repeated fields (a JSON array
	// is read as one field per element); any element may match, every one with all.
	elem bool
	// argsFrom: for process.args, the command-line slots to split when the event has
	// no argument array (Windows events).
	argsFrom []int32
	// nameOnly: the rule field is the file name of the event field (Route.Resolve):
	// tests see the value after its last \ or /.
	nameOnly bool
	// alt is the slot of the field as the rule writes it, tried when the resolved
	// field is absent (-1 when they are the same).
	alt int32
}

// baseName is the last element of a Windows or POSIX path.
func baseName(s string) string {
	if i := strings.LastIndexAny(s, `\/`); i >= 0 {
		return s[i+1:]
	}
	return s
}

const slotAll = -1

// regexTimeout bounds the backtracking fallback engine on hostile input.
const regexTimeout = 100 * time.Millisecond

// compileTests turns one value (after transforms) into tests for kind k.
func compileTests(p *rule.Pred, v rule.Value, placeholders map[string][]string) ([]vtest, error) {
	switch p.Kind {
	case rule.Regex:
		flags := ""
		for _, t := range p.Transforms {
			switch t {
			case rule.TIgnoreCase, rule.TMultiline, rule.TDotAll:
				flags += t
			case rule.TCased:
			default:
				return nil, fmt.Errorf("modifier %q with re is not supported", t)
			}
		}
		expr := v.S
		if flags != "" {
			expr = "(?" + flags + ")" + expr
		}
		if re, err := regexp.Compile(expr); err == nil {
			return []vtest{{kind: tRegex, vext: &vext{re: re, gate: newReGate(expr), expr: expr}, cased: true}}, nil
		}
		var o regexp2.RegexOptions
		for _, f := range flags {
			switch f {
			case 'i':
				o |= regexp2.IgnoreCase
			case 'm':
				o |= regexp2.Multiline
			case 's':
				o |= regexp2.Singleline
			}
		}
		re2, err := regexp2.Compile(v.S, o)
		if err != nil {
			return nil, fmt.Errorf("regex %q: %w", v.S, err)
		}
		re2.MatchTimeout = regexTimeout
		// RE2 syntax cannot describe this pattern, so no literals are extracted from it.
		return []vtest{{kind: tRegex, vext: &vext{re2: re2}, cased: true}}, nil
	case rule.CIDR:
		pf, err := netip.ParsePrefix(strings.TrimSpace(v.S))
		if err != nil {
			return nil, fmt.Errorf("cidr %q: %w", v.S, err)
		}
		return []vtest{{kind: tCIDR, vext: &vext{net: pf.Masked()}, cased: true}}, nil
	case rule.Gt, rule.Ge, rule.Lt, rule.Le:
		f, err := strconv.ParseFloat(strings.TrimSpace(v.S), 64)
		if err != nil {
			return nil, fmt.Errorf("%s needs a number, got %q", p.Kind, v.S)
		}
		k := map[rule.Kind]testKind{rule.Gt: tGt, rule.Ge: tGe, rule.Lt: tLt, rule.Le: tLe}[p.Kind]
		return []vtest{{kind: k, num: f, cased: true}}, nil
	}
	if v.Type == rule.Null {
		return []vtest{{kind: tNull, cased: true}}, nil
	}
	alts, err := expandValue(p, v, placeholders)
	if err != nil {
		return nil, err
	}
	// windash and the encodings make many alternatives, and a vtest is large.
	out := make([]vtest, 0, len(alts)+1)
	if v.Type == rule.Number && !v.Wild {
		if f, err := strconv.ParseFloat(v.S, 64); err == nil && len(p.Transforms) == 0 &&
			(p.Kind == rule.Eq || p.Kind == rule.In || p.Kind == rule.Ne) {
			out = append(out, vtest{kind: tNumEq, num: f, cased: true})
		}
	}
	for _, a := range alts {
		out = append(out, stringTest(p.Kind, a))
	}
	return out, nil
}

// stringTest builds the test for one concrete alternative under a string kind, reducing
// wildcard patterns to plain string tests where they are one in disguise.
func stringTest(k rule.Kind, a alt) vtest {
	if tk, ok := termKinds[k]; ok {
		lit := a.s
		if !a.cased {
			lit = fold(lit)
		}
		return vtest{kind: tk, s: lit, cased: a.cased}
	}
	if a.s != "" && (!a.wild || !strings.ContainsAny(a.s, `*?\`)) {
		// A literal (most values): the glob below would be one literal token, folded,
		// that simple() reduces to this; building it was most of Compile's allocations.
		lit := a.s
		if !a.cased {
			lit = fold(lit)
		}
		return vtest{kind: literalKinds(k), s: lit, cased: a.cased}
	}
	pat := a.s
	if !a.wild {
		pat = escapeGlob(a.s)
	}
	switch k {
	case rule.Match, rule.Keyword:
		pat = "*" + pat + "*"
	case rule.StartsW:
		pat = pat + "*"
	case rule.EndsW:
		pat = "*" + pat
	}
	g := parseGlob(pat, !a.cased)
	if sk, lit, ok := g.simple(); ok {
		return vtest{kind: sk, s: lit, cased: a.cased}
	}
	return vtest{kind: tGlob, vext: &vext{g: g}, cased: a.cased}
}

// literalKinds is the test of a non-empty literal under a string kind, as stringTest's
// glob patterns say it: `*lit*`, `lit*`, `*lit`, or `lit`.
func literalKinds(k rule.Kind) testKind {
	switch k {
	case rule.Match, rule.Keyword:
		return tContains
	case rule.StartsW:
		return tPrefix
	case rule.EndsW:
		return tSuffix
	}
	return tEq
}

var termKinds = map[rule.Kind]testKind{rule.Term: tTerm, rule.TermPrefix: tTermPrefix, rule.TermSuffix: tTermSuffix}

// findTerm reports whether t occurs in s with no ASCII letter or digit immediately
// before it (when before) and after it (when after). Boundaries are read on the
// string compared (the folded one unless cased), the same one the test searches.
func findTerm(s, t string, before, after bool) bool {
	for from := 0; from <= len(s)-len(t); {
		j := strings.Index(s[from:], t)
		if j < 0 {
			return false
		}
		i, end := from+j, from+j+len(t)
		if (!before || i == 0 || !isAlnum(s[i-1])) && (!after || end == len(s) || !isAlnum(s[end])) {
			return true
		}
		from = i + 1
	}
	return false
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// escapeGlob writes a literal in glob syntax.
func escapeGlob(s string) string {
	if !strings.ContainsAny(s, `*?\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// test runs one value test; orig is the value as logged, low its folded form.
func (t *vtest) test(orig, low string) bool {
	s := low
	if t.cased {
		s = orig
	}
	switch t.kind {
	case tEq:
		return s == t.s
	case tContains:
		return strings.Contains(s, t.s)
	case tPrefix:
		return strings.HasPrefix(s, t.s)
	case tSuffix:
		return strings.HasSuffix(s, t.s)
	case tTerm:
		return findTerm(s, t.s, true, true)
	case tTermPrefix:
		return findTerm(s, t.s, true, false)
	case tTermSuffix:
		return findTerm(s, t.s, false, true)
	case tGlob:
		return t.g.match(s)
	case tAny:
		return true
	case tNull:
		return orig == ""
	case tNumEq, tGt, tGe, tLt, tLe:
		f, ok := parseNum(orig)
		if !ok {
			return false
		}
		switch t.kind {
		case tNumEq:
			return f == t.num
		case tGt:
			return f > t.num
		case tGe:
			return f >= t.num
		case tLt:
			return f < t.num
		}
		return f <= t.num
	case tRegex:
		if t.re != nil {
			return (t.gate == nil || t.gate.accepts(orig)) && t.re.MatchString(orig)
		}
		ok, err := t.re2.MatchString(orig)
		return err == nil && ok
	case tCIDR:
		if !maybeIP(orig) {
			return false
		}
		a, err := netip.ParseAddr(strings.TrimSpace(orig))
		if err != nil {
			return false
		}
		return t.net.Contains(a.Unmap()) || t.net.Contains(a)
	}
	return false
}

// parseNum reads a decimal or 0x-hex number without allocating on failure (strconv
// allocates its error, and most values tested numerically are not numbers).
func parseNum(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	if len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		var n uint64
		for i := 2; i < len(s); i++ {
			c := s[i]
			var d byte
			switch {
			case '0' <= c && c <= '9':
				d = c - '0'
			case 'a' <= c && c <= 'f':
				d = c - 'a' + 10
			case 'A' <= c && c <= 'F':
				d = c - 'A' + 10
			default:
				return 0, false
			}
			if i > 17 {
				return 0, false
			}
			n = n<<4 | uint64(d)
		}
		return float64(n), true
	}
	digits := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case '0' <= c && c <= '9':
			digits = true
		case c == '-' || c == '+':
			if i != 0 && s[i-1] != 'e' && s[i-1] != 'E' {
				return 0, false
			}
		case c == '.' || c == 'e' || c == 'E':
		default:
			return 0, false
		}
	}
	if !digits {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil
}

// maybeIP rejects values that cannot be addresses before the allocating parser runs.
func maybeIP(s string) bool {
	if len(s) < 2 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F') ||
			c == '.' || c == ':' || c == '%' || c == ' ') {
			return false
		}
	}
	return true
}
