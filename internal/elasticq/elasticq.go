// Package elasticq extracts the queries of Elastic's detection-rules TOML files for the
// query parsers' corpus tests, with a small TOML subset reader of its own so the
// parsers' figures do not depend on package elastic's TOML reading.
package elasticq

import (
	"fmt"
	"sync"

	"github.com/ruledex/ruledex/rule"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ruledex/ruledex/internal/corpustest"
)

// Query is one query of an Elastic rule or hunting TOML. The reader below is a small
// TOML subset reader (sections, key = value, strings of the four kinds, arrays).
type Query struct {
	File string // relative to elastic/detection-rules
	Lang string // kuery, lucene, esql, eql, sql, ...
	Text string
	Line int // 1-based line of the query's first character
}

// Load reads every query of the corpus's elastic/detection-rules.
func Load(tb testing.TB) []Query {
	tb.Helper()
	root := corpustest.Path(tb, "elastic", "detection-rules")
	var out []Query
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".toml") {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out = append(out, tomlQueries(filepath.ToSlash(rel), string(data))...)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

type tomlVal struct {
	s    string
	list []tomlVal
	line int
}

// tomlQueries extracts the query (or queries) of [rule] or [hunt] with its language.
func tomlQueries(file, src string) []Query {
	r := &tomlReader{src: src}
	var section, lang string
	var langs []string
	var queries []tomlVal
	for {
		r.skipBlank()
		if r.i >= len(src) {
			break
		}
		if src[r.i] == '[' {
			end := strings.IndexByte(src[r.i:], '\n')
			if end < 0 {
				end = len(src) - r.i
			}
			section = strings.Trim(strings.TrimSpace(src[r.i:r.i+end]), "[]")
			r.i += end
			continue
		}
		eq := strings.IndexByte(src[r.i:], '=')
		if eq < 0 {
			break
		}
		key := strings.Trim(strings.TrimSpace(src[r.i:r.i+eq]), `"`)
		r.i += eq + 1
		v := r.value()
		if section != "rule" && section != "hunt" {
			continue
		}
		switch key {
		case "language":
			lang = v.s
			for _, l := range v.list {
				langs = append(langs, l.s)
			}
		case "query":
			if v.list != nil {
				queries = append(queries, v.list...)
			} else {
				queries = append(queries, v)
			}
		}
	}
	var out []Query
	for _, q := range queries {
		l := lang
		if l == "" {
			// Hunting files list languages for the file; tell each query by its head.
			head := strings.ToLower(strings.TrimSpace(q.s))
			// Skip leading // comment lines and a stray Markdown fence tag ("sql").
			for strings.HasPrefix(head, "//") || strings.HasPrefix(head, "sql\n") || strings.HasPrefix(head, "esql\n") {
				_, head, _ = strings.Cut(head, "\n")
				head = strings.TrimSpace(head)
			}
			switch {
			case strings.HasPrefix(head, "from ") || strings.HasPrefix(head, "from\n"):
				l = "esql"
			case strings.HasPrefix(head, "select") || strings.HasPrefix(head, "with "):
				l = "sql"
			case len(langs) == 1:
				l = strings.ToLower(langs[0])
			default:
				l = "unknown"
			}
		}
		out = append(out, Query{File: file, Lang: l, Text: q.s, Line: q.line})
	}
	return out
}

type tomlReader struct {
	src string
	i   int
}

func (r *tomlReader) line() int { return 1 + strings.Count(r.src[:r.i], "\n") }

// skipBlank skips whitespace, newlines and comments.
func (r *tomlReader) skipBlank() {
	for r.i < len(r.src) {
		switch r.src[r.i] {
		case ' ', '\t', '\r', '\n', ',':
			r.i++
		case '#':
			for r.i < len(r.src) && r.src[r.i] != '\n' {
				r.i++
			}
		default:
			return
		}
	}
}

func (r *tomlReader) value() tomlVal {
	for r.i < len(r.src) && (r.src[r.i] == ' ' || r.src[r.i] == '\t') {
		r.i++
	}
	if r.i >= len(r.src) {
		return tomlVal{}
	}
	switch {
	case strings.HasPrefix(r.src[r.i:], "'''"), strings.HasPrefix(r.src[r.i:], `"""`):
		delim := r.src[r.i : r.i+3]
		r.i += 3
		if strings.HasPrefix(r.src[r.i:], "\r\n") {
			r.i += 2
		} else if r.i < len(r.src) && r.src[r.i] == '\n' {
			r.i++
		}
		start, line := r.i, r.line()
		end := strings.Index(r.src[r.i:], delim)
		if end < 0 {
			r.i = len(r.src)
			return tomlVal{s: r.src[start:], line: line}
		}
		// Up to two more quotes before the closing delimiter belong to the content.
		for end+3 < len(r.src[r.i:]) && r.src[r.i+end+3] == delim[0] {
			end++
		}
		raw := r.src[start : r.i+end]
		r.i += end + 3
		if delim == `"""` {
			raw = unescapeBasic(raw, true)
		}
		return tomlVal{s: raw, line: line}
	case r.src[r.i] == '\'':
		r.i++
		start, line := r.i, r.line()
		end := strings.IndexByte(r.src[r.i:], '\'')
		if end < 0 {
			end = len(r.src) - r.i
		}
		r.i += end + 1
		return tomlVal{s: r.src[start : start+end], line: line}
	case r.src[r.i] == '"':
		r.i++
		start, line := r.i, r.line()
		for r.i < len(r.src) && r.src[r.i] != '"' {
			if r.src[r.i] == '\\' {
				r.i++
			}
			r.i++
		}
		raw := r.src[start:min(r.i, len(r.src))]
		r.i++
		return tomlVal{s: unescapeBasic(raw, false), line: line}
	case r.src[r.i] == '[':
		r.i++
		list := []tomlVal{}
		for {
			r.skipBlank()
			if r.i >= len(r.src) {
				return tomlVal{list: list}
			}
			if r.src[r.i] == ']' {
				r.i++
				return tomlVal{list: list}
			}
			before := r.i
			list = append(list, r.value())
			if r.i == before {
				r.i++
			}
		}
	case r.src[r.i] == '{':
		depth := 0
		for r.i < len(r.src) {
			c := r.src[r.i]
			r.i++
			if c == '{' {
				depth++
			} else if c == '}' {
				if depth--; depth == 0 {
					break
				}
			}
		}
		return tomlVal{}
	}
	start := r.i
	for r.i < len(r.src) && r.src[r.i] != '\n' && r.src[r.i] != ',' && r.src[r.i] != ']' && r.src[r.i] != '#' {
		r.i++
	}
	return tomlVal{s: strings.TrimSpace(r.src[start:r.i])}
}

// unescapeBasic applies TOML basic-string escapes; in multi-line strings a backslash
// at the end of a line trims the newline and the whitespace after it.
func unescapeBasic(s string, multi bool) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch d := s[i]; d {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case '"', '\\':
			b.WriteByte(d)
		case 'u', 'U':
			n := 4
			if d == 'U' {
				n = 8
			}
			if i+n < len(s) {
				if r, err := strconv.ParseUint(s[i+1:i+1+n], 16, 32); err == nil {
					b.WriteRune(rune(r))
					i += n
					continue
				}
			}
			b.WriteByte('\\')
			b.WriteByte(d)
		default:
			if multi && (d == '\n' || d == ' ' || d == '\t' || d == '\r') {
				for i+1 < len(s) && strings.IndexByte(" \t\r\n", s[i+1]) >= 0 {
					i++
				}
				continue
			}
			b.WriteByte('\\')
			b.WriteByte(d)
		}
	}
	return b.String()
}

var (
	byFileOnce sync.Once
	byFile     map[string][]Query
)

// File returns the first query of the given language ("" for any) in a corpus file
// (relative to elastic/detection-rules), failing tb when there is none.
func File(tb testing.TB, file, lang string) Query {
	tb.Helper()
	byFileOnce.Do(func() {
		byFile = map[string][]Query{}
		for _, q := range Load(tb) {
			byFile[q.File] = append(byFile[q.File], q)
		}
	})
	for _, q := range byFile[file] {
		if lang == "" || q.Lang == lang {
			return q
		}
	}
	tb.Fatalf("%s: no %s query in the corpus", file, lang)
	return Query{}
}

// PredStrings renders each predicate of n as "[not ]field kind v1|v2 [t1,t2]", for
// table tests.
func PredStrings(n *rule.Node) []string {
	var out []string
	for _, pp := range rule.Preds(n) {
		p := pp.Pred
		var vs []string
		for _, v := range p.Values {
			vs = append(vs, v.S)
		}
		s := fmt.Sprintf("%s %s %s [%s]", p.Field, p.Kind, strings.Join(vs, "|"), strings.Join(p.Transforms, ","))
		if pp.Negated {
			s = "not " + s
		}
		out = append(out, s)
	}
	return out
}
