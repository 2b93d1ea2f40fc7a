// Package kuery reads Kibana query language (KQL, "kuery") and Lucene query strings, as
// Elastic detection rules of language "kuery" and "lucene" write them, into ruledex's
// predicate tree. It has its own tolerant scannerless parsers (the grammars are
// whitespace-sensitive: a Kibana unquoted value runs across spaces up to a keyword).
//
// Reading choices, so pages and relations can be explained:
//
//   - Case. Elasticsearch compares keyword and wildcard fields byte for byte (term,
//     prefix and wildcard queries are case-sensitive unless case_insensitive is set,
//     which Kibana's query building does not do by default), so every predicate
//     carries rule.TCased unless the field is a text field. Text fields are
//     the ECS match_only_text fields (message, error.message), every `.text`
//     multi-field, and the non-ECS text fields of the rules' schema
//     (powershell.file.script_block_text, github.reasons.message); see textFields.
//     A field we do not know is read as keyword: the cased reading never claims more
//     matches than the rule has.
//   - Text fields are analyzed: a quoted phrase or a bare word matches whole tokens,
//     case-insensitively. We read it as rule.Term, the IR's token kind (value bounded
//     by non-alphanumerics). The boundaries are close to, not the same as, the
//     analyzer's: a phrase query also matches across other punctuation between its
//     tokens (Term keeps the value's own punctuation, so it is stricter there), and the
//     analyzers keep some characters inside tokens ('-', '_', and '.' between letters
//     for the standard tokenizer) where Term sees a boundary (broader there). Several
//     bare words are OR-ed, as a match query does. A wildcard on a text field (none in
//     the rules today) is read like one on a keyword field but without TCased, though
//     Elasticsearch applies it to single tokens.
//   - Kibana wildcards: only `*`, and only in unquoted values (a quoted `*` is literal).
//     `x*` is starts_with, `*x` ends_with, `*x*` match, other patterns glob, `field : *`
//     is is_not_null. Lucene also has `?`, anchored `/regex/` (written as ^(?:re)$
//     because rule.Regex is an unanchored search, with flag s: Lucene's . matches any
//     character, newlines included) and ranges.
//   - ECS array fields (process.args, event.category, event.type, related.*, ... see
//     arrayField) carry rule.TElem: a term query holds when one element matches.
//   - Lucene: a lowercase `or`/`and` is a term, not an operator, as in Lucene itself;
//     juxtaposed clauses are OR-ed (query_string's default operator), `+x` is required,
//     `-x` and `NOT x` prohibited; when a group has required clauses, its optional ones
//     only score and are dropped from the logic.
//   - Nested `field : { q }` prefixes q's fields with `field.`. The condition that all
//     of q holds on one nested object has no IR form, so q reads as independent
//     conditions (broader), with a warning unless q is a single predicate.
//   - A value without a field searches every field; it reads as a rule.Keyword
//     predicate, which is broader (Kibana matches whole keyword values and text
//     phrases, not any substring of the event).
//   - A field name with `*` (azure.auditlogs.properties.target_resources.*.display_name)
//     is kept as written: Kibana expands it to every mapped field it matches, OR-ed; a
//     consumer that does not expand patterns finds no such field.
//   - Anything else (fuzzy `~`, a syntax error) becomes an
//     OpOpaque node with a located warning; the rest of the query is still read.
package kuery

import (
	"regexp"
	"sort"
	"strings"

	"github.com/ruledex/ruledex/rule"
)

// Parse reads q, a Kibana query (lucene false) or a Lucene query string (lucene true),
// into a predicate tree over ECS field names as written. at is the position of q's first
// character in its file: diagnostics are located from it (line by line). Parse never
// panics; what it cannot model becomes an OpOpaque node with a warning.
func Parse(q string, lucene bool, at rule.Pos) (*rule.Node, []rule.Diagnostic) {
	p := &parser{src: q, at: at}
	var n *rule.Node
	if lucene {
		p.code = "lucene"
		n = p.lucene()
	} else {
		p.code = "kuery"
		n = p.kuery()
	}
	if n == nil {
		n = &rule.Node{Op: rule.OpTrue, Pos: at}
	}
	return n, p.diags
}

// parser is shared by both grammars: a cursor over src and the diagnostics so far.
type parser struct {
	src   string
	i     int
	at    rule.Pos
	code  string // "kuery" or "lucene": the diagnostic code prefix
	diags []rule.Diagnostic
	depth int
	lines []int // line start offsets, built on first use
}

// maxDepth bounds recursion on hostile input (fuzzing); real rules nest a few levels.
const maxDepth = 200

// pos maps an offset of src to the file.
func (p *parser) pos(off int) rule.Pos {
	if off > len(p.src) {
		off = len(p.src)
	}
	if p.lines == nil {
		p.lines = lineStarts(p.src)
	}
	line := sort.SearchInts(p.lines, off+1) - 1 // index of the last line start <= off
	ps := rule.Pos{File: p.at.File}
	if p.at.Line == 0 {
		return ps
	}
	ps.Line = p.at.Line + line
	ps.Col = off - p.lines[line] + 1
	if line == 0 && p.at.Col > 0 {
		ps.Col = p.at.Col + off
	}
	return ps
}

// lineStarts returns the offset of each line's first byte.
func lineStarts(s string) []int {
	out := []int{0}
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, i+1)
		}
	}
	return out
}

func (p *parser) warn(off int, code, msg string) {
	p.diags = append(p.diags, rule.Diagnostic{Severity: rule.Warning, Code: p.code + "/" + code, Pos: p.pos(off), Message: msg})
}

// opaque keeps src[from:to] as text with a warning.
func (p *parser) opaque(from, to int, code, msg string) *rule.Node {
	if to > len(p.src) {
		to = len(p.src)
	}
	if from > to {
		from = to
	}
	p.warn(from, code, msg)
	return &rule.Node{Op: rule.OpOpaque, Text: strings.TrimSpace(p.src[from:to]), Pos: p.pos(from)}
}

func (p *parser) eof() bool { return p.i >= len(p.src) }

func (p *parser) peek() byte {
	if p.i < len(p.src) {
		return p.src[p.i]
	}
	return 0
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// space skips whitespace and reports whether there was any.
func (p *parser) space() bool {
	start := p.i
	for p.i < len(p.src) && isSpace(p.src[p.i]) {
		p.i++
	}
	return p.i > start
}

// word reports whether the case-insensitive keyword w starts at off and is followed by
// whitespace, an opening parenthesis or the end.
func (p *parser) wordAt(off int, w string) bool {
	if off+len(w) > len(p.src) || !strings.EqualFold(p.src[off:off+len(w)], w) {
		return false
	}
	if off+len(w) == len(p.src) {
		return true
	}
	c := p.src[off+len(w)]
	return isSpace(c) || c == '('
}

// val is one value as written: its literal text, its ruledex glob form when it has
// unescaped wildcards, and how it was written.
type val struct {
	lit    string // escapes removed, wildcards as written
	glob   string // ruledex glob syntax; "" when the value has no wildcard
	quoted bool
	off    int
}

// fieldInfo is what the schema says about a field that changes how values compare.
type fieldInfo struct {
	text  bool // analyzed text: case-insensitive token match
	array bool // multi-valued: a test holds on one element
}

// textFields are the analyzed fields among those Elastic rules query: ECS 9.5
// match_only_text fields and the text fields of detection-rules' non-ECS schema
// (schemas/ecs_flat-9.5.0.json, schemas/non-ecs-schema.json). ECS `.text` multi-fields
// are matched by suffix in info.
var textFields = map[string]bool{
	"message": true, "error.message": true,
	"powershell.file.script_block_text": true, "github.reasons.message": true,
}

// arrayFields are ECS fields normalized as arrays (ECS `normalize: array`) that
// detection queries test; `.args` fields and related.* are matched by pattern in info.
var arrayFields = map[string]bool{
	"event.category": true, "event.type": true, "tags": true, "host.ip": true, "host.mac": true,
	"file.attributes": true, "dns.resolved_ip": true, "dns.answers": true, "dns.header_flags": true,
	"user.roles": true, "source.user.roles": true, "destination.user.roles": true,
	"threat.tactic.id": true, "threat.tactic.name": true, "threat.technique.id": true,
	"threat.technique.name": true, "threat.technique.subtechnique.id": true,
	"threat.technique.subtechnique.name": true, "email.to.address": true, "email.from.address": true,
	"email.cc.address": true, "email.bcc.address": true, "email.reply_to.address": true,
	"email.attachments": true, "dll.pe.imports": true, "file.pe.imports": true,
	"container.image.tag": true, "tls.client.supported_ciphers": true, "observer.ip": true,
	"host.target.ip": true, "process.env_vars": true, "registry.data.strings": true,
	"process.thread.capabilities.effective": true, "process.thread.capabilities.permitted": true,
	"tls.server.x509.issuer.common_name": true, "tls.server.x509.subject.common_name": true,
}

func info(field string) fieldInfo {
	var fi fieldInfo
	fi.text = textFields[field] || (strings.HasSuffix(field, ".text") && field != "process.io.text")
	fi.array = arrayFields[field] || strings.HasSuffix(field, ".args") || strings.HasPrefix(field, "related.")
	return fi
}

// transforms is the transform list for a comparison on field, in the order package
// eql writes them (cased, then elem), so equal tests of both languages compare equal.
func transforms(fi fieldInfo, cased bool) []string {
	var t []string
	if cased {
		t = append(t, rule.TCased)
	}
	if fi.array {
		t = append(t, rule.TElem)
	}
	return t
}

// typed gives an unquoted literal its type the way Kibana does (numbers, booleans).
func typed(v val) rule.Value {
	if v.quoted {
		return rule.Value{S: v.lit}
	}
	switch v.lit {
	case "true", "false":
		return rule.Value{S: v.lit, Type: rule.Bool}
	}
	if isNumber(v.lit) {
		return rule.Value{S: v.lit, Type: rule.Number}
	}
	return rule.Value{S: v.lit}
}

// kibanaNumber is the number syntax of Kibana's kuery grammar: no leading zeros, no
// exponent; anything else (0123, 1e5) stays a string, as Kibana sends it.
var kibanaNumber = regexp.MustCompile(`^(-?[1-9]+\d*([.]\d+)?)$|^(-?0[.]\d*[1-9]+)$|^0$|^0\.0$|^[.]\d{1,}$`)

func isNumber(s string) bool { return kibanaNumber.MatchString(s) }

// wildKind classifies a glob: a pattern that is only a prefix, suffix or infix of
// literal text becomes that kind with the literal; anything else stays a glob.
// The returned string is the literal for the first three kinds, the glob otherwise.
func wildKind(glob string) (rule.Kind, string) {
	inner := glob
	lead := strings.HasPrefix(inner, "*")
	inner = strings.TrimPrefix(inner, "*")
	trail := trailingWild(inner)
	if trail {
		inner = inner[:len(inner)-1]
	}
	if lit, ok := unglob(inner); ok && lit != "" {
		switch {
		case lead && trail:
			return rule.Match, lit
		case lead:
			return rule.EndsW, lit
		case trail:
			return rule.StartsW, lit
		default:
			return rule.Eq, lit
		}
	}
	return rule.Glob, glob
}

// unglob returns the literal text of a glob without wildcards.
func unglob(g string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(g); i++ {
		c := g[i]
		if c == '*' || c == '?' {
			return "", false
		}
		if c == '\\' && i+1 < len(g) && (g[i+1] == '*' || g[i+1] == '?' || g[i+1] == '\\') {
			i++
			c = g[i]
		}
		b.WriteByte(c)
	}
	return b.String(), true
}

// globEscape writes literal text in ruledex glob syntax.
func globEscape(b *strings.Builder, c byte) {
	if c == '*' || c == '?' || c == '\\' {
		b.WriteByte('\\')
	}
	b.WriteByte(c)
}

// leaf builds the predicate node for `field : v` (native is the operator as written).
func (p *parser) valuePred(field string, v val, native string) *rule.Node {
	fi := info(field)
	pos := p.pos(v.off)
	mk := func(k rule.Kind, cased bool, vals ...rule.Value) *rule.Node {
		return rule.Leaf(&rule.Pred{Field: field, Kind: k, Values: vals, Transforms: transforms(fi, cased), Native: native, Pos: pos})
	}
	if v.glob != "" {
		if v.glob == "*" {
			return rule.Leaf(&rule.Pred{Field: field, Kind: rule.IsNotNull, Native: native, Pos: pos})
		}
		k, s := wildKind(v.glob)
		if k == rule.Glob {
			return mk(k, !fi.text, rule.Value{S: s, Wild: true})
		}
		return mk(k, !fi.text, rule.Value{S: s})
	}
	if fi.text {
		if v.quoted {
			return mk(rule.Term, false, rule.Value{S: v.lit})
		}
		var vals []rule.Value
		for _, w := range strings.Fields(v.lit) {
			vals = append(vals, rule.Value{S: w})
		}
		if len(vals) == 0 {
			vals = []rule.Value{{S: v.lit}}
		}
		return mk(rule.Term, false, vals...)
	}
	tv := typed(v)
	return mk(rule.Eq, tv.Type == "", tv)
}

// keywordPred is a value without a field: Kibana and Lucene search every field.
func (p *parser) keywordPred(v val) *rule.Node {
	if v.glob != "" {
		if v.glob == "*" {
			return &rule.Node{Op: rule.OpTrue, Pos: p.pos(v.off)}
		}
		return p.opaque(v.off, v.off+len(v.lit), "keyword-wildcard", "a wildcard value without a field is not modeled")
	}
	return rule.Leaf(&rule.Pred{Kind: rule.Keyword, Values: []rule.Value{{S: v.lit}}, Pos: p.pos(v.off)})
}

// rangePred builds `field op v`.
func (p *parser) rangePred(field, op string, v val) *rule.Node {
	k := map[string]rule.Kind{">": rule.Gt, ">=": rule.Ge, "<": rule.Lt, "<=": rule.Le}[op]
	tv := typed(v)
	if tv.Type == rule.Bool {
		tv.Type = ""
	}
	return rule.Leaf(&rule.Pred{Field: field, Kind: k, Values: []rule.Value{tv}, Transforms: transforms(info(field), false), Native: field + " " + op, Pos: p.pos(v.off)})
}

// join makes an AND/OR node, flattening children of the same op, and merges OR-ed
// predicates that differ only in their values into one multi-valued predicate.
func join(op rule.Op, kids []*rule.Node) *rule.Node {
	var flat []*rule.Node
	for _, k := range kids {
		if k == nil {
			continue
		}
		if k.Op == op {
			flat = append(flat, k.Children...)
			continue
		}
		flat = append(flat, k)
	}
	if op == rule.OpOr {
		flat = mergeValues(flat)
	}
	switch len(flat) {
	case 0:
		return nil
	case 1:
		return flat[0]
	}
	return &rule.Node{Op: op, Children: flat, Pos: flat[0].Pos}
}

// mergeValues folds OR-ed leaves on the same field, kind and transforms into one
// predicate with several values (values of a predicate are OR-ed), keeping order.
func mergeValues(nodes []*rule.Node) []*rule.Node {
	var out []*rule.Node
	for _, n := range nodes {
		if n.Op == rule.OpPred && n.Pred != nil && !n.Pred.All && mergeable(n.Pred.Kind) {
			merged := false
			for _, o := range out {
				if o.Op == rule.OpPred && sameTest(o.Pred, n.Pred) {
					o.Pred.Values = append(o.Pred.Values, n.Pred.Values...)
					merged = true
					break
				}
			}
			if merged {
				continue
			}
			cp := *n.Pred
			cp.Values = append([]rule.Value(nil), n.Pred.Values...)
			n = rule.Leaf(&cp)
		}
		out = append(out, n)
	}
	return out
}

func mergeable(k rule.Kind) bool {
	switch k {
	case rule.Eq, rule.Match, rule.StartsW, rule.EndsW, rule.Glob, rule.Regex, rule.Term, rule.Keyword:
		return true
	}
	return false
}

// sameTest: same field, kind and transforms. Case does not matter for numbers and
// booleans, so a test without TCased whose values are all non-text merges with a cased
// one (process.args : ("-f" or -9)); the merged predicate is cased.
func sameTest(a, b *rule.Pred) bool {
	if a.Field != b.Field || a.Kind != b.Kind || a.All {
		return false
	}
	ta, tb := uncased(a.Transforms), uncased(b.Transforms)
	if len(ta) != len(tb) {
		return false
	}
	for i := range ta {
		if ta[i] != tb[i] {
			return false
		}
	}
	if a.Cased() == b.Cased() {
		return true
	}
	switch {
	case !a.Cased() && untexted(a.Values):
		a.Transforms = b.Transforms
		return true
	case !b.Cased() && untexted(b.Values):
		return true
	}
	return false
}

func uncased(ts []string) []string {
	var out []string
	for _, t := range ts {
		if t != rule.TCased {
			out = append(out, t)
		}
	}
	return out
}

func untexted(vs []rule.Value) bool {
	for _, v := range vs {
		if v.Type == "" || v.Type == rule.String {
			return false
		}
	}
	return true
}

func not(n *rule.Node) *rule.Node {
	if n == nil {
		return nil
	}
	return &rule.Node{Op: rule.OpNot, Children: []*rule.Node{n}, Pos: n.Pos}
}

// trailingWild reports whether glob g ends with an unescaped *: the backslashes
// before it, if any, are an even number (each pair a literal backslash).
func trailingWild(g string) bool {
	if !strings.HasSuffix(g, "*") {
		return false
	}
	n := 0
	for i := len(g) - 2; i >= 0 && g[i] == '\\'; i-- {
		n++
	}
	return n%2 == 0
}
