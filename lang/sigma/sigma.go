// Package sigma reads Sigma rules (specification v2.1, plus the legacy forms still
// found in the wild) into ruledex's IR: metadata, the boolean tree of predicates, the
// stages a rule page shows, and located diagnostics. It never panics on bad input.
//
// How Sigma maps onto the IR (what the engine and pages may rely on):
//
//   - A selection is an OpRef named after it whose child is its body: a mapping is an
//     OpAnd of its field items, a list of mappings an OpOr of OpAnds, a list of plain
//     values one Keyword predicate (values OR-ed). An empty mapping is OpTrue. The
//     condition's `1 of p`/`any of p`/`all of p` is an OpQuant (Quant "1" or "all",
//     Name the pattern or "them") whose children are the matching OpRefs; `them`
//     leaves out selections whose name starts with `_`, as pySigma does. A list of
//     conditions is an OpOr of them. What cannot be modelled (a name that is not a
//     selection, a bad value) is OpOpaque, with an error diagnostic.
//   - Pred.Kind is the effective test after the modifiers: `*x`/`|endswith` is EndsW,
//     `x*`/`|startswith` StartsW, `*x*`/`|contains` Match, each with the stars removed
//     and Wild false; any other wildcard use is Glob with the whole pattern (Wild true,
//     ruledex glob syntax; `*` alone means any value). Values without wildcards are
//     unescaped literals. Values of one field that test different kinds are split into
//     an OpOr (OpAnd under |all) of predicates.
//   - Keyword values keep their pattern as written (Wild when it has wildcards); a
//     keyword holds when some field of the event contains it. A field-less modified
//     item (`|contains: x`) is a Keyword whose value carries the stars.
//   - Typed values: numbers and booleans written bare keep Value.Type (Number, Bool)
//     and their text as written; quoted ones are strings.
//   - `null` (or an empty value) is IsNull with no values; an empty quoted string is Eq "". |exists true
//     is IsNotNull, false IsNull.
//   - |neq on a plain value is Ne; on anything else (|contains|neq, |fieldref|neq) the
//     predicate of the effective kind is wrapped in OpNot. Several values stay OR-ed.
//   - |re is Regex with the pattern as written; it is case-sensitive unless the `i`
//     transform is present (m, s are the other flags). |cidr is CIDR, |lt… are Lt/Le/
//     Gt/Ge with Number values, |fieldref is FieldRef whose value is the other field
//     (a following contains/startswith/endswith is kept as a transform of that name).
//   - Transforms hold, in the order written: cased, windash, base64, base64offset,
//     utf16le/utf16be/utf16/wide, expand (values keep their %placeholders%), the regex
//     flags, and the date parts minute…year. rule.ExpandValue turns a value into the
//     strings to compare for the encoding transforms.
//   - Legacy aggregations (`| count(x) by y > n`, `| near …`) leave Root as the part
//     before the pipe and add a final StageAggregation (Rule.GroupBy, Rule.Timeframe).
//     Correlation documents have no Root: Rule.Correlation and a StageCorrelation.
//
// Stages (REFERENCE §1.7): Stage 0 is the condition as written. A top-level OR (or a
// list of conditions) makes alternatives, numbered by Stage.Alt from 1; otherwise Alt
// is 0. Each top-level conjunct of an alternative is one stage: a selection
// (StageSelection, Label its name, "not name" and Negated when negated), `all of p`
// expanded into one selection stage per member, `1 of p`/`any of p`/`not 1 of p` one
// StageQuantified labelled as written, and any other group (`(a or b)`) one
// StageQuantified labelled with its source text. Text is the selections involved as
// normalized Sigma YAML; Node is the conjunct as it stands in Root.
//
// Parser is stateless and safe for concurrent use.
package sigma

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/ruledex/ruledex/rule"
	"go.yaml.in/yaml/v3"
)

// Parser implements ingest.Parser for Sigma.
type Parser struct{}

// Language is rule.Sigma.
func (Parser) Language() rule.Language { return rule.Sigma }

// Detect reports whether data looks like a Sigma rule, correlation or filter document:
// a YAML file with a top-level `detection:` or `correlation:` key, or a `filter:` key
// next to `logsource:`. Splunk ESCU (`search:`), Sentinel (`query:`) and pySigma
// pipeline/config files have none of these at the top level.
func (Parser) Detect(p string, data []byte) bool {
	ext := strings.ToLower(path.Ext(p))
	if ext != ".yml" && ext != ".yaml" {
		return false
	}
	var det, filter, logsource, foreign bool
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		// Documents may be indented by a space (seen in legacy collections).
		if len(line) > 0 && line[0] == ' ' {
			line = line[1:]
		}
		if len(line) == 0 || line[0] == ' ' || line[0] == '#' || line[0] == '\t' {
			continue
		}
		switch {
		case hasKey(line, "detection"), hasKey(line, "correlation"):
			det = true
		case hasKey(line, "filter"):
			filter = true
		case hasKey(line, "logsource"):
			logsource = true
		case hasKey(line, "search"), hasKey(line, "query"), hasKey(line, "transformations"),
			hasKey(line, "fieldmappings"), hasKey(line, "logsources"):
			foreign = true
		}
	}
	if foreign {
		return false
	}
	return det || (filter && logsource)
}

func hasKey(line []byte, key string) bool {
	if !bytes.HasPrefix(line, []byte(key)) || len(line) <= len(key) || line[len(key)] != ':' {
		return false
	}
	return len(line) == len(key)+1 || line[len(key)+1] == ' ' || line[len(key)+1] == '\t' || line[len(key)+1] == '\r'
}

// chunk is one YAML document of a file.
type chunk struct {
	text      string // verbatim
	startLine int    // 1-based line of text's first line
}

// splitDocs cuts a file at its `---` document markers. Block scalars are always
// indented, so a marker at column 0 cannot sit inside one.
func splitDocs(data string) []chunk {
	var out []chunk
	start, startLine, line := 0, 1, 1
	for pos := 0; pos <= len(data); {
		end := strings.IndexByte(data[pos:], '\n')
		next := len(data) + 1
		if end >= 0 {
			end += pos
			next = end + 1
		} else {
			end = len(data)
		}
		l := strings.TrimRight(data[pos:end], "\r")
		if isMarker(l, "---") || isMarker(l, "...") {
			out = append(out, chunk{text: data[start:pos], startLine: startLine})
			start, startLine = min(next, len(data)), line+1
		}
		pos = next
		line++
	}
	out = append(out, chunk{text: data[start:], startLine: startLine})
	return out
}

// trimTrailingBlank cuts a document after its last non-blank line (newline included),
// so the body stays a byte-exact substring of the file.
func trimTrailingBlank(s string) string {
	i := strings.LastIndexFunc(s, func(r rune) bool { return r != ' ' && r != '\t' && r != '\r' && r != '\n' })
	if i < 0 {
		return s
	}
	if j := strings.IndexByte(s[i:], '\n'); j >= 0 {
		return s[:i+j+1]
	}
	return s
}

func isMarker(l, m string) bool {
	if !strings.HasPrefix(l, m) {
		return false
	}
	rest := l[len(m):]
	return rest == "" || rest[0] == ' ' || rest[0] == '\t'
}

// blank reports whether a chunk holds only comments and whitespace.
func blank(s string) bool {
	for _, l := range strings.Split(s, "\n") {
		t := strings.TrimSpace(l)
		if t != "" && !strings.HasPrefix(t, "#") && !strings.HasPrefix(t, "%") {
			return false
		}
	}
	return true
}

var yamlLineRe = regexp.MustCompile(`line (\d+)`)

// Parse reads every document of a Sigma file. See ingest.Parser.
func (p Parser) Parse(src rule.Source, data []byte) (rules []*rule.Rule, diags []rule.Diagnostic) {
	defer func() {
		// A last safety net: the fuzz test shows it is not needed, but one bad file must
		// never stop an ingest.
		if r := recover(); r != nil {
			diags = append(diags, rule.Diagnostic{Severity: rule.Error, Code: "sigma/internal/panic",
				Pos: rule.Pos{File: src.Path}, Message: fmt.Sprintf("internal error: %v", r)})
		}
	}()
	f := &fileCtx{src: src, data: string(data)}
	return f.parse()
}

// fileCtx carries state across the documents of one file (legacy `action: global`).
type fileCtx struct {
	src    rule.Source
	data   string
	global *yaml.Node // mapping merged into each following document
	prev   *yaml.Node // last rule document, for `action: repeat`
	multi  bool
	rules  []*rule.Rule
	diags  []rule.Diagnostic
}

func (f *fileCtx) parse() ([]*rule.Rule, []rule.Diagnostic) {
	chunks := splitDocs(f.data)
	var docs []chunk
	for _, c := range chunks {
		if !blank(c.text) {
			docs = append(docs, c)
		}
	}
	f.multi = len(docs) > 1
	if len(docs) == 0 {
		f.diags = append(f.diags, rule.Diagnostic{Severity: rule.Error, Code: "sigma/yaml/empty",
			Pos: rule.Pos{File: f.src.Path, Line: 1}, Message: "file holds no YAML document"})
		return nil, f.diags
	}
	collection := false
	for _, c := range docs {
		if strings.Contains(c.text, "action:") {
			collection = true
		}
	}
	for _, c := range docs {
		var n yaml.Node
		err := yaml.Unmarshal([]byte(c.text), &n)
		if err != nil {
			f.yamlError(c, err)
			continue
		}
		offsetLines(&n, c.startLine-1)
		root := &n
		if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
			root = root.Content[0]
		}
		if root.Kind != yaml.MappingNode {
			r := f.newRule(c)
			(&docCtx{r: r, file: f.src.Path, text: f.data}).errf(root, "sigma/yaml/not-mapping", "document is not a YAML mapping")
			f.add(r)
			continue
		}
		body := c.text
		if f.multi {
			body = trimTrailingBlank(body)
		}
		repeated := false
		if a := mapGet(root, "action"); a != nil && collection {
			switch a.Value {
			case "global":
				f.global = root
				continue
			case "reset":
				f.global = nil
				continue
			case "repeat":
				if f.prev != nil {
					root = mergeMaps(f.prev, root)
					repeated = true
				}
			}
		}
		merged := root
		if f.global != nil {
			merged = mergeMaps(f.global, root)
		}
		if f.global != nil || repeated {
			// The rule's meaning spans several documents: its body is the whole
			// collection, which is still the file verbatim.
			body = f.data
		}
		f.prev = merged
		r := f.newRule(c)
		r.Body = body
		d := &docCtx{r: r, file: f.src.Path, text: f.data}
		d.build(merged)
		f.add(r)
	}
	f.checkCorrelationRefs()
	if len(f.rules) == 0 && len(f.diags) == 0 {
		f.diags = append(f.diags, rule.Diagnostic{Severity: rule.Error, Code: "sigma/collection/empty",
			Pos: rule.Pos{File: f.src.Path, Line: docs[0].startLine}, Message: "file defines no rule (only collection control documents)"})
	}
	return f.rules, f.diags
}

func (f *fileCtx) newRule(c chunk) *rule.Rule {
	idx := len(f.rules)
	src := f.src
	src.Line = firstContentLine(c)
	src.Index = idx
	return &rule.Rule{
		ID:       contentID(c.text),
		Language: rule.Sigma,
		Source:   src,
		Class:    rule.Detection,
		Type:     "rule",
		Body:     c.text,
		BodyLang: "yaml",
		Stages:   []rule.Stage{},
	}
}

func (f *fileCtx) add(r *rule.Rule) {
	if r.Title == "" {
		r.Title = strings.TrimSuffix(path.Base(f.src.Path), path.Ext(f.src.Path))
		if f.multi {
			r.Title += fmt.Sprintf(" #%d", r.Source.Index+1)
		}
	}
	f.rules = append(f.rules, r)
}

// contentID is the id of a rule without `id:`: a hash of its text (line ends and
// trailing blanks normalized), so that hunt, the catalog and `show` give the same rule
// the same id however its file was reached (an id from the path changed with the
// spelling of --rules). A rule that does write `id:` replaces it.
func contentID(text string) string {
	var b strings.Builder
	b.WriteString("sigma\x00")
	for _, l := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		b.WriteString(strings.TrimRight(l, " \t\r"))
		b.WriteByte('\n')
	}
	h := sha256.Sum256([]byte(strings.TrimRight(b.String(), "\n")))
	return hex.EncodeToString(h[:8])
}

func firstContentLine(c chunk) int {
	for i, l := range strings.Split(c.text, "\n") {
		t := strings.TrimSpace(l)
		if t != "" && !strings.HasPrefix(t, "#") {
			return c.startLine + i
		}
	}
	return c.startLine
}

// yamlError turns a YAML syntax error into a rule carrying a located error, so the
// file still appears in the catalog with what can be read by line.
func (f *fileCtx) yamlError(c chunk, err error) {
	r := f.newRule(c)
	line := 0
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		if n, e := strconv.Atoi(m[1]); e == nil {
			line = n + c.startLine - 1
			msg = yamlLineRe.ReplaceAllString(msg, "line "+strconv.Itoa(line))
		}
	}
	if line == 0 {
		line = c.startLine
	}
	for _, l := range strings.Split(c.text, "\n") {
		if strings.HasPrefix(l, "title:") {
			r.Title = strings.Trim(strings.TrimSpace(strings.TrimPrefix(l, "title:")), `'"`)
		}
		if strings.HasPrefix(l, "id:") {
			if id := strings.Trim(strings.TrimSpace(strings.TrimPrefix(l, "id:")), `'"`); id != "" {
				r.ID = id
			}
		}
	}
	r.Diagnostics = append(r.Diagnostics, rule.Diagnostic{Severity: rule.Error, Code: "sigma/yaml/syntax",
		Pos: rule.Pos{File: f.src.Path, Line: line, Col: 1}, Message: "YAML syntax error: " + msg})
	f.add(r)
}

// offsetLines shifts node positions from chunk-relative to file lines.
func offsetLines(n *yaml.Node, off int) {
	if n == nil || off == 0 {
		return
	}
	var walk func(*yaml.Node)
	seen := map[*yaml.Node]bool{}
	walk = func(n *yaml.Node) {
		if n == nil || seen[n] {
			return
		}
		seen[n] = true
		n.Line += off
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(n)
}

// mergeMaps deep-merges b over a (legacy collections): mappings merge recursively,
// anything else in b replaces a's value. Neither input is modified.
func mergeMaps(a, b *yaml.Node) *yaml.Node {
	a, b = resolve(a), resolve(b)
	if a == nil || a.Kind != yaml.MappingNode || b == nil || b.Kind != yaml.MappingNode {
		return b
	}
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: b.Tag, Line: b.Line, Column: b.Column}
	used := map[string]bool{}
	for i := 0; i+1 < len(a.Content); i += 2 {
		k := a.Content[i]
		v := a.Content[i+1]
		if bv := mapGet(b, k.Value); bv != nil {
			v = mergeMaps(v, bv)
			used[k.Value] = true
		}
		out.Content = append(out.Content, k, v)
	}
	for i := 0; i+1 < len(b.Content); i += 2 {
		if !used[b.Content[i].Value] {
			out.Content = append(out.Content, b.Content[i], b.Content[i+1])
		}
	}
	return out
}

// resolve follows YAML aliases.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.AliasNode {
		return nil
	}
	return n
}

// mapGet returns the value of key in mapping m (the last one, as PyYAML does).
func mapGet(m *yaml.Node, key string) *yaml.Node {
	m = resolve(m)
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	var v *yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			v = m.Content[i+1]
		}
	}
	return resolve(v)
}

var uuidRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// checkCorrelationRefs warns, in files that hold both rules and correlations, about
// correlation references that are neither a rule of the file (by name or id) nor an
// id, which another file could hold: most likely a misspelt name.
func (f *fileCtx) checkCorrelationRefs() {
	known := map[string]bool{}
	base := false
	for _, r := range f.rules {
		base = base || r.Correlation == nil
		known[r.ID] = true
		if r.Name != "" {
			known[r.Name] = true
		}
	}
	if !base {
		// A file of correlations only refers to rules kept elsewhere.
		return
	}
	for _, r := range f.rules {
		if r.Correlation == nil {
			continue
		}
		for _, ref := range r.Correlation.Rules {
			if !known[ref] && !uuidRe.MatchString(ref) {
				r.Diagnostics = append(r.Diagnostics, rule.Diagnostic{Severity: rule.Warning,
					Code: "sigma/correlation/unresolved", Pos: rule.Pos{File: f.src.Path, Line: max(r.Source.Line, 1)},
					Message: fmt.Sprintf("correlation refers to %q, which is no rule name or id of this file", ref)})
			}
		}
	}
}
