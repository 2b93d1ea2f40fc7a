package web

import (
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/ruledex/ruledex/catalog"
)

// The search API is the one response built fresh for nearly every request (each search
// is new), and encoding/json spends as long on it, by reflection, as the search itself.
// appendJSON writes the same bytes as json.Marshal (TestSearchJSONMatchesEncodingJSON
// holds them to it) directly.

// jsonAppender is a response that writes its own JSON.
type jsonAppender interface {
	appendJSON(b []byte) []byte
}

func (r *SearchResponse) appendJSON(b []byte) []byte {
	b = append(b, `{"query":`...)
	b = appendJSONString(b, r.Query)
	b = append(b, `,"filters":`...)
	if r.Filters == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '{')
		keys := make([]string, 0, len(r.Filters))
		for k := range r.Filters {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONString(b, r.Filters[k])
		}
		b = append(b, '}')
	}
	b = append(b, `,"total":`...)
	b = strconv.AppendInt(b, int64(r.Total), 10)
	b = append(b, `,"page":`...)
	b = strconv.AppendInt(b, int64(r.Page), 10)
	b = append(b, `,"per_page":`...)
	b = strconv.AppendInt(b, int64(r.PerPage), 10)
	b = append(b, `,"pages":`...)
	b = strconv.AppendInt(b, int64(r.Pages), 10)
	b = append(b, `,"results":`...)
	if r.Results == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range r.Results {
			if i > 0 {
				b = append(b, ',')
			}
			b = r.hitJSON.appendHit(b, &r.Results[i])
		}
		b = append(b, ']')
	}
	b = append(b, `,"facets":`...)
	if r.Facets == nil {
		return append(b, "null}"...)
	}
	b = append(b, '{')
	keys := make([]string, 0, len(r.Facets))
	for k := range r.Facets {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		vs := r.Facets[k]
		if vs == nil {
			b = append(b, "null"...)
			continue
		}
		b = append(b, '[')
		for j, v := range vs {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendFacetValue(b, v)
		}
		b = append(b, ']')
	}
	return append(b, "}}"...)
}

func appendFacetValue(b []byte, v catalog.FacetValue) []byte {
	b = append(b, `{"value":`...)
	b = appendJSONString(b, v.Value)
	b = append(b, `,"count":`...)
	b = strconv.AppendInt(b, int64(v.Count), 10)
	return append(b, '}')
}

// appendJSON follows the field order and omitempty tags of catalog.SearchHit, then URL.
func (h *SearchHit) appendJSON(b []byte) []byte {
	field := func(name, v string, omitEmpty bool) {
		if omitEmpty && v == "" {
			return
		}
		b = append(b, ',', '"')
		b = append(b, name...)
		b = append(b, '"', ':')
		b = appendJSONString(b, v)
	}
	b = append(b, `{"id":`...)
	b = appendJSONString(b, h.ID)
	field("language", h.Language, false)
	field("title", h.Title, false)
	field("description", h.Description, true)
	field("severity", h.Severity, true)
	field("status", h.Status, true)
	field("class", h.Class, false)
	field("source", h.Source, false)
	field("path", h.Path, false)
	field("logsource", h.LogSource, true)
	field("snippet", h.Snippet, true)
	field("url", h.URL, false)
	return append(b, '}')
}

// hitJSONCache keeps each rule's hit encoded, but for its snippet: the same rules come
// back in search after search, and escaping their titles and descriptions again was
// most of the encoding. An entry is used only for a hit whose fields are the ones it
// was encoded from (compared, not assumed: a catalog change may keep the URL).
type hitJSONCache struct {
	m sync.Map     // URL -> *hitJSON
	n atomic.Int64 // entries, to bound the memory (a few hundred bytes each)
}

type hitJSON struct {
	src        catalog.SearchHit // the hit's fields, Snippet and Marked left empty
	head, tail []byte            // the hit's JSON before and after the snippet field
}

// maxHitJSON bounds the hit cache: past it, it starts again empty.
const maxHitJSON = 1 << 14

// appendHit appends h as h.appendJSON does, from the cache when it can (c may be nil).
func (c *hitJSONCache) appendHit(b []byte, h *SearchHit) []byte {
	if c == nil {
		return h.appendJSON(b)
	}
	src := h.SearchHit
	src.Snippet, src.Marked = "", ""
	var e *hitJSON
	if v, ok := c.m.Load(h.URL); ok {
		e = v.(*hitJSON)
	}
	if e == nil || e.src != src {
		e = &hitJSON{src: src}
		// Encoded without the snippet, the hit ends with its URL field: that end is the
		// tail, the rest the head, and a snippet goes between them (appendJSON's order).
		full := (&SearchHit{SearchHit: src, URL: h.URL}).appendJSON(nil)
		tail := appendJSONString([]byte(`,"url":`), h.URL)
		tail = append(tail, '}')
		e.head, e.tail = full[:len(full)-len(tail):len(full)-len(tail)], tail
		if c.n.Add(1) > maxHitJSON {
			c.m.Clear()
			c.n.Store(1)
		}
		c.m.Store(h.URL, e)
	}
	b = append(b, e.head...)
	if h.Snippet != "" {
		b = append(b, `,"snippet":`...)
		b = appendJSONString(b, h.Snippet)
	}
	return append(b, e.tail...)
}

// jsonSafe marks the ASCII bytes encoding/json writes as they are (with HTML escaping).
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as encoding/json does: HTML-safe, U+2028 and U+2029
// escaped, invalid UTF-8 replaced by U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
