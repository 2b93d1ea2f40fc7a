package staticsite

import (
	"bytes"
	"html"
	"net/url"
	"regexp"
)

// urlAttrs are the attributes holding URLs in the server's HTML. html/template writes
// every attribute in double quotes and escapes quotes inside values and text (&#34;),
// so ` href="` in its output only ever opens a real attribute: text a rule author
// wrote cannot look like one.
var urlAttrs = [][]byte{[]byte(` href="`), []byte(` src="`), []byte(` action="`)}

// rewriteAttrs passes the (unescaped) value of every URL attribute to fn and writes
// what it returns, escaped again; the attribute is dropped when fn says so. A plain
// scan: a regular expression cost a fifth of the export's time.
func rewriteAttrs(body []byte, fn func(string) (string, bool)) []byte {
	out := make([]byte, 0, len(body)+len(body)/16)
	// next[i] is the offset of the next attribute of kind i at or after pos (-1: none
	// left); each is searched again only once passed, so the scan stays linear.
	next := make([]int, len(urlAttrs))
	find := func(i, from int) {
		if k := bytes.Index(body[from:], urlAttrs[i]); k >= 0 {
			next[i] = from + k
		} else {
			next[i] = -1
		}
	}
	for i := range urlAttrs {
		find(i, 0)
	}
	pos := 0
	for {
		at, which := -1, -1
		for i, k := range next {
			if k >= 0 && (at < 0 || k < at) {
				at, which = k, i
			}
		}
		if at < 0 {
			return append(out, body[pos:]...)
		}
		a := urlAttrs[which]
		vstart := at + len(a)
		vlen := bytes.IndexByte(body[vstart:], '"')
		if vlen < 0 {
			return append(out, body[pos:]...)
		}
		val := html.UnescapeString(string(body[vstart : vstart+vlen]))
		out = append(out, body[pos:at]...)
		if nv, keep := fn(val); keep {
			out = append(out, a...)
			out = append(out, html.EscapeString(nv)...)
			out = append(out, '"')
		}
		pos = vstart + vlen + 1
		for i := range next {
			if next[i] >= 0 && next[i] < pos {
				find(i, pos)
			}
		}
	}
}

// apiFooter is the layout's links to the JSON API, which a static site does not have.
var apiFooter = regexp.MustCompile(`\s*This page as JSON: <a href="[^"]*">[^<]*</a>\.|\s*<a href="/api/">API</a>`)

// csp is the server's Content-Security-Policy as far as a meta element can carry it
// (frame-ancestors cannot be set there): the pages load only their own folder's
// script, stylesheet and images.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'"

// rewrite makes the page's links relative file paths, queues the pages they need,
// and adds what the static pages need in <head>: the policy, the path to the site's
// root (for the search script) and the search script.
func (x *exporter) rewrite(j job, body []byte) []byte {
	base, err := url.Parse(j.fetch)
	if err != nil {
		return body
	}
	if i := bytes.Index(body, []byte(`<footer class="site">`)); i >= 0 {
		// Only the footer: the expression must never see rule text.
		foot := apiFooter.ReplaceAll(body[i:], nil)
		body = append(body[:i:i], foot...)
	}
	body = rewriteAttrs(body, func(val string) (string, bool) {
		if val == "" || val[0] == '#' {
			return val, true
		}
		u, err := url.Parse(val)
		if err != nil {
			return "", false // not a URL the page can follow: drop the attribute
		}
		if u.Scheme != "" || u.Host != "" {
			return val, true // external
		}
		abs := base.ResolveReference(u)
		frag := abs.Fragment
		abs.Fragment, abs.RawFragment = "", ""
		// Most links (navigation, fields, techniques) recur on thousands of pages:
		// decide each target once.
		key := abs.String()
		var l link
		if v, ok := x.links.Load(key); ok {
			l = v.(link)
		} else {
			l = x.target(abs)
			x.links.Store(key, l)
		}
		if l.file == "" {
			return "", false
		}
		ref := relative(j.file, l.file)
		if l.query != "" {
			ref += "?" + l.query
		}
		if frag != "" {
			ref += "#" + url.PathEscape(frag)
		}
		return ref, true
	})
	root := rootOf(j.file)
	search := x.target(&url.URL{Path: "/static/search.js"})
	head := `<meta http-equiv="Content-Security-Policy" content="` + html.EscapeString(csp) + `">` + "\n" +
		`<meta name="ruledex-root" content="` + html.EscapeString(root) + `">` + "\n" +
		`<script src="` + html.EscapeString(relative(j.file, search.file)) + `" defer></script>` + "\n"
	// The policy must come before the stylesheet and scripts it governs; the charset
	// stays first.
	at := []byte("<meta charset=\"utf-8\">\n")
	i := bytes.Index(body, at)
	if i < 0 {
		at = []byte("<head>\n")
		i = bytes.Index(body, at)
	}
	if i >= 0 {
		i += len(at)
		out := make([]byte, 0, len(body)+len(head))
		out = append(out, body[:i]...)
		out = append(out, head...)
		out = append(out, body[i:]...)
		body = out
	}
	return body
}
