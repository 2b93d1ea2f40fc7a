package web

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/page"
	"github.com/ruledex/ruledex/rule"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// crumb is one breadcrumb link; the last one of a page usually has no URL.
type crumb struct {
	Name string
	URL  string
}

// view is what every HTML template receives: the layout's needs plus the page's own data.
type view struct {
	Title  string
	Crumbs []crumb
	// Query fills the search box in the header.
	Query string
	// API is the JSON twin of this page, linked from the footer.
	API string
	// Wide lets the page use the whole viewport width (the matrix).
	Wide bool
	Data any
}

// pages are the page templates, each parsed together with the layout.
var pageNames = []string{"home", "rule", "browse", "indicator", "technique", "tactic", "matrix", "error", "providers", "provider", "event", "eqclass"}

func parseTemplates() (map[string]*template.Template, error) {
	out := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

var funcs = template.FuncMap{
	"safeURL":          safeURL,
	"ruleURL":          RuleURL,
	"langName":         func(l string) string { return rule.Language(l).Display() },
	"join":             strings.Join,
	"absentFieldsNote": func() string { return page.AbsentFieldsNote },
	"add":              func(a, b int) int { return a + b },
	"heat":             heatClass,
	"query":            queryWith,
	"techURL":          func(id string) string { return "/attack/techniques/" + url.PathEscape(id) + "/" },
	"tacticURL":        func(id string) string { return "/attack/tactics/" + url.PathEscape(id) + "/" },
	"fieldURL":         func(f string) string { return "/rules/?field=" + url.QueryEscape(f) },
	"commas":           commas,
	"markdown":         markdownHTML,
	"wbr":              softBreaks,
	"highlight":        highlight,
	"bodyText":         bodyText,
	"mdInline":         markdownInline,
}

// safeURL returns u when it is an absolute http or https URL, else "". Only such
// references become links; anything else (javascript:, data:, relative paths a rule
// author chose) is shown as text.
func safeURL(u string) string {
	p, err := url.Parse(strings.TrimSpace(u))
	if err != nil || p.Host == "" {
		return ""
	}
	switch strings.ToLower(p.Scheme) {
	case "http", "https":
		return p.String()
	}
	return ""
}

// RuleURL is the path of a rule's page.
func RuleURL(lang, id string) string {
	return "/rules/" + url.PathEscape(lang) + "/" + url.PathEscape(id) + "/"
}

// heatClass buckets a count into one of the colour classes of the matrix (CSS has no
// inline styles under our CSP, so the scale is a fixed set of classes).
func heatClass(n, max int) string {
	if n <= 0 || max <= 0 {
		return "heat0"
	}
	// Logarithmic: a few techniques have hundreds of rules, most have a handful.
	lvl := 1
	for v := 1; v*2 <= n && lvl < 8; v *= 2 {
		lvl++
	}
	return "heat" + strconv.Itoa(lvl)
}

// queryWith returns base with the query parameter key set to val (removed when val is
// empty) and the page reset, for facet and pagination links.
func queryWith(base url.Values, key, val string) string {
	q := url.Values{}
	for k, v := range base {
		q[k] = append([]string(nil), v...)
	}
	if val == "" {
		q.Del(key)
	} else {
		q.Set(key, val)
	}
	if key != "page" {
		q.Del("page")
	}
	if len(q) == 0 {
		return "?"
	}
	return "?" + q.Encode()
}

// softBreaks escapes s and lets long tokens (paths, command lines, repository names)
// wrap: a <wbr> after each separator and at least every 20 characters of a run without
// one. Short tokens get none, so a number, ID or field name is never cut; CSS keeps
// overflow-wrap off for such values.
func softBreaks(s string) template.HTML {
	var b strings.Builder
	run, since := 0, 0
	start := 0
	long := false
	for i, r := range s {
		if r == ' ' || r == '\n' || r == '\t' {
			run, since, long = 0, 0, false
			continue
		}
		if run == 0 {
			// Decide per token: only tokens over 32 bytes (longer than field names) get break points.
			end := strings.IndexAny(s[i:], " \n\t")
			if end < 0 {
				end = len(s) - i
			}
			long = end > 32
		}
		run++
		since++
		if !long {
			continue
		}
		brk := false
		switch r {
		case '\\', '/', '.', '_', '-', ',', ';', '&', '?', '=', '|', ':', ')':
			brk = true
		}
		if brk || since >= 20 {
			since = 0
			b.WriteString(template.HTMLEscapeString(s[start : i+utf8.RuneLen(r)]))
			b.WriteString("<wbr>")
			start = i + utf8.RuneLen(r)
		}
	}
	b.WriteString(template.HTMLEscapeString(s[start:]))
	return template.HTML(b.String())
}

// bodyText is a rule body as the page shows it: verbatim, except that an SPL line
// longer than a screen gets a line break before each command pipe (" | " outside double
// quotes), so a one-line search reads as its pipeline. The API keeps the text as is.
func bodyText(lang, text string) string {
	if lang != "spl" && lang != "yaml" {
		return text
	}
	lines := strings.Split(text, "\n")
	changed := false
	for i, l := range lines {
		if len(l) <= 160 || !strings.Contains(l, "| ") {
			continue
		}
		indent := l[:len(l)-len(strings.TrimLeft(l, " "))] + "  "
		var b strings.Builder
		inQuote := false
		for j := 0; j < len(l); j++ {
			c := l[j]
			if c == '"' && (j == 0 || l[j-1] != '\\') {
				inQuote = !inQuote
			}
			if c == '|' && !inQuote && j > 0 && (l[j-1] == ' ' || l[j-1] == '`') && j+1 < len(l) && l[j+1] == ' ' &&
				strings.TrimSpace(l[:j]) != "" && !strings.HasSuffix(strings.TrimRight(l[:j], " "), ":") &&
				!strings.HasSuffix(strings.TrimRight(l[:j], " "), "'") {
				b.WriteString(strings.TrimRight("", " "))
				trimmed := strings.TrimRight(b.String(), " ")
				b.Reset()
				b.WriteString(trimmed)
				b.WriteString("\n" + indent)
			}
			b.WriteByte(c)
		}
		lines[i] = b.String()
		changed = true
	}
	if !changed {
		return text
	}
	return strings.Join(lines, "\n")
}

// highlight renders a search snippet with its matches (between catalog.SnippetMark and
// SnippetEnd) in <mark>, everything escaped.
func highlight(marked string) template.HTML {
	var b strings.Builder
	for {
		i := strings.Index(marked, catalog.SnippetMark)
		if i < 0 {
			break
		}
		j := strings.Index(marked[i:], catalog.SnippetEnd)
		if j < 0 {
			break
		}
		b.WriteString(template.HTMLEscapeString(marked[:i]))
		b.WriteString("<mark>")
		b.WriteString(template.HTMLEscapeString(marked[i+len(catalog.SnippetMark) : i+j]))
		b.WriteString("</mark>")
		marked = marked[i+j+len(catalog.SnippetEnd):]
	}
	b.WriteString(template.HTMLEscapeString(strings.NewReplacer(catalog.SnippetMark, "", catalog.SnippetEnd, "").Replace(marked)))
	return template.HTML(b.String())
}

func commas(n int) string {
	s := strconv.Itoa(n)
	if n < 0 || len(s) <= 3 {
		return s
	}
	var b strings.Builder
	pre := len(s) % 3
	if pre > 0 {
		b.WriteString(s[:pre])
	}
	for i := pre; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

// html renders a page template into a buffer first, so a template error becomes a
// clean 500 instead of half a page.
func (s *Server) html(w http.ResponseWriter, status int, name string, v *view) {
	t := s.tmpl[name]
	// Pages are tens of KB: a recycled buffer saves growing a new one page by page.
	bp := responseBuffers.Get().(*[]byte)
	buf := bytes.NewBuffer((*bp)[:0])
	defer func() {
		if b := buf.Bytes(); cap(b) <= maxPooledResponse {
			*bp = b[:0]
			responseBuffers.Put(bp)
		}
	}()
	if err := t.Execute(buf, v); err != nil {
		s.log.Error("render", "template", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes()) // copies: the buffer is free again after
}

// json writes v as compact JSON: indenting cost a tenth of a search's time, and
// clients (jq, browsers) indent for reading.
func (s *Server) json(w http.ResponseWriter, status int, v any) {
	if a, ok := v.(jsonAppender); ok {
		bp := responseBuffers.Get().(*[]byte)
		b := append(a.appendJSON((*bp)[:0]), '\n')
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		w.Write(b) // copies: the buffer is free again after
		if cap(b) <= maxPooledResponse {
			*bp = b[:0]
			responseBuffers.Put(bp)
		}
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		s.log.Error("encode json", "err", err)
		status = http.StatusInternalServerError
		b, _ = json.Marshal(apiError{Error: "internal error", Status: status})
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b)
	w.Write([]byte("\n"))
}

// staticFiles serves only the embedded assets; no request path reaches the disk.
func staticFiles() http.Handler {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err) // the embed directive guarantees the folder
	}
	fsrv := http.FileServerFS(sub)
	return http.StripPrefix("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // no directory listings
			return
		}
		// Assets change only with the binary.
		w.Header().Set("Cache-Control", "public, max-age=3600")
		fsrv.ServeHTTP(w, r)
	}))
}

func langDisplay(l string) string { return rule.Language(l).Display() }
