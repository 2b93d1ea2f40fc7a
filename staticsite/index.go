package staticsite

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/rule"
	"github.com/ruledex/ruledex/web"
)

// IndexFile is where the search index goes, relative to the folder.
const IndexFile = "search/index.js"

// Caps on the text one rule contributes to the index. Whole descriptions and every
// value would triple the file a search downloads; the start of each finds nearly
// everything the server's search finds (titles, techniques, fields and the first
// values are whole).
const (
	maxDescription = 200
	maxText        = 600
)

// SearchIndex is the search index file: JSON (arrays of strings, compact) wrapped in a
// call to ruledexIndex, so the browser can load it with a script element, which works
// from file:// where fetching a JSON file does not. The JSON escapes <, > and & and the
// line separators, so it is valid script whatever the rules hold.
func SearchIndex(docs []catalog.SearchDoc) ([]byte, error) {
	type index struct {
		V       int               `json:"v"`
		Langs   map[string]string `json:"langs"`
		Sources []string          `json:"sources"`
		// One row per rule: language, page path under rules/, title, source (index
		// into Sources), severity, status, class, log source, techniques, tactics,
		// fields, description (start), text searched besides (tags, values).
		Rules [][]any `json:"rules"`
	}
	ix := index{V: 1, Langs: map[string]string{}, Sources: []string{}, Rules: make([][]any, 0, len(docs))}
	srcIdx := map[string]int{}
	for _, d := range docs {
		ix.Langs[d.Language] = rule.Language(d.Language).Display()
		si, ok := srcIdx[d.Source]
		if !ok {
			si = len(ix.Sources)
			srcIdx[d.Source] = si
			ix.Sources = append(ix.Sources, d.Source)
		}
		u, err := url.Parse(web.RuleURL(d.Language, d.ID))
		if err != nil {
			return nil, fmt.Errorf("search index: rule %s/%s: %w", d.Language, d.ID, err)
		}
		p := strings.TrimSuffix(strings.TrimPrefix(pageFile(u), "rules/"), "/index.html")
		ix.Rules = append(ix.Rules, []any{d.Language, p, d.Title, si, d.Severity, d.Status, d.Class, d.LogSource,
			strings.Join(d.Techniques, " "), strings.Join(d.Tactics, " "), d.Fields,
			clip(oneLine(d.Description), maxDescription), clip(d.Tags+" "+d.Values, maxText)})
	}
	var b bytes.Buffer
	b.WriteString("ruledexIndex(")
	enc := json.NewEncoder(&b)
	if err := enc.Encode(ix); err != nil {
		return nil, fmt.Errorf("search index: %w", err)
	}
	b.Truncate(b.Len() - 1) // Encode's newline
	b.WriteString(");\n")
	return b.Bytes(), nil
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// clip cuts s to at most n bytes on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
