// Package neighbors decides, from rules' logic rather than their words, which rules are
// equivalent (same canonical form), stricter (match a subset of another rule's events)
// or broader, across languages. Every relation it reports is proved from the canonical
// forms; where it cannot prove one it stays silent.
//
// Relations come in two tiers, named by Relation.Basis. "same-telemetry": both rules
// read the same telemetry (Windows events, Defender tables, CIM, ECS, UDM) and rest on
// the same field mappings; the proof is about the same events. "field-map": the proof
// maps one telemetry onto another (DeviceProcessEvents ≈ Sysmon 1 / Security 4688,
// scoped by the shared log source class) or a name-only field onto a path (Defender
// FileName, CIM process_name, ECS process.name ≈ file name of Image), or an ECS
// process.args element onto the command line; Relation.Difference names each
// assumption used.
//
// String tests are placements of their value (implication table stringPos): anchored
// at the field's start/end (eq, starts_with, ends_with), bounded by a non-alphanumeric
// (KQL has family: term, term_prefix, term_suffix) or anywhere (contains). A term test
// implies the substring test with its value, never the reverse. Case-insensitive tests
// never prove cased ones unless the value has no letters; regexes are never folded and
// imply only themselves.
//
// Relations are stored on both sides, and equivalence classes are the connected
// components of equivalence (so A ≡ B ⇔ B ≡ A and every class has two or more
// members); a class is field-map when some members are equivalent only through it.
package neighbors

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strings"

	"github.com/ruledex/ruledex/fieldmap"
	"github.com/ruledex/ruledex/rule"
)

// Atom is one normalized test: canonical field, kind, transforms and value.
type Atom struct {
	Field      string // canonical field, lower-case; "" for keywords
	Kind       rule.Kind
	Transforms string // transforms that change matching, joined; "" when none
	Cased      bool
	Value      string // folded unless Cased (regexes never are); glob syntax when Wild
	Wild       bool
	// Elem: the test holds for one element of an array field (rule.TElem). On ECS
	// process.args the field is "commandline": an argument is a piece of it.
	Elem bool
}

func (a Atom) key() string {
	c := ""
	if a.Cased {
		c = "cased"
	}
	w := ""
	if a.Wild {
		w = "wild"
	}
	if a.Elem {
		w += "elem"
	}
	return a.Field + "\x1f" + string(a.Kind) + "\x1f" + a.Transforms + "\x1f" + c + "\x1f" + w + "\x1f" + a.Value
}

// cop is the operator of a canonical node.
type cop uint8

const (
	cAtom cop = iota
	cAnd
	cOr
	cNot
)

// cnode is a rule's logic in canonical form: Refs and quantifiers expanded, nested
// ANDs/ORs flattened, children deduplicated and sorted by their canonical string.
type cnode struct {
	op   cop
	atom Atom
	kids []*cnode
	str  string // canonical string; equal strings mean equal logic
}

// canonicalizer turns IR trees into cnodes for one rule's context.
type canonicalizer struct {
	fm  *fieldmap.Map
	ctx []string
	ok  bool // false once something unprovable (opaque, unknown op) was met
	// assume collects the field-map assumptions the form rests on ("FileName ≈ file
	// name of Image"): a relation that needs one is labeled field-map, not same-telemetry.
	assume map[string]bool
}

func (c *canonicalizer) assumption(s string) {
	if c.assume == nil {
		c.assume = map[string]bool{}
	}
	c.assume[s] = true
}

// argsFields are array fields whose elements are the arguments of the command line.
var argsFields = map[string]bool{"process.args": true}

func (c *canonicalizer) node(n *rule.Node) *cnode {
	if n == nil {
		c.ok = false
		return nil
	}
	switch n.Op {
	case rule.OpPred:
		return c.pred(n.Pred)
	case rule.OpRef:
		if len(n.Children) != 1 {
			c.ok = false
			return nil
		}
		return c.node(n.Children[0])
	case rule.OpAnd, rule.OpOr:
		op := cAnd
		if n.Op == rule.OpOr {
			op = cOr
		}
		return c.combine(op, c.nodes(n.Children))
	case rule.OpQuant:
		op := cOr
		if n.Quant == "all" {
			op = cAnd
		}
		return c.combine(op, c.nodes(n.Children))
	case rule.OpNot:
		if len(n.Children) != 1 {
			c.ok = false
			return nil
		}
		k := c.node(n.Children[0])
		if k == nil {
			return nil
		}
		if k.op == cNot { // not not x = x
			return k.kids[0]
		}
		return finish(&cnode{op: cNot, kids: []*cnode{k}})
	case rule.OpTrue:
		return c.combine(cAnd, nil)
	}
	c.ok = false // opaque or unknown: nothing can be proved about it
	return nil
}

func (c *canonicalizer) nodes(ns []*rule.Node) []*cnode {
	out := make([]*cnode, 0, len(ns))
	for _, n := range ns {
		if k := c.node(n); k != nil {
			out = append(out, k)
		}
	}
	return out
}

// pred turns one predicate into an atom or an AND/OR of atoms over its values.
func (c *canonicalizer) pred(p *rule.Pred) *cnode {
	if p == nil {
		c.ok = false
		return nil
	}
	canonField := ""
	var entry fieldmap.Entry
	known := false
	if p.Field != "" {
		entry, known = c.lookup(p.Field)
		canonField = p.Field
		if known {
			canonField = entry.Canonical
		}
		canonField = strings.ToLower(canonField)
	}
	var ts []string
	encoded, elem := false, false
	for _, t := range p.Transforms {
		switch {
		case t == rule.TCased:
		case t == rule.TElem:
			elem = true
		case rule.IsEncoding(t):
			encoded = true
		default:
			ts = append(ts, t)
		}
	}
	if elem && p.All {
		// Every element must pass: no implication with any-element tests is proved.
		ts = append(ts, "elem-all")
		elem = false
	}
	if elem && (argsFields[canonField] || argsFields[strings.ToLower(p.Field)]) {
		c.assumption(p.Field + " elements appear verbatim in the command line")
		canonField = "commandline"
	}
	values := p.Values
	if encoded {
		// An encoding (windash, base64offset, utf16) is a set of plain values: expand it,
		// so `|windash|contains '-x'` equals the five contains tests another language
		// writes out.
		values = nil
		for _, v := range p.Values {
			vs, err := rule.ExpandValue(p, v)
			if err != nil {
				c.ok = false
				return nil
			}
			values = append(values, vs...)
		}
	}
	transforms := strings.Join(ts, "|")
	cased := p.Cased()
	if p.Kind == rule.IsNull || p.Kind == rule.IsNotNull {
		return finish(&cnode{op: cAtom, atom: Atom{Field: canonField, Kind: p.Kind}})
	}
	if len(values) == 0 {
		c.ok = false
		return nil
	}
	var kids []*cnode
	for _, v := range values {
		kind, val := p.Kind, v.S
		if v.Type == rule.Null {
			kind, val = rule.IsNull, ""
		}
		field := canonField
		if known && entry.NameOnly && !elem {
			field, kind, val = nameOnly(field, kind, val, v.Wild)
			if !strings.HasSuffix(field, "#name") {
				c.assumption(p.Field + " ≈ file name of " + entry.Canonical)
			}
		}
		if kind == rule.In {
			kind = rule.Eq
		}
		atomCased, atomTs, wild := cased, transforms, v.Wild
		if wild {
			val = rule.NormalizeGlob(val)
		}
		if kind == rule.Regex {
			kind, val, atomCased, atomTs = regexAtom(p, val)
			wild = false
		}
		if !atomCased {
			val = strings.ToLower(val)
		} else if kind != rule.Regex && noCase(val) {
			// Case cannot matter for a value without letters: `== "4688"` and `=~ "4688"` are one test.
			atomCased = false
		}
		kids = append(kids, finish(&cnode{op: cAtom, atom: Atom{
			Field: field, Kind: kind, Transforms: atomTs, Cased: atomCased, Value: val, Wild: wild, Elem: elem,
		}}))
	}
	op := cOr
	if p.All {
		op = cAnd
	}
	return c.combine(op, kids)
}

func (c *canonicalizer) lookup(field string) (fieldmap.Entry, bool) {
	return c.fm.Exact(c.ctx, field)
}

// combine flattens same-op children, removes duplicates, sorts, and collapses singletons.
func (c *canonicalizer) combine(op cop, kids []*cnode) *cnode {
	var flat []*cnode
	for _, k := range kids {
		if k.op == op {
			flat = append(flat, k.kids...)
		} else {
			flat = append(flat, k)
		}
	}
	if op == cOr {
		flat = dropEmptyUnderNull(flat)
	}
	sort.Slice(flat, func(i, j int) bool { return flat[i].str < flat[j].str })
	out := flat[:0]
	for i, k := range flat {
		if i > 0 && k.str == flat[i-1].str {
			continue
		}
		out = append(out, k)
	}
	if len(out) == 1 {
		return out[0]
	}
	return finish(&cnode{op: op, kids: out})
}

func finish(n *cnode) *cnode {
	switch n.op {
	case cAtom:
		n.str = "(" + n.atom.key() + ")"
	default:
		var b strings.Builder
		b.WriteString([]string{"", "and", "or", "not"}[n.op])
		b.WriteByte('[')
		for i, k := range n.kids {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(k.str)
		}
		b.WriteByte(']')
		n.str = b.String()
	}
	return n
}

// conjuncts returns n's top-level conjuncts (n itself unless it is an AND).
func (n *cnode) conjuncts() []*cnode {
	if n.op == cAnd {
		return n.kids
	}
	return []*cnode{n}
}

func hashID(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:6])
}

// nameOnly maps a test on a field that holds only a file name (FileName,
// process_name) onto the canonical path field where the two are exactly equivalent:
// name == x is path ends_with \x, and name ends_with x is path ends_with x when x has
// no backslash. Any other test (name contains ":" is not path contains ":") stays on a
// field of its own, so no relation is ever proved through it. Indicator counting uses
// the looser fieldmap.Normalize; neighbors must be exact.
func nameOnly(canon string, kind rule.Kind, val string, wild bool) (string, rule.Kind, string) {
	switch {
	case wild:
	case kind == rule.Eq || kind == rule.In:
		return canon, rule.EndsW, `\` + val
	case kind == rule.EndsW && !strings.Contains(val, `\`):
		return canon, kind, val
	}
	return canon + "#name", kind, val
}

// regexAtom normalizes a regular expression test. Its case sensitivity is its i flag,
// however the language states it (Sigma |re|i, a KQL `(?i)` prefix, YARA-L nocase),
// so a leading inline flag group joins the flags; the pattern itself is never
// case-folded (`\S` is not `\s`). A pattern that is a plain literal with optional
// anchors is the string test it spells: `^x$` eq, `^x` starts_with, `x$` ends_with,
// `x` match, so a YARA-L `re.regex(f, `\\x\.exe$`) nocase` meets a Sigma endswith.
func regexAtom(p *rule.Pred, pat string) (rule.Kind, string, bool, string) {
	flags := map[string]bool{}
	var other []string
	for _, t := range p.Transforms {
		switch t {
		case rule.TIgnoreCase, rule.TMultiline, rule.TDotAll:
			flags[t] = true
		case rule.TCased, rule.TElem:
		default:
			if !rule.IsEncoding(t) {
				other = append(other, t)
			}
		}
	}
	for strings.HasPrefix(pat, "(?") {
		end := strings.IndexByte(pat, ')')
		if end < 0 || strings.Trim(pat[2:end], "ims") != "" || end == 2 {
			break
		}
		for _, f := range pat[2:end] {
			flags[string(f)] = true
		}
		pat = pat[end+1:]
	}
	cased := !flags[rule.TIgnoreCase]
	if len(other) == 0 && !flags[rule.TMultiline] {
		if kind, lit, ok := literalRegex(pat); ok {
			return kind, lit, cased || noCase(lit), ""
		}
	}
	var fs []string
	for _, f := range []string{rule.TIgnoreCase, rule.TMultiline, rule.TDotAll} {
		if flags[f] {
			fs = append(fs, f)
		}
	}
	return rule.Regex, pat, true, strings.Join(append(other, fs...), "|")
}

// literalRegex reads a pattern made only of literal characters (escaped
// metacharacters allowed), optionally anchored with ^ and $.
func literalRegex(pat string) (rule.Kind, string, bool) {
	start := strings.HasPrefix(pat, "^")
	if start {
		pat = pat[1:]
	}
	end := strings.HasSuffix(pat, "$") && escapedRun(pat[:len(pat)-1])%2 == 0
	if end {
		pat = pat[:len(pat)-1]
	}
	var b strings.Builder
	for i := 0; i < len(pat); i++ {
		c := pat[i]
		switch {
		case c == '\\':
			// RE2 reads a backslash before any ASCII punctuation as that character.
			if i+1 >= len(pat) || pat[i+1] >= 0x80 || isAlnum(pat[i+1]) {
				return "", "", false
			}
			i++
			b.WriteByte(pat[i])
		case strings.IndexByte(`.+*?()|[]{}^$`, c) >= 0:
			return "", "", false
		default:
			b.WriteByte(c)
		}
	}
	if b.Len() == 0 {
		return "", "", false
	}
	switch {
	case start && end:
		return rule.Eq, b.String(), true
	case start:
		return rule.StartsW, b.String(), true
	case end:
		return rule.EndsW, b.String(), true
	}
	return rule.Match, b.String(), true
}

// noCase reports whether case cannot matter for s (no letter changes under folding).
func noCase(s string) bool { return strings.ToLower(s) == strings.ToUpper(s) }

// escapedRun counts the backslashes at the end of s: an odd count escapes what follows.
func escapedRun(s string) int {
	n := 0
	for n < len(s) && s[len(s)-1-n] == '\\' {
		n++
	}
	return n
}

// dropEmptyUnderNull removes `f == ""` from an OR that also holds `f is null`: null
// means absent or empty, so the equality adds nothing. Languages without null (UDM)
// can only write the second.
func dropEmptyUnderNull(kids []*cnode) []*cnode {
	null := map[string]bool{}
	for _, k := range kids {
		if k.op == cAtom && k.atom.Kind == rule.IsNull {
			null[k.atom.Field] = true
		}
	}
	if len(null) == 0 {
		return kids
	}
	out := kids[:0:0]
	for _, k := range kids {
		if k.op == cAtom && k.atom.Kind == rule.Eq && k.atom.Value == "" && k.atom.Transforms == "" && null[k.atom.Field] {
			continue
		}
		out = append(out, k)
	}
	return out
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
