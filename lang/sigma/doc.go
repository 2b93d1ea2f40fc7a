package sigma

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"unicode"

	"github.com/ruledex/ruledex/rule"
	"go.yaml.in/yaml/v3"
)

// docCtx builds one rule from one (merged) YAML document.
type docCtx struct {
	r    *rule.Rule
	file string
	// text is the whole file, for locating tokens of multi-line scalars.
	text       string
	lineStarts []int
	// texts holds each condition node's source text, for stage labels.
	texts map[*rule.Node]string
	// generate is a top-level `generate:` (correlations may put it there).
	generate *yaml.Node
}

// line returns line n (1-based) of the file, without its newline.
func (d *docCtx) line(n int) string {
	d.indexLines()
	if n < 1 || n > len(d.lineStarts) {
		return ""
	}
	end := len(d.text)
	if n < len(d.lineStarts) {
		end = d.lineStarts[n] - 1
	}
	return strings.TrimSuffix(d.text[d.lineStarts[n-1]:end], "\r")
}

func (d *docCtx) indexLines() {
	if d.lineStarts != nil {
		return
	}
	d.lineStarts = []int{0}
	for i := 0; i < len(d.text); i++ {
		if d.text[i] == '\n' {
			d.lineStarts = append(d.lineStarts, i+1)
		}
	}
}

// find returns the line and column of the (k+1)-th occurrence of tok at or after
// line:col.
func (d *docCtx) find(line, col int, tok string, k int) (int, int, bool) {
	d.indexLines()
	if line < 1 || line > len(d.lineStarts) {
		return 0, 0, false
	}
	pos := d.lineStarts[line-1] + max(col-1, 0)
	for ; k >= 0; k-- {
		if pos > len(d.text) {
			return 0, 0, false
		}
		i := strings.Index(d.text[pos:], tok)
		if i < 0 {
			return 0, 0, false
		}
		pos += i
		if k > 0 {
			pos += len(tok)
		}
	}
	l := sort.SearchInts(d.lineStarts, pos+1)
	return l, pos - d.lineStarts[l-1] + 1, true
}

func (d *docCtx) pos(n *yaml.Node) rule.Pos {
	if n == nil || n.Line < 1 {
		// Every diagnostic is located: fall back to the document's first line.
		return rule.Pos{File: d.file, Line: max(d.r.Source.Line, 1)}
	}
	return rule.Pos{File: d.file, Line: n.Line, Col: n.Column}
}

func (r *docCtx) diag(sev rule.Severity, n *yaml.Node, code, format string, args ...any) {
	r.r.Diagnostics = append(r.r.Diagnostics, rule.Diagnostic{Severity: sev, Code: code,
		Pos: r.pos(n), Message: fmt.Sprintf(format, args...)})
}

func (d *docCtx) errf(n *yaml.Node, code, format string, args ...any) {
	d.diag(rule.Error, n, code, format, args...)
}

func (d *docCtx) warnf(n *yaml.Node, code, format string, args ...any) {
	d.diag(rule.Warning, n, code, format, args...)
}

// knownKeys are the top-level fields of the Sigma specification (rules, correlations,
// filters) plus SigmaHQ repository conventions.
var knownKeys = map[string]bool{
	"title": true, "id": true, "name": true, "related": true, "taxonomy": true, "status": true,
	"description": true, "license": true, "author": true, "references": true, "date": true,
	"modified": true, "logsource": true, "detection": true, "fields": true, "falsepositives": true,
	"level": true, "tags": true, "scope": true, "correlation": true, "filter": true,
	"generate": true, "action": true,
	// SigmaHQ conventions, documented in its repository.
	"regression_tests_path": true, "simulation": true,
}

// build fills the rule from a document's root mapping.
func (d *docCtx) build(root *yaml.Node) {
	r := d.r
	var detection, correlation, filter *yaml.Node
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], resolve(root.Content[i+1])
		key := k.Value
		if prev := seen[key]; prev != nil {
			d.warnf(k, "sigma/yaml/duplicate-key", "key %q repeats the one on line %d; the last one is used", key, prev.Line)
		}
		seen[key] = k
		if v == nil {
			continue
		}
		switch key {
		case "title":
			r.Title = d.scalar(k, v)
		case "id":
			if s := d.scalar(k, v); s != "" {
				r.ID = s
			}
		case "name":
			r.Name = d.scalar(k, v)
		case "status":
			r.Status = d.status(k, v)
		case "description":
			r.Description = d.scalar(k, v)
		case "level":
			r.Severity = d.scalar(k, v)
		case "date":
			r.Date = d.scalar(k, v)
		case "modified":
			r.Modified = d.scalar(k, v)
		case "author":
			for _, a := range d.strings(k, v) {
				r.Authors = append(r.Authors, splitAuthors(a)...)
			}
		case "references":
			r.References = d.strings(k, v)
		case "falsepositives":
			r.FalsePositives = d.strings(k, v)
		case "tags":
			r.Tags = d.strings(k, v)
		case "logsource":
			d.logsource(k, v)
		case "related":
			d.related(k, v)
		case "detection":
			detection = v
		case "correlation":
			if v.Kind == yaml.ScalarNode {
				// A free-text note in a rule (seen in mdecrevoisier): not a correlation document.
				d.warnf(k, "sigma/correlation/note", "correlation is text, not a correlation definition; kept as extra metadata")
				if r.Extra == nil {
					r.Extra = map[string]string{}
				}
				r.Extra[key] = v.Value
				continue
			}
			correlation = v
		case "filter":
			filter = v
		case "action":
			// Legacy collection control, handled by the file.
		case "generate":
			d.generate = v
			d.extra(key, nodeText(v))
		default:
			if !knownKeys[key] {
				d.warnf(k, "sigma/meta/unknown-key", "unknown top-level key %q kept as extra metadata", key)
			}
			if r.Extra == nil {
				r.Extra = map[string]string{}
			}
			r.Extra[key] = nodeText(v)
		}
	}
	r.Tactics, r.Techniques = attackFromTags(r.Tags)
	if r.Title == "" {
		d.warnf(root, "sigma/meta/missing-title", "rule has no title")
	}
	switch {
	case correlation != nil:
		r.Type = "correlation"
		d.correlation(seen["correlation"], correlation)
	case filter != nil && detection == nil:
		r.Type = "filter"
		d.filter(seen["filter"], filter)
	case detection != nil:
		d.detection(seen["detection"], detection)
	default:
		d.errf(root, "sigma/detection/missing", "document has no detection, correlation or filter section")
	}
}

// scalar reads a scalar metadata field; lists are joined so nothing is lost.
func (d *docCtx) scalar(k, v *yaml.Node) string {
	switch v.Kind {
	case yaml.ScalarNode:
		if v.Tag == "!!null" {
			return ""
		}
		return v.Value
	default:
		d.warnf(k, "sigma/meta/type", "%s should be a single value", k.Value)
		return nodeText(v)
	}
}

// sigmaStatuses are the rule statuses the Sigma specification defines.
var sigmaStatuses = []string{"stable", "test", "experimental", "deprecated", "unsupported"}

// status reads a rule's status as one lower-case word. A status is a facet people
// filter by, so a value with stray characters ("experimental|", seen in mdecrevoisier
// where a file repeats the key) is read as the word it holds, with a warning; a value
// that is not one word is dropped (kept as extra metadata). A word outside the
// specification is kept as written, lower-cased, with a warning.
func (d *docCtx) status(k, v *yaml.Node) string {
	raw := d.scalar(k, v)
	word := strings.ToLower(strings.TrimFunc(raw, func(r rune) bool { return !unicode.IsLetter(r) }))
	if word == "" {
		return ""
	}
	if strings.ContainsFunc(word, func(r rune) bool { return !unicode.IsLetter(r) }) {
		d.warnf(k, "sigma/meta/status", "status %q is not one word; dropped (kept as extra metadata)", raw)
		d.extra("status", raw)
		return ""
	}
	known := slices.Contains(sigmaStatuses, word)
	switch {
	case word != raw && known:
		d.warnf(k, "sigma/meta/status", "status %q read as %q", raw, word)
	case !known:
		d.warnf(k, "sigma/meta/status", "status %q is not a Sigma status (%s); kept", raw, strings.Join(sigmaStatuses, ", "))
	}
	return word
}

// strings reads a list of strings; a single scalar is accepted as a one-item list.
func (d *docCtx) strings(k, v *yaml.Node) []string {
	switch v.Kind {
	case yaml.ScalarNode:
		if v.Tag == "!!null" || v.Value == "" {
			return nil
		}
		return []string{v.Value}
	case yaml.SequenceNode:
		out := make([]string, 0, len(v.Content))
		for _, c := range v.Content {
			c = resolve(c)
			if c == nil {
				continue
			}
			if c.Kind != yaml.ScalarNode {
				d.warnf(c, "sigma/meta/type", "%s: item is not a single value", k.Value)
				out = append(out, nodeText(c))
				continue
			}
			if c.Tag == "!!null" {
				continue
			}
			out = append(out, c.Value)
		}
		return out
	}
	d.warnf(k, "sigma/meta/type", "%s should be a list of values", k.Value)
	return []string{nodeText(v)}
}

func (d *docCtx) logsource(k, v *yaml.Node) {
	if v.Kind != yaml.MappingNode {
		d.warnf(k, "sigma/logsource/type", "logsource should be a mapping")
		return
	}
	ls := &d.r.LogSource
	// one reads a log source field; a list (seen in the wild) keeps its first item and
	// the whole list in Extra.
	one := func(lk, lv *yaml.Node) string {
		if lv.Kind == yaml.SequenceNode {
			d.warnf(lk, "sigma/logsource/list", "logsource %s should be one value: the catalog files the rule under the first, hunt routes every value", lk.Value)
			d.extra("logsource."+lk.Value, nodeText(lv))
			if len(lv.Content) > 0 {
				if c := resolve(lv.Content[0]); c != nil && c.Kind == yaml.ScalarNode {
					return c.Value
				}
			}
			return ""
		}
		return d.scalar(lk, lv)
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		lk, lv := v.Content[i], resolve(v.Content[i+1])
		if lv == nil {
			continue
		}
		switch lk.Value {
		case "product":
			ls.Product = one(lk, lv)
		case "category":
			ls.Category = one(lk, lv)
		case "service":
			ls.Service = one(lk, lv)
		case "definition":
			ls.Definition = d.scalar(lk, lv)
		default:
			if d.r.Extra == nil {
				d.r.Extra = map[string]string{}
			}
			d.r.Extra["logsource."+lk.Value] = nodeText(lv)
		}
	}
}

func (d *docCtx) related(k, v *yaml.Node) {
	if v.Kind != yaml.SequenceNode {
		d.warnf(k, "sigma/meta/type", "related should be a list of {id, type}")
		return
	}
	for _, c := range v.Content {
		c = resolve(c)
		if c == nil || c.Kind != yaml.MappingNode {
			d.warnf(c, "sigma/meta/type", "related item should be a mapping with id and type")
			continue
		}
		rel := rule.Related{}
		if n := mapGet(c, "id"); n != nil {
			rel.ID = n.Value
		}
		if n := mapGet(c, "type"); n != nil {
			rel.Type = n.Value
		}
		d.r.Related = append(d.r.Related, rel)
	}
}

func (d *docCtx) extra(k, v string) {
	if d.r.Extra == nil {
		d.r.Extra = map[string]string{}
	}
	d.r.Extra[k] = v
}

// splitAuthors splits "A, B (Org, Team), C" at top-level commas and semicolons, so a
// parenthesized affiliation stays with its author.
func splitAuthors(s string) []string {
	var out []string
	depth, start := 0, 0
	add := func(p string) {
		p = strings.TrimSpace(p)
		p = strings.TrimPrefix(p, "and ")
		if p != "" {
			out = append(out, p)
		}
	}
	for i, c := range s {
		switch c {
		case '(', '[':
			depth++
		case ')', ']':
			if depth > 0 {
				depth--
			}
		case ',', ';':
			if depth == 0 {
				add(s[start:i])
				start = i + 1
			}
		}
	}
	add(s[start:])
	return out
}

// nodeText renders a value as text for Extra: scalars as written, lists of scalars one
// per line, anything else as YAML.
func nodeText(v *yaml.Node) string {
	v = resolve(v)
	if v == nil {
		return ""
	}
	switch v.Kind {
	case yaml.ScalarNode:
		return v.Value
	case yaml.SequenceNode:
		parts := make([]string, 0, len(v.Content))
		simple := true
		for _, c := range v.Content {
			c = resolve(c)
			if c == nil || c.Kind != yaml.ScalarNode {
				simple = false
				break
			}
			parts = append(parts, c.Value)
		}
		if simple {
			return strings.Join(parts, "\n")
		}
	}
	b, err := yaml.Marshal(v)
	if err != nil {
		return ""
	}
	return strings.TrimRight(string(b), "\n")
}
