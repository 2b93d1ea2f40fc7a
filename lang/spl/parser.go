// Package spl reads Splunk Enterprise Security Content Update (ESCU) detections: the
// detection YAML's metadata, and its SPL search as a pipeline of stages with predicates,
// after expanding the search macros defined in the repository's macros/*.yml.
//
// The search is read with a tolerant parser of our own: the search command's Boolean
// grammar (OR binding tighter than the implied AND), tstats where-clauses, eval
// expressions of where, and the aggregation and field-shaping commands. Anything it does
// not model stays visible as an opaque node or stage with a warning; it never fails a rule.
//
// Root holds only tests on events (columns.go has the details): the first search's and
// tstats' where clauses, and later filters on fields the events carry, renames undone
// (process_name after drop_dm_object_name(Processes) is Processes.process_name). After
// stats or tstats, a filter on a group-by field is still an event test; a filter on
// anything else makes the aggregating stage an aggregation (StageAggregation). A stats
// or tstats with no such filter after it only groups: its stage stays a pipeline stage
// with its Aggregation filled in, and the rule is an event filter. Columns made by eval,
// rex, lookup, spath, iplocation and the stats family are listed in Rule.Computed;
// filters on them stay in their stage, and Root gets an opaque stand-in when they come
// before any aggregation. A join's subsearch filters stay in the join stage. Detections
// whose data sources are all Linux ones get LogSource.Product "linux".
package spl

import (
	"bytes"
	"fmt"
	"path"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/ruledex/ruledex/rule"
)

// Parser implements ingest.Parser and ingest.RootAware for ESCU detections.
type Parser struct {
	once   sync.Once
	macros *MacroSet
}

func (p *Parser) set() *MacroSet {
	p.once.Do(func() {
		if p.macros == nil {
			p.macros = NewMacroSet()
		}
	})
	return p.macros
}

// NewParser returns a parser that uses macros (nil: only the builtins until Begin).
func NewParser(macros *MacroSet) *Parser { return &Parser{macros: macros} }

// Macros returns the parser's macro set.
func (p *Parser) Macros() *MacroSet { return p.set() }

// Language is rule.Splunk.
func (*Parser) Language() rule.Language { return rule.Splunk }

// Begin loads the macros/*.yml directories found under root. Several roots add up;
// a later definition of the same macro replaces an earlier one.
func (p *Parser) Begin(root string) error {
	_, err := p.set().LoadTree(root)
	return err
}

// Detect reports whether data is an ESCU detection: a YAML mapping with top-level
// `search:`, `name:` and `id:`, and none of the keys that mark Sigma (`detection:`,
// `logsource:`), Sentinel (`query:`) or an ESCU macro (`definition:`).
func (*Parser) Detect(p string, data []byte) bool {
	ext := strings.ToLower(path.Ext(p))
	if ext != ".yml" && ext != ".yaml" {
		return false
	}
	var search, name, id bool
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if len(line) == 0 || line[0] == ' ' || line[0] == '\t' || line[0] == '#' || line[0] == '-' {
			continue
		}
		switch {
		case bytes.HasPrefix(line, []byte("search:")):
			search = true
		case bytes.HasPrefix(line, []byte("name:")):
			name = true
		case bytes.HasPrefix(line, []byte("id:")):
			id = true
		case bytes.HasPrefix(line, []byte("detection:")), bytes.HasPrefix(line, []byte("logsource:")),
			bytes.HasPrefix(line, []byte("query:")), bytes.HasPrefix(line, []byte("definition:")):
			return false
		}
	}
	return search && name && id
}

// Parse reads one ESCU detection file.
func (p *Parser) Parse(src rule.Source, data []byte) ([]*rule.Rule, []rule.Diagnostic) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, []rule.Diagnostic{{Severity: rule.Error, Code: "spl/yaml",
			Pos: rule.Pos{File: src.Path, Line: yamlErrLine(err)}, Message: err.Error()}}
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, []rule.Diagnostic{{Severity: rule.Error, Code: "spl/yaml",
			Pos: rule.Pos{File: src.Path, Line: 1}, Message: "not a YAML mapping"}}
	}
	m := doc.Content[0]
	r := &rule.Rule{Language: rule.Splunk, Source: src, Class: rule.Detection, BodyLang: "spl"}
	r.Source.Line = 1
	r.Source.Index = 0
	fillMeta(r, m, src.Path)

	searchNode := get(m, "search")
	if searchNode == nil || searchNode.Kind != yaml.ScalarNode || strings.TrimSpace(searchNode.Value) == "" {
		pos := rule.Pos{File: src.Path, Line: m.Line, Col: m.Column}
		if searchNode != nil {
			pos = rule.Pos{File: src.Path, Line: searchNode.Line, Col: searchNode.Column}
		}
		r.Diagnostics = append(r.Diagnostics, rule.Diagnostic{Severity: rule.Error, Code: "spl/missing-search",
			Pos: pos, Message: "detection has no search"})
		r.Body = string(data)
		r.BodyLang = "yaml"
		r.Stages = []rule.Stage{}
		return []*rule.Rule{r}, nil
	}
	search := searchNode.Value
	r.Body = search
	r.Condition = search
	r.Bodies = append(r.Bodies, rule.Variant{Label: "ESCU YAML", Body: string(data), Lang: "yaml"})

	loc := newLocator(src.Path, data, searchNode)
	res := p.set().parseSearchText(search, loc)
	r.Stages = res.stages
	r.Root = res.root
	r.Params = res.params
	r.Outputs = res.outputs
	r.GroupBy = res.groupBy
	r.Computed = res.computed
	r.Timeframe = res.timeframe
	r.LogSource.DataModels = res.dataModels
	r.Diagnostics = append(r.Diagnostics, res.diags...)
	if res.expanded != search {
		r.Bodies = append(r.Bodies, rule.Variant{Label: "Macros expanded", Body: res.expanded, Lang: "spl"})
	}
	return []*rule.Rule{r}, nil
}

// searchResult is a parsed search.
type searchResult struct {
	stages     []rule.Stage
	root       *rule.Node
	params     []rule.Param
	outputs    []string
	groupBy    []string
	computed   []rule.Computed
	timeframe  string // the time bucket of a thresholded aggregation
	dataModels []string
	diags      []rule.Diagnostic
	expanded   string
	refs       []MacroRef
	resolved   int // macro references expanded (from files or builtins), nested ones included
	unresolved int
}

// ParseSearch parses a bare SPL search (no YAML): the stages, the predicate tree and the
// diagnostics, positions relative to the search text (line 1, column 1 = first byte).
func (m *MacroSet) ParseSearch(search string) (stages []rule.Stage, root *rule.Node, diags []rule.Diagnostic) {
	res := m.parseSearchText(search, textLocator(search))
	return res.stages, res.root, res.diags
}

func (m *MacroSet) parseSearchText(search string, loc *locator) (res searchResult) {
	defer func() {
		// The parser is written not to panic; this keeps a bug from taking a batch down.
		if v := recover(); v != nil {
			res = searchResult{
				stages: []rule.Stage{{Index: 0, Kind: rule.StageCondition, Label: "condition", Text: search, Pos: loc.pos(0)}},
				root:   &rule.Node{Op: rule.OpOpaque, Text: search, Pos: loc.pos(0)},
				diags: []rule.Diagnostic{{Severity: rule.Error, Code: "spl/internal", Pos: loc.pos(0),
					Message: fmt.Sprintf("internal parser error: %v", v)}},
			}
		}
	}()
	exp := m.expand(search)
	c := &ctx{exp: exp, loc: loc, file: loc.file}
	for _, r := range exp.refs {
		switch r.Status {
		case RefResolved, RefBuiltin:
			res.resolved++
			continue
		case RefUndefined:
			c.warn("spl/macro/undefined", r.Off, "macro `"+r.Call+"` is not defined; kept as written")
		case RefCycle:
			c.warn("spl/macro/cycle", r.Off, "macro `"+r.Call+"` calls itself; not expanded")
		case RefTooDeep:
			c.warn("spl/macro/too-deep", r.Off, "macro `"+r.Call+"` nests too deeply; not expanded")
		}
		res.unresolved++
	}
	ms, params := macroStage(exp)
	pl := &pipeline{ctx: c}
	if ms != nil {
		pl.base = 1 // the macro stage comes before the pipeline's
	}
	pl.run()

	stages := []rule.Stage{{Index: 0, Kind: rule.StageCondition, Label: "condition", Text: search, Pos: loc.pos(0)}}
	if ms != nil {
		ms.Index = 1
		ms.Pos = loc.pos(0)
		stages = append(stages, *ms)
		res.params = params
	}
	base := len(stages) - 1
	for _, st := range pl.stages {
		st.Index += base
		stages = append(stages, st)
	}
	res.stages = stages
	res.root = and(pl.filters...)
	res.outputs = pl.outputs
	res.groupBy = pl.groupBy
	res.computed = pl.computedList
	res.timeframe = pl.timeframe
	res.dataModels = pl.dataModels
	res.diags = c.diags
	res.expanded = exp.text
	res.refs = exp.refs
	return res
}

// fillMeta maps the ESCU metadata keys onto the rule.
func fillMeta(r *rule.Rule, m *yaml.Node, file string) {
	r.ID = scalar(get(m, "id"))
	if r.ID == "" {
		r.ID = rule.StableID(r.Source.Repo, r.Source.Path, 0)
	}
	r.Title = scalar(get(m, "name"))
	r.Description = strings.TrimSpace(scalar(get(m, "description")))
	r.Date = scalar(get(m, "date"))
	r.Status = scalar(get(m, "status"))
	if isDeprecatedPath(file) {
		r.Status = "deprecated"
	}
	r.Type = scalar(get(m, "type"))
	if strings.EqualFold(r.Type, "Hunting") {
		r.Class = rule.Hunting
	}
	var affiliation string
	r.Authors, affiliation = authors(scalar(get(m, "author")))
	r.References = strs(get(m, "references"))
	if fp := strings.TrimSpace(scalar(get(m, "known_false_positives"))); fp != "" {
		r.FalsePositives = []string{fp}
	}
	r.LogSource.DataSources = append(strs(get(m, "data_source")), strs(get(m, "data_sources"))...)
	r.LogSource.Product = platform(r.LogSource.DataSources, file)
	extra := map[string]string{}
	for _, k := range []string{"version", "how_to_implement"} {
		if v := strings.TrimSpace(scalar(get(m, k))); v != "" {
			extra[k] = v
		}
	}
	if affiliation != "" {
		extra["author_affiliation"] = affiliation
	}
	if dm := strs(get(m, "datamodel")); len(dm) > 0 {
		extra["datamodel"] = strings.Join(dm, ", ")
	}
	if tags := get(m, "tags"); tags != nil && tags.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(tags.Content); i += 2 {
			k, v := tags.Content[i].Value, tags.Content[i+1]
			switch k {
			case "mitre_attack_id":
				for _, t := range strs(v) {
					r.Techniques = append(r.Techniques, strings.ToUpper(strings.TrimSpace(t)))
				}
			case "observable", "required_fields":
				// Structured and long; the ESCU YAML body keeps them.
			default:
				if s := flat(v); s != "" {
					extra[k] = s
				}
			}
		}
	}
	if len(extra) > 0 {
		r.Extra = extra
	}
}

// affiliations are organizations ESCU lists after the people ("Michael Haag, Splunk").
var affiliations = map[string]bool{"splunk": true, "github community": true}

// authors splits ESCU's comma-separated author field, setting a trailing organization apart.
func authors(s string) (names []string, affiliation string) {
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			names = append(names, a)
		}
	}
	if n := len(names); n > 1 && affiliations[strings.ToLower(names[n-1])] {
		return names[:n-1], names[n-1]
	}
	return names, ""
}

func isDeprecatedPath(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if seg == "deprecated" {
			return true
		}
	}
	return false
}

func get(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func scalar(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

// strs reads a scalar or a sequence of scalars.
func strs(n *yaml.Node) []string {
	if n == nil {
		return nil
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Value != "" {
			return []string{n.Value}
		}
	case yaml.SequenceNode:
		var out []string
		for _, c := range n.Content {
			if c.Kind == yaml.ScalarNode && c.Value != "" {
				out = append(out, c.Value)
			}
		}
		return out
	}
	return nil
}

// flat renders a scalar or a list of scalars as text ("; "-joined) for Extra.
func flat(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		return strings.TrimSpace(n.Value)
	}
	return strings.Join(strs(n), "; ")
}

func yamlErrLine(err error) int {
	s := err.Error()
	i := strings.Index(s, "line ")
	if i < 0 {
		return 0
	}
	j := i + 5
	for j < len(s) && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	n, _ := strconv.Atoi(s[i+5 : j])
	return n
}

// locator maps offsets in the search text back to file positions. It is exact for a
// single-line scalar (plain, single- or double-quoted without escapes) and for literal
// block scalars; otherwise it points at the start of the search value.
type locator struct {
	file      string
	line, col int // where offset 0 is
	text      string
	oneLine   bool      // the value sits on one line of the file
	squote    bool      // single-quoted: each ' in the value is '' in the file
	block     bool      // literal block scalar: content lines start at indent
	indent    int       // block indentation (columns before content)
	lineStart []int     // offsets in text where each line starts (block scalars)
	node      yaml.Node // the value node, for the fallback position
}

func newLocator(file string, data []byte, n *yaml.Node) *locator {
	l := &locator{file: file, line: n.Line, col: n.Column, text: n.Value, node: *n}
	lines := bytes.Split(data, []byte("\n"))
	switch n.Style {
	case yaml.LiteralStyle:
		if n.Line < len(lines) {
			content := lines[n.Line] // the line after the `|` indicator (0-based index n.Line)
			l.indent = len(content) - len(bytes.TrimLeft(content, " "))
			l.block = true
			l.line = n.Line + 1
			l.col = l.indent + 1
			l.lineStart = []int{0}
			for i := 0; i < len(n.Value); i++ {
				if n.Value[i] == '\n' {
					l.lineStart = append(l.lineStart, i+1)
				}
			}
		}
	case yaml.SingleQuotedStyle, yaml.DoubleQuotedStyle, 0:
		if n.Line-1 < len(lines) && !strings.Contains(n.Value, "\n") {
			raw := string(lines[n.Line-1])
			want := len(n.Value)
			if n.Style == yaml.SingleQuotedStyle {
				want += strings.Count(n.Value, "'") + 2
				l.squote = true
			} else if n.Style == yaml.DoubleQuotedStyle {
				want += 2
			}
			if n.Column-1+want <= len(strings.TrimRight(raw, "\r")) && (n.Style != yaml.DoubleQuotedStyle || !strings.Contains(raw, `\`)) {
				l.oneLine = true
				if n.Style != 0 {
					l.col++ // past the opening quote
				}
			}
		}
	}
	return l
}

// textLocator locates offsets of a bare search text (line 1, column 1 = first byte).
func textLocator(s string) *locator {
	l := &locator{line: 1, col: 1, text: s, block: true, lineStart: []int{0}}
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			l.lineStart = append(l.lineStart, i+1)
		}
	}
	return l
}

func (l *locator) pos(off int) rule.Pos {
	if off < 0 {
		off = 0
	}
	if off > len(l.text) {
		off = len(l.text)
	}
	switch {
	case l.block:
		i := 0
		for i+1 < len(l.lineStart) && l.lineStart[i+1] <= off {
			i++
		}
		return rule.Pos{File: l.file, Line: l.line + i, Col: l.col + off - l.lineStart[i]}
	case l.oneLine:
		col := l.col + off
		if l.squote {
			col += strings.Count(l.text[:off], "'")
		}
		return rule.Pos{File: l.file, Line: l.line, Col: col}
	}
	return rule.Pos{File: l.file, Line: l.line, Col: l.col}
}

// platform names the operating system a detection reads when its data sources say so:
// "linux" when every platform-specific source is a Linux one (Sysmon for Linux, Linux
// Auditd), or, without data sources, when the file is one of ESCU's linux_* detections.
// CIM fields are shared by all platforms (process_name=ssh is a Linux process), so
// this is what keeps such rules apart from Windows ones. Windows detections are left
// without a product: CIM data models already place them.
func platform(sources []string, file string) string {
	linux, other := false, false
	for _, s := range sources {
		ls := strings.ToLower(s)
		switch {
		case strings.Contains(ls, "linux"):
			linux = true
		case strings.Contains(ls, "windows"), strings.Contains(ls, "sysmon"), strings.Contains(ls, "powershell"),
			strings.Contains(ls, "macos"), strings.Contains(ls, "osquery"):
			other = true
		}
	}
	if linux && !other {
		return "linux"
	}
	if !linux && !other && len(sources) == 0 && strings.HasPrefix(path.Base(file), "linux_") {
		return "linux"
	}
	return ""
}
