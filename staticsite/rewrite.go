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

// rewriteAttrs appends body to out with the value of every URL attribute replaced by
// what fn returns for it: fn gets the value as written (still escaped) and returns the
// new value escaped, or keep false to drop the attribute. A plain scan: a regular
// expression cost a fifth of the export's time.
func rewriteAttrs(out, body []byte, fn func(raw []byte) (escaped string, keep bool)) []byte {
	// next[i] is the offset of the next attribute of kind i at or after pos (-1: none
	// left); each is searched again only once passed, so the scan stays linear.
	var next [3]int
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
		out = append(out, body[pos:at]...)
		if nv, keep := fn(body[vstart : vstart+vlen]); keep {
			out = append(out, a...)
			out = append(out, nv...)
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

// footerMark starts the layout's footer, the only part apiFooter may edit.
var footerMark = []byte(`<footer class="site">`)

// rewrite appends the page to out with its links made relative file paths (queueing
// the pages they need) and with what the static pages need in <head>: the policy, the
// path to the site's root (for the search script) and the search script.
func (x *exporter) rewrite(out []byte, j job, body []byte) []byte {
	base, err := url.Parse(j.fetch)
	if err != nil {
		return append(out, body...)
	}
	var foot []byte
	if i := bytes.Index(body, footerMark); i >= 0 {
		// Only the footer: the expression must never see rule text.
		body, foot = body[:i], apiFooter.ReplaceAll(body[i:], nil)
	}
	root := rootOf(j.file)
	search := x.target(&url.URL{Path: "/static/search.js"})
	head := `<meta http-equiv="Content-Security-Policy" content="` + html.EscapeString(csp) + `">` + "\n" +
		`<meta name="ruledex-root" content="` + html.EscapeString(root) + `">` + "\n" +
		`<script src="` + html.EscapeString(relative(j.file, search.file)) + `" defer></script>` + "\n"
	// The policy must come before the stylesheet and scripts it governs; the charset
	// stays first. The layout has both in <head>, before any link; a page without them
	// gets the elements where the rewritten page first has one.
	ins := -1
	if i := bytes.Index(body, headAt[0]); i >= 0 {
		ins = i + len(headAt[0])
	} else if i := bytes.Index(body, headAt[1]); i >= 0 && foot == nil {
		ins = i + len(headAt[1])
	}
	rel := newRelBase(j.file)
	basePath := base.EscapedPath()
	fn := func(raw []byte) (string, bool) { return x.rewriteLink(base, basePath, rel, raw) }
	start := len(out)
	if ins >= 0 {
		out = rewriteAttrs(out, body[:ins], fn)
		out = append(out, head...)
		out = rewriteAttrs(out, body[ins:], fn)
		return rewriteAttrs(out, foot, fn)
	}
	out = rewriteAttrs(out, body, fn)
	out = rewriteAttrs(out, foot, fn)
	for _, at := range headAt {
		if i := bytes.Index(out[start:], at); i >= 0 {
			i += start + len(at)
			out = append(out, head...)
			copy(out[i+len(head):], out[i:])
			copy(out[i:], head)
			break
		}
	}
	return out
}

// headAt are where the static pages' head elements go, in order of preference.
var headAt = [][]byte{[]byte("<meta charset=\"utf-8\">\n"), []byte("<head>\n")}

// linkTarget is what an attribute value becomes on every page of one URL path (for an
// absolute path or an external URL, on every page), but for the relative path from
// the page's file to the target's.
type linkTarget struct {
	keep bool   // false: drop the attribute
	same string // the value as it stays (external, fragment-only), escaped; "" for a page
	l    link   // the page or file it points to
	frag string // escaped fragment, "#..." or ""
}

// rewriteLink returns the new value of a URL attribute written as raw (escaped) on
// the page at base (basePath its escaped path), whose file's folder is rel, or keep
// false to drop the attribute.
func (x *exporter) rewriteLink(base *url.URL, basePath string, rel relBase, raw []byte) (string, bool) {
	// Most links (navigation, fields, techniques, the facets of the 6,000 browse pages)
	// recur on thousands of pages: each is decided once. A value starting with '/' (so
	// does its unescaped form) resolves the same on every page; any other, the same on
	// every page of one path.
	ns := basePath
	if len(raw) > 0 && raw[0] == '/' {
		ns = ""
	}
	x.attrMu.RLock()
	t, ok := x.attrs[ns][string(raw)]
	x.attrMu.RUnlock()
	if !ok {
		var cacheable bool
		t, cacheable = x.decideLink(base, html.UnescapeString(string(raw)))
		if cacheable {
			x.attrMu.Lock()
			if x.attrs == nil {
				x.attrs = map[string]map[string]linkTarget{}
			}
			m := x.attrs[ns]
			if m == nil {
				m = map[string]linkTarget{}
				x.attrs[ns] = m
			}
			m[string(raw)] = t
			x.attrMu.Unlock()
		}
	}
	return x.finish(t, rel)
}

func (x *exporter) finish(t linkTarget, rel relBase) (string, bool) {
	switch {
	case !t.keep:
		return "", false
	case t.same != "" || t.l.file == "":
		return t.same, true
	}
	ref := rel.to(t.l.file)
	if t.l.query != "" {
		ref += "?" + t.l.query
	}
	return html.EscapeString(ref + t.frag), true
}

// decideLink decides what becomes of a link to val (unescaped) on the page at base,
// and whether the decision holds for every page of base's path: it does unless val has
// neither a path nor a query, whose resolution keeps base's query.
func (x *exporter) decideLink(base *url.URL, val string) (linkTarget, bool) {
	if val == "" {
		return linkTarget{keep: true}, true
	}
	if val[0] == '#' {
		return linkTarget{keep: true, same: html.EscapeString(val)}, true
	}
	u, err := url.Parse(val)
	if err != nil {
		return linkTarget{}, true // not a URL the page can follow: drop the attribute
	}
	if u.Scheme != "" || u.Host != "" {
		return linkTarget{keep: true, same: html.EscapeString(val)}, true // external
	}
	// Pages are fetched by path and query, so base has no scheme, host or user: the
	// reference resolves against base's path, and only when it has neither a path nor
	// a query also against base's query.
	cacheable := u.Path != "" || u.RawQuery != "" || u.ForceQuery
	abs := base.ResolveReference(u)
	frag := abs.Fragment
	abs.Fragment, abs.RawFragment = "", ""
	key := abs.String()
	var l link
	if v, ok := x.links.Load(key); ok {
		l = v.(link)
	} else {
		l = x.target(abs)
		x.links.Store(key, l)
	}
	if l.file == "" {
		return linkTarget{}, cacheable
	}
	t := linkTarget{keep: true, l: l}
	if frag != "" {
		t.frag = "#" + url.PathEscape(frag)
	}
	return t, cacheable
}
