package kql

import (
	"bytes"
	"path"
	"regexp"
	"strings"

	"github.com/ruledex/ruledex/rule"
	"go.yaml.in/yaml/v3"
)

// Parser reads KQL rules: Sentinel YAML, .kql/.csl/.kusto files (several queries per
// file), .txt files that hold KQL, and Markdown with KQL code fences.
type Parser struct{}

// Language is rule.Kusto.
func (Parser) Language() rule.Language { return rule.Kusto }

var (
	kqlishRe   = regexp.MustCompile(`(?m)^\s*\|\s*(where|project|summarize|extend|join|distinct|take|top|sort|order|count|mv-expand|parse|evaluate|lookup|union)\b`)
	fenceKQLRe = regexp.MustCompile("(?mi)^\\s{0,3}```\\s*(kql|kusto|c#|csharp)")
)

// Detect is cheap: extensions first, then a few byte searches.
func (Parser) Detect(p string, data []byte) bool {
	switch strings.ToLower(path.Ext(p)) {
	case ".kql", ".csl", ".kusto":
		return true
	case ".txt":
		return kqlishRe.Match(data)
	case ".md", ".markdown":
		return fenceKQLRe.Match(data) || (bytes.Contains(data, []byte("```")) && kqlishRe.Match(data))
	case ".yaml", ".yml":
		return isSentinelYAML(data)
	}
	return false
}

func hasTopKey(data []byte, key string) bool {
	k := []byte(key + ":")
	return bytes.HasPrefix(data, k) || bytes.Contains(data, append([]byte("\n"), k...))
}

// isSentinelYAML: a top-level query with a name or id, and neither Sigma's detection
// nor ESCU's search.
func isSentinelYAML(data []byte) bool {
	return hasTopKey(data, "query") && (hasTopKey(data, "name") || hasTopKey(data, "id")) &&
		!hasTopKey(data, "detection") && !hasTopKey(data, "search")
}

// Parse reads every query in data.
func (Parser) Parse(src rule.Source, data []byte) (rules []*rule.Rule, diags []rule.Diagnostic) {
	defer func() {
		// The parser is written not to panic; this keeps a batch alive if it ever does.
		if v := recover(); v != nil {
			rules = nil
			diags = append(diags, rule.Diagnostic{Severity: rule.Error, Code: "kql/internal", Pos: rule.Pos{File: src.Path},
				Message: "internal error while parsing: " + strings.TrimSpace(strings.ReplaceAll(stringify(v), "\n", " "))})
		}
	}()
	text := string(data)
	switch strings.ToLower(path.Ext(src.Path)) {
	case ".md", ".markdown":
		rules, diags = parseMarkdown(src, text)
	case ".yaml", ".yml":
		rules, diags = parseSentinel(src, data)
	default:
		rules, diags = parseRaw(src, text)
	}
	if isTeachingPath(src.Path) {
		for _, r := range rules {
			r.Class = rule.Tutorial
		}
	}
	return rules, diags
}

// teachingDirs name the folders of teaching material in KQL repositories: webcasts
// and learning sessions (microsoft/Microsoft-365-Defender-Hunting-Queries "Webcasts",
// Bert-JanP "Learning"). Their queries show the language step by step ("take 10",
// "...and we can see that Barbara launched it"); they are not detections. Only whole
// folder names count: "Jupyter-Solarmaker" is a malware campaign, not a notebook.
var teachingDirs = map[string]bool{"webcast": true, "webcasts": true, "learning": true, "tutorial": true, "tutorials": true,
	"training": true, "workshop": true, "workshops": true}

// isTeachingPath reports whether a file lies in a teaching-material folder.
func isTeachingPath(p string) bool {
	dirs := strings.Split(path.Dir(strings.ReplaceAll(p, "\\", "/")), "/")
	for _, d := range dirs {
		if teachingDirs[strings.ToLower(d)] {
			return true
		}
	}
	return false
}

func stringify(v any) string {
	if e, ok := v.(error); ok {
		return e.Error()
	}
	if s, ok := v.(string); ok {
		return s
	}
	return "panic"
}

func identity(base int) posMap {
	return func(line, col int) rule.Pos { return rule.Pos{Line: base + line - 1, Col: col} }
}

func fileTitle(p string) string {
	b := path.Base(p)
	return strings.TrimSpace(strings.TrimSuffix(b, path.Ext(b)))
}

// parseRaw reads a .kql/.txt file: one rule per query, variants paired.
func parseRaw(src rule.Source, text string) ([]*rule.Rule, []rule.Diagnostic) {
	bs := buildRules(src, unit{text: text, pos: identity(1), split: true})
	bs = pairVariants(bs)
	var rs []*rule.Rule
	all := strings.Join(commentLines(text), "\n")
	// The file name titles a file of one query; a file of several gives each the file
	// name and the query's own comment title, when it has one that reads as a title.
	base := humanTitle(fileTitle(src.Path))
	for _, b := range bs {
		b.r.Techniques = techniques(all)
		b.r.References = dedupe(urlRe.FindAllString(strings.Join(commentLines(b.r.Body), "\n"), -1))
		titleOf(b.r, base, "", len(bs) > 1)
		rs = append(rs, b.r)
	}
	finish(src, rs, base)
	return rs, nil
}

// titleOf titles a query found in a file titled base: base alone for the only query of
// a file, else base and the most specific of the heading above the query and the
// query's own comment title (r.Title on entry); base alone (numbered by finish) when
// there is neither. An own title not used goes back to the description.
func titleOf(r *rule.Rule, base, heading string, several bool) {
	own := r.Title
	sub := ""
	if several {
		sub = heading
		if sub == "" {
			sub = own
		}
	}
	if sub != own && own != "" {
		r.Description = strings.TrimSpace(own + "\n" + r.Description)
	}
	switch {
	case sub == "":
		r.Title = base
	case base == "":
		r.Title = sub
	default:
		r.Title = base + ": " + sub
	}
}

func commentLines(s string) []string {
	var out []string
	for _, m := range commentLineRe.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

// Markdown.

type mdHeading struct {
	level int
	text  string
	line  int // 0-based
}

type mdFence struct {
	info      string
	startLine int // 0-based line of the first content line
	text      string
	heading   string // nearest heading above
	context   string // nearest prose line above, within the section
}

var (
	headingRe = regexp.MustCompile(`^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$`)
	h1TagRe   = regexp.MustCompile(`(?i)<h1>(.*?)</h1>`)
	fenceRe   = regexp.MustCompile("^(\\s{0,3})(```+|~~~+)\\s*([^`\\s]*)")
)

func scanMarkdown(text string) ([]mdHeading, []mdFence) {
	lines := strings.Split(text, "\n")
	var hs []mdHeading
	var fs []mdFence
	context := ""
	heading := ""
	for i := 0; i < len(lines); i++ {
		ln := strings.TrimRight(lines[i], "\r")
		if m := fenceRe.FindStringSubmatch(ln); m != nil {
			marker := m[2]
			f := mdFence{info: m[3], startLine: i + 1, heading: heading, context: context}
			j := i + 1
			reopen := false
			for ; j < len(lines); j++ {
				t := strings.TrimSpace(strings.TrimRight(lines[j], "\r"))
				if strings.HasPrefix(t, marker[:3]) && strings.Trim(t, marker[:1]) == "" {
					break
				}
				// An unclosed fence followed by a new opening fence: authors forget
				// the closing line; the opening one ends the block.
				if strings.HasPrefix(t, marker[:3]) && fenceRe.MatchString(t) && isLangInfo(strings.TrimLeft(t, "`~ ")) {
					reopen = true
					break
				}
			}
			end := j
			if end > len(lines) {
				end = len(lines)
			}
			f.text = strings.Join(lines[i+1:end], "\n")
			fs = append(fs, f)
			i = j
			if reopen {
				i = j - 1
			}
			continue
		}
		if m := headingRe.FindStringSubmatch(ln); m != nil {
			h := mdHeading{level: len(m[1]), text: cleanMD(m[2]), line: i}
			hs = append(hs, h)
			heading = h.text
			context = ""
			continue
		}
		if m := h1TagRe.FindStringSubmatch(ln); m != nil {
			hs = append(hs, mdHeading{level: 1, text: cleanMD(m[1]), line: i})
			continue
		}
		t := strings.TrimSpace(ln)
		if t != "" && !strings.HasPrefix(t, "|") && !strings.HasPrefix(t, "<") {
			context = cleanMD(t)
		}
	}
	return hs, fs
}

var mdLinkRe = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)

func cleanMD(s string) string {
	s = mdLinkRe.ReplaceAllString(s, "$1")
	s = strings.NewReplacer("**", "", "__", "", "`", "").Replace(s)
	return strings.TrimSpace(strings.TrimLeft(s, "-*> "))
}

func isLangInfo(s string) bool {
	l := strings.ToLower(s)
	for _, p := range []string{"kql", "kusto", "c#", "powershell", "json", "sql", "yaml", "bash", "python", "batch"} {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return false
}

func isKQLFence(f mdFence) bool {
	info := strings.ToLower(f.info)
	switch {
	case strings.HasPrefix(info, "kql"), strings.HasPrefix(info, "kusto"), info == "c#", info == "csharp", info == "kkql":
		return strings.TrimSpace(f.text) != ""
	case info == "":
		t := strings.TrimSpace(f.text)
		return t != "" && (kqlishRe.MatchString(t) || strings.HasPrefix(t, "let "))
	}
	return false
}

// genericHeadings are section names that do not describe one query.
var genericHeadingRe = regexp.MustCompile(`(?i)^(query|queries|detection|description|references|risk|sentinel|defender xdr|advanced hunting|kql|kusto|query information|log analytics.*|microsoft defender xdr|unified xdr|.*sentinel.*|.*defender.*)$`)

func parseMarkdown(src rule.Source, text string) ([]*rule.Rule, []rule.Diagnostic) {
	hs, fs := scanMarkdown(text)
	meta := mdMetadata(text, hs)
	var bs []*built
	for _, f := range fs {
		if !isKQLFence(f) {
			continue
		}
		u := unit{text: f.text, pos: identity(f.startLine + 1), split: true, label: variantLabel(f.heading)}
		got := buildRules(src, u)
		// A specific heading titles the query best; then its own leading comment;
		// then the prose line before the fence, when it reads as a title.
		heading := ""
		if f.heading != "" && !genericHeadingRe.MatchString(f.heading) && f.heading != meta.title {
			heading = f.heading
		} else if t := strings.TrimSuffix(f.context, ":"); looksLikeTitle(t) {
			heading = t
		}
		for _, b := range got {
			b.ctx = heading
		}
		bs = append(bs, got...)
	}
	bs = pairVariants(bs)
	// The document's title (its first heading), else the heading above the only query,
	// else the file name.
	base := meta.title
	if base == "" && len(bs) == 1 && bs[0].ctx != "" {
		base, bs[0].ctx = bs[0].ctx, ""
	}
	if base == "" {
		base = humanTitle(fileTitle(src.Path))
	}
	var rs []*rule.Rule
	for _, b := range bs {
		r := b.r
		titleOf(r, base, b.ctx, len(bs) > 1)
		if meta.description != "" {
			r.Description = meta.description
		}
		r.References = meta.references
		r.Techniques = meta.techniques
		r.Tactics = meta.tactics
		r.Authors = meta.authors
		if meta.id != "" && len(bs) == 1 {
			r.ID = meta.id
		}
		rs = append(rs, r)
	}
	finish(src, rs, base)
	return rs, nil
}

type mdMeta struct {
	id, title, description string
	references, techniques []string
	tactics, authors       []string
}

var (
	ffIDRe        = regexp.MustCompile(`(?m)^\*\*ID:\*\*\s*(\S+)`)
	contributorRe = regexp.MustCompile(`(?m)^\*\*Contributor:\*\*\s*(.+?)\s*$`)
	ffTechRe      = regexp.MustCompile(`\|\s*(T\d{4})\s*\|\s*(\d{3})\s*\|`)
	tacticIDRe    = regexp.MustCompile(`\bTA00\d\d\b`)
	mitreLinkRe   = regexp.MustCompile(`attack\.mitre\.org/techniques/(T\d{4})(?:/(\d{3}))?`)
)

func mdMetadata(text string, hs []mdHeading) mdMeta {
	var m mdMeta
	lines := strings.Split(text, "\n")
	for _, h := range hs {
		if h.level == 1 {
			m.title = h.text
			break
		}
	}
	if m.title == "" && len(hs) > 0 {
		m.title = hs[0].text
	}
	section := func(pred func(string) bool) string {
		for i, h := range hs {
			if !pred(strings.ToLower(h.text)) {
				continue
			}
			end := len(lines)
			if i+1 < len(hs) {
				end = hs[i+1].line
			}
			return strings.TrimSpace(strings.Join(lines[h.line+1:end], "\n"))
		}
		return ""
	}
	m.description = section(func(s string) bool { return strings.Contains(s, "detection description") })
	if m.description == "" {
		m.description = section(func(s string) bool { return strings.Contains(s, "description") })
	}
	if m.description == "" {
		// Prose between the title and the next heading or code block.
		start, end := 0, len(lines)
		for i, h := range hs {
			if h.level == 1 || i == 0 {
				start = h.line + 1
				if i+1 < len(hs) {
					end = hs[i+1].line
				}
				break
			}
		}
		var para []string
		for _, ln := range lines[min(start, len(lines)):min(end, len(lines))] {
			if strings.HasPrefix(strings.TrimSpace(ln), "```") {
				break
			}
			para = append(para, ln)
		}
		m.description = strings.TrimSpace(strings.Join(para, "\n"))
	}
	refs := section(func(s string) bool { return strings.Contains(s, "reference") })
	m.references = dedupe(urlRe.FindAllString(refs, -1))
	if id := ffIDRe.FindStringSubmatch(text); id != nil {
		m.id = id[1]
	}
	for _, c := range contributorRe.FindAllStringSubmatch(text, -1) {
		m.authors = append(m.authors, c[1])
	}
	// Techniques and tactics come from the tables (ATT&CK tables, FalconFriday tags,
	// the Microsoft "Covered?" table) and technique links.
	for _, ln := range lines {
		t := strings.TrimSpace(ln)
		if !strings.HasPrefix(t, "|") {
			continue
		}
		if f := ffTechRe.FindStringSubmatch(t); f != nil {
			m.techniques = append(m.techniques, f[1]+"."+f[2])
		} else {
			m.techniques = append(m.techniques, techniques(t)...)
		}
		for _, id := range tacticIDRe.FindAllString(t, -1) {
			if n, ok := tacticNames[id]; ok {
				m.tactics = append(m.tactics, n)
			}
		}
		cells := strings.Split(strings.Trim(t, "|"), "|")
		if len(cells) >= 2 {
			name := normTactic(cells[0])
			mark := strings.ToLower(strings.TrimSpace(cells[1]))
			if knownTactics[name] && (mark == "v" || mark == "x" || mark == "yes" || mark == "✓" || mark == "✔") {
				m.tactics = append(m.tactics, name)
			}
		}
	}
	for _, l := range mitreLinkRe.FindAllStringSubmatch(text, -1) {
		id := l[1]
		if l[2] != "" {
			id += "." + l[2]
		}
		m.techniques = append(m.techniques, id)
	}
	m.techniques = dedupe(m.techniques)
	m.tactics = dedupe(m.tactics)
	return m
}

// Sentinel YAML.

func parseSentinel(src rule.Source, data []byte) ([]*rule.Rule, []rule.Diagnostic) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, []rule.Diagnostic{{Severity: rule.Error, Code: "kql/sentinel/yaml", Pos: rule.Pos{File: src.Path}, Message: err.Error()}}
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, []rule.Diagnostic{{Severity: rule.Error, Code: "kql/sentinel/yaml", Pos: rule.Pos{File: src.Path}, Message: "not a YAML mapping"}}
	}
	top := doc.Content[0]
	fields := map[string]*yaml.Node{}
	var order []string
	for i := 0; i+1 < len(top.Content); i += 2 {
		k := top.Content[i].Value
		fields[k] = top.Content[i+1]
		order = append(order, k)
	}
	qn := fields["query"]
	if qn == nil || qn.Kind != yaml.ScalarNode || strings.TrimSpace(qn.Value) == "" {
		return nil, []rule.Diagnostic{{Severity: rule.Warning, Code: "kql/sentinel/no-query", Pos: rule.Pos{File: src.Path, Line: 1}, Message: "Sentinel YAML without a query"}}
	}
	pm := yamlPosMap(data, qn)
	bs := buildRules(src, unit{text: qn.Value, pos: pm, split: false})
	if len(bs) == 0 {
		return nil, []rule.Diagnostic{{Severity: rule.Error, Code: "kql/sentinel/empty-query", Pos: rule.Pos{File: src.Path, Line: qn.Line}, Message: "query holds no statement"}}
	}
	r := bs[0].r
	r.Source.Line = 1
	str := func(k string) string {
		if n := fields[k]; n != nil && n.Kind == yaml.ScalarNode {
			return strings.TrimSpace(n.Value)
		}
		return ""
	}
	list := func(k string) []string {
		n := fields[k]
		if n == nil {
			return nil
		}
		if n.Kind == yaml.ScalarNode && n.Value != "" {
			return []string{n.Value}
		}
		var out []string
		for _, c := range n.Content {
			if c.Kind == yaml.ScalarNode {
				out = append(out, c.Value)
			}
		}
		return out
	}
	r.ID = str("id")
	r.Title = str("name")
	r.Description = strings.TrimSpace(strings.Trim(strings.TrimSpace(str("description")), "'"))
	r.Severity = strings.ToLower(str("severity"))
	r.Status = str("status")
	for _, t := range list("tactics") {
		r.Tactics = append(r.Tactics, normTactic(t))
	}
	for _, t := range list("relevantTechniques") {
		r.Techniques = append(r.Techniques, strings.ToUpper(strings.TrimSpace(t)))
	}
	if n := fields["requiredDataConnectors"]; n != nil {
		for _, c := range n.Content {
			for i := 0; i+1 < len(c.Content); i += 2 {
				if c.Content[i].Value == "connectorId" {
					r.LogSource.DataSources = append(r.LogSource.DataSources, c.Content[i+1].Value)
				}
			}
		}
	}
	if f := str("queryFrequency"); f != "" {
		r.Frequency = f
	}
	if p := str("queryPeriod"); p != "" {
		r.Timeframe = p
	}
	if n := fields["entityMappings"]; n != nil {
		walkYAML(n, func(k, v string) {
			if k == "columnName" {
				r.Outputs = append(r.Outputs, v)
			}
		})
	}
	if n := fields["customDetails"]; n != nil && n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			r.Outputs = append(r.Outputs, n.Content[i+1].Value)
		}
	}
	r.Outputs = dedupe(r.Outputs)
	for _, t := range list("tags") {
		r.Tags = append(r.Tags, t)
	}
	if n := fields["metadata"]; n != nil {
		walkYAML(n, func(k, v string) {
			if k == "name" && v != "" {
				r.Authors = append(r.Authors, v)
			}
		})
	}
	if a := str("author"); a != "" {
		r.Authors = append(r.Authors, a)
	}
	kind := strings.ToLower(str("kind"))
	hunting := strings.Contains(strings.ToLower(src.Path), "hunting") && kind == "" || (kind == "" && str("queryFrequency") == "" && str("triggerOperator") == "")
	if hunting {
		r.Type = "hunting"
		r.Class = rule.Hunting
	} else {
		r.Type = "analytic"
	}
	known := map[string]bool{"id": true, "name": true, "description": true, "severity": true, "status": true, "tactics": true,
		"relevantTechniques": true, "requiredDataConnectors": true, "queryFrequency": true, "queryPeriod": true,
		"entityMappings": true, "customDetails": true, "query": true, "tags": true}
	for _, k := range order {
		if known[k] {
			continue
		}
		n := fields[k]
		if n.Kind == yaml.ScalarNode {
			if r.Extra == nil {
				r.Extra = map[string]string{}
			}
			r.Extra[k] = n.Value
		} else if out, err := yaml.Marshal(n); err == nil {
			if r.Extra == nil {
				r.Extra = map[string]string{}
			}
			r.Extra[k] = strings.TrimSpace(string(out))
		}
	}
	finish(src, []*rule.Rule{r}, fileTitle(src.Path))
	return []*rule.Rule{r}, nil
}

func walkYAML(n *yaml.Node, fn func(k, v string)) {
	if n == nil {
		return
	}
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i+1].Kind == yaml.ScalarNode {
				fn(n.Content[i].Value, n.Content[i+1].Value)
			} else {
				walkYAML(n.Content[i+1], fn)
			}
		}
		return
	}
	for _, c := range n.Content {
		walkYAML(c, fn)
	}
}

// yamlPosMap maps positions in a query scalar back to the file. Block scalars
// (`query: |`) start on the next line, indented; for other styles the mapping is
// approximate (line only).
func yamlPosMap(data []byte, n *yaml.Node) posMap {
	if n.Style != yaml.LiteralStyle && n.Style != yaml.FoldedStyle {
		line, col := n.Line, n.Column
		return func(l, c int) rule.Pos {
			if l == 1 {
				return rule.Pos{Line: line, Col: col + c - 1}
			}
			return rule.Pos{Line: line + l - 1}
		}
	}
	lines := strings.Split(string(data), "\n")
	// The content starts on the line after the indicator; find its indentation
	// from the first non-blank line.
	first := n.Line // 1-based line of `query: |`; content from n.Line+1
	indent := 0
	skip := 0
	for i := first; i < len(lines); i++ {
		t := strings.TrimRight(lines[i], "\r")
		if strings.TrimSpace(t) == "" {
			skip++
			continue
		}
		indent = len(t) - len(strings.TrimLeft(t, " "))
		break
	}
	// yaml drops leading blank lines of a block scalar? No: it keeps them, so the
	// value's first line is the line right after the indicator.
	_ = skip
	return func(l, c int) rule.Pos {
		return rule.Pos{Line: first + l, Col: c + indent}
	}
}
