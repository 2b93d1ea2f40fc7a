// Package elastic reads Elastic detection rules (TOML files of elastic/detection-rules:
// one rule per file under rules/ and rules_building_block/, several hunting queries per
// file under hunting/) into ruledex's IR. The query is read by the parser of its
// language: EQL (package eql), Kibana query language and Lucene (package kuery) and
// ES|QL (package esql).
//
// Mapping: [metadata] maturity → Status, integration → LogSource.DataSources, dates;
// [rule] rule_id → ID, name → Title, author, severity, risk_score, type → Type, language →
// BodyLang, index → LogSource.Indexes, query → Body, note and setup → Docs,
// building_block_type → class building-block; threshold, new_terms and machine-learning
// parameters → Settings and an aggregation (or opaque) stage; [[rule.threat]] → Tactics
// and Techniques. A hunting file's queries are one rule each (class hunting), with ids
// uuid, uuid-2, uuid-3...
//
// Positions: diagnostics about a query are located at the query's line in the file.
package elastic

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"github.com/ruledex/ruledex/rule"
)

// Parser reads Elastic detection-rule TOML files. It implements ingest.Parser.
type Parser struct{}

// Language is rule.Elastic.
func (Parser) Language() rule.Language { return rule.Elastic }

// Detect accepts .toml files with a top-level [rule] or [hunt] table.
func (Parser) Detect(path string, data []byte) bool {
	if !strings.HasSuffix(strings.ToLower(path), ".toml") {
		return false
	}
	for _, h := range [][]byte{[]byte("[rule]"), []byte("[hunt]")} {
		if bytes.HasPrefix(data, h) || bytes.Contains(data, append([]byte("\n"), h...)) {
			return true
		}
	}
	return false
}

// Parse reads the rule (or the hunting queries) of one file. A file that is not valid
// TOML yields no rule and one located error.
func (Parser) Parse(src rule.Source, data []byte) ([]*rule.Rule, []rule.Diagnostic) {
	text := string(data)
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		d := rule.Diagnostic{Severity: rule.Error, Code: "elastic/toml", Pos: rule.Pos{File: src.Path, Line: 1}, Message: err.Error()}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			d.Pos.Line, d.Pos.Col = de.Position()
			d.Pos.Line = max(d.Pos.Line, 1)
		}
		return nil, []rule.Diagnostic{d}
	}
	f := &file{src: src, text: text, lines: splitLines(text)}
	meta, _ := doc["metadata"].(map[string]any)
	var rs []*rule.Rule
	switch {
	case doc["rule"] != nil:
		rt, ok := doc["rule"].(map[string]any)
		if !ok {
			return nil, []rule.Diagnostic{f.errAt("rule", "", "elastic/rule/type", "[rule] is not a table")}
		}
		rs = []*rule.Rule{f.rule(meta, rt)}
	case doc["hunt"] != nil:
		ht, ok := doc["hunt"].(map[string]any)
		if !ok {
			return nil, []rule.Diagnostic{f.errAt("hunt", "", "elastic/hunt/type", "[hunt] is not a table")}
		}
		rs = f.hunt(ht)
	default:
		return nil, []rule.Diagnostic{{Severity: rule.Error, Code: "elastic/no-rule", Pos: rule.Pos{File: src.Path, Line: 1}, Message: "no [rule] or [hunt] table"}}
	}
	for i, r := range rs {
		r.Language = rule.Elastic
		line := r.Source.Line
		r.Source = src
		r.Source.Index = i
		r.Source.Line = max(line, 1)
		if r.ID == "" {
			r.ID = rule.StableID(src.Repo, src.Path, i)
		}
		if r.Class == "" {
			r.Class = rule.Detection
		}
		if r.Stages == nil {
			r.Stages = []rule.Stage{}
		}
		setFile(r, src.Path)
	}
	return rs, nil
}

// file is one TOML file being read.
type file struct {
	src   rule.Source
	text  string
	lines []int // offsets of line starts
}

func splitLines(s string) []int {
	out := []int{0}
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, i+1)
		}
	}
	return out
}

func (f *file) errAt(table, key, code, msg string) rule.Diagnostic {
	return rule.Diagnostic{Severity: rule.Error, Code: code, Pos: rule.Pos{File: f.src.Path, Line: f.keyLine(table, key)}, Message: msg}
}

// keyLine returns the 1-based line of `key =` inside table (the table header's line when
// key is ""), or 1 when it cannot be found. TOML keeps no positions in decoded values,
// so this reads the lines as written; it is enough for the flat tables rules use.
func (f *file) keyLine(table, key string) int {
	cur := ""
	inString := "" // the delimiter of the multi-line string the line is in
	for i, start := range f.lines {
		end := len(f.text)
		if i+1 < len(f.lines) {
			end = f.lines[i+1]
		}
		l := strings.TrimSpace(f.text[start:end])
		if inString != "" {
			// A query line such as `[process where ...]` is not a table header.
			if strings.Count(l, inString)%2 == 1 {
				inString = ""
			}
			continue
		}
		for _, d := range []string{"'''", `"""`} {
			if strings.Count(l, d)%2 == 1 {
				inString = d
			}
		}
		if strings.HasPrefix(l, "[") {
			cur = strings.Trim(l, "[] \t")
			if key == "" && cur == table {
				return i + 1
			}
			continue
		}
		if cur == table && key != "" && strings.HasPrefix(l, key) {
			rest := strings.TrimLeft(l[len(key):], " \t")
			if strings.HasPrefix(rest, "=") {
				return i + 1
			}
		}
	}
	return 1
}

// valuePositions returns the position of the first character of each string value of
// `key = ...` in table: one for a string, one per element for an array of strings. A
// multi-line string whose opening delimiter ends its line starts on the next line, as
// TOML drops that newline.
func (f *file) valuePositions(table, key string, n int) []rule.Pos {
	line := f.keyLine(table, key)
	off := f.lines[line-1]
	if i := strings.IndexByte(f.text[off:], '='); i >= 0 {
		off += i + 1
	}
	var out []rule.Pos
	for len(out) < n && off < len(f.text) {
		// The next string opener.
		j := strings.IndexAny(f.text[off:], `'"`)
		if j < 0 {
			break
		}
		off += j
		delim := f.text[off : off+1]
		if strings.HasPrefix(f.text[off:], strings.Repeat(delim, 3)) {
			delim = strings.Repeat(delim, 3)
		}
		start := off + len(delim)
		if len(delim) == 3 {
			if strings.HasPrefix(f.text[start:], "\n") {
				start++
			} else if strings.HasPrefix(f.text[start:], "\r\n") {
				start += 2
			}
		}
		out = append(out, f.pos(start))
		end := strings.Index(f.text[off+len(delim):], delim)
		if end < 0 {
			break
		}
		off += len(delim) + end + len(delim)
	}
	for len(out) < n {
		out = append(out, rule.Pos{File: f.src.Path, Line: line})
	}
	return out
}

func (f *file) pos(off int) rule.Pos {
	i := sort.Search(len(f.lines), func(i int) bool { return f.lines[i] > off }) - 1
	if i < 0 {
		i = 0
	}
	return rule.Pos{File: f.src.Path, Line: i + 1, Col: off - f.lines[i] + 1}
}

// str returns m[k] as text (strings as they are, numbers and booleans formatted).
func str(m map[string]any, k string) string {
	switch v := m[k].(type) {
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	return ""
}

// strs returns m[k] as a list of strings, accepting a single string.
func strs(m map[string]any, k string) []string {
	switch v := m[k].(type) {
	case string:
		if v == "" {
			return nil
		}
		return []string{v}
	case []any:
		var out []string
		for _, x := range v {
			switch s := x.(type) {
			case string:
				out = append(out, s)
			case int64, float64, bool:
				out = append(out, fmt.Sprint(s))
			}
		}
		return out
	case []string:
		return v
	}
	return nil
}

func tables(m map[string]any, k string) []map[string]any {
	switch v := m[k].(type) {
	case []map[string]any:
		return v
	case map[string]any:
		return []map[string]any{v}
	case []any:
		var out []map[string]any
		for _, x := range v {
			if t, ok := x.(map[string]any); ok {
				out = append(out, t)
			}
		}
		return out
	}
	return nil
}

func setFile(r *rule.Rule, path string) {
	for j := range r.Diagnostics {
		r.Diagnostics[j].Pos.File = path
	}
	fix := func(n *rule.Node) {
		rule.Walk(n, func(nd *rule.Node, _ bool) bool {
			nd.Pos.File = path
			if nd.Pred != nil {
				nd.Pred.Pos.File = path
			}
			return true
		})
	}
	fix(r.Root)
	for j := range r.Stages {
		r.Stages[j].Pos.File = path
		fix(r.Stages[j].Node)
	}
}
