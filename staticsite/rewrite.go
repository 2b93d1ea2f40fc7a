package staticsite

import (
	"bytes"
	"html"
	"net/url"
	"regexp"
)

// attrRef finds the URL attributes of the server's HTML. html/template writes every
// attribute in double quotes and escapes quotes inside values and text (&#34;), so
// `href="` in its output only ever opens a real attribute: text a rule author wrote
// cannot look like one.
var attrRef = regexp.MustCompile(`(\s)(href|src|action)="([^"]*)"`)

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
	body = apiFooter.ReplaceAll(body, nil)
	body = attrRef.ReplaceAllFunc(body, func(m []byte) []byte {
		sub := attrRef.FindSubmatch(m)
		space, name, val := sub[1], sub[2], html.UnescapeString(string(sub[3]))
		if val == "" || val[0] == '#' {
			return m
		}
		u, err := url.Parse(val)
		if err != nil {
			return nil // not a URL the page can follow: drop the attribute
		}
		if u.Scheme != "" || u.Host != "" {
			return m // external
		}
		abs := base.ResolveReference(u)
		frag := abs.Fragment
		abs.Fragment, abs.RawFragment = "", ""
		l := x.target(abs)
		if l.file == "" {
			return nil
		}
		ref := relative(j.file, l.file)
		if l.query != "" {
			ref += "?" + l.query
		}
		if frag != "" {
			ref += "#" + url.PathEscape(frag)
		}
		var b bytes.Buffer
		b.Write(space)
		b.Write(name)
		b.WriteString(`="`)
		b.WriteString(html.EscapeString(ref))
		b.WriteByte('"')
		return b.Bytes()
	})
	root := rootOf(j.file)
	search := x.target(&url.URL{Path: "/static/search.js"})
	head := `<meta http-equiv="Content-Security-Policy" content="` + html.EscapeString(csp) + `">` + "\n" +
		`<meta name="ruledex-root" content="` + html.EscapeString(root) + `">` + "\n" +
		`<script src="` + html.EscapeString(relative(j.file, search.file)) + `" defer></script>` + "\n"
	// The policy must come before the stylesheet and scripts it governs.
	if i := bytes.Index(body, []byte("<head>")); i >= 0 {
		i += len("<head>\n")
		out := make([]byte, 0, len(body)+len(head))
		out = append(out, body[:i]...)
		out = append(out, head...)
		out = append(out, body[i:]...)
		body = out
	}
	return body
}
