package staticsite

import (
	"html"
	"net/url"
	"path"
	"strings"
	"testing"
)

// TestPageFile: every URL maps to a file inside the folder, plain names stay
// readable, and distinct URLs (hostile ids among them) get distinct files.
func TestPageFile(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want string // "" when only the safety properties are checked
	}{
		{"/", "index.html"},
		{"/rules/", "rules/index.html"},
		{"/rules/sigma/5cb0b2d6-1c9e-4bc1-a9cf-ec0d9fd1a3a9/", "rules/sigma/5cb0b2d6-1c9e-4bc1-a9cf-ec0d9fd1a3a9/index.html"},
		{"/Microsoft-Windows-Sysmon/1", "Microsoft-Windows-Sysmon/1/index.html"},
		{"/attack/techniques/T1197/", "attack/techniques/T1197/index.html"},
		{"/static/style.css", ""},
		{"/rules/?language=sigma", "rules/_q-language-sigma-"},
		{"/rules/?page=2&language=sigma", "rules/_q-language-sigma-page-2-"},
		{"/rules/kusto/..%2F..%2F..%2Fetc%2Fpasswd/", "rules/kusto/_etc-passwd-"},
		{"/rules/kusto/../../etc/", ""},
		{"/rules/kusto/%2E%2E/", "rules/kusto/_-"},
		{"/rules/kusto/.hidden/", "rules/kusto/_hidden-"},
		{"/rules/kusto/index.html/", "rules/kusto/_index.html-"},
		{"/rules/kusto/" + strings.Repeat("a", 300) + "/", "rules/kusto/_aaaa"},
		{"/rules/kusto/%00%0A%22%3C%3E/", "rules/kusto/_-"},
		{"/rules/kusto/caf%C3%A9/", "rules/kusto/_caf-"},
		{"/indicators/?field=Image&kind=ends_with&value=%5C..%5C..%2Fbitsadmin.exe", "indicators/_q-field-Image-kind-ends-with-value-5C..-5C..-2Fbitsadmin.exe-"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			u, err := url.Parse(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			got := pageFile(u)
			if tc.want != "" && !strings.HasPrefix(got, tc.want) {
				t.Errorf("pageFile(%s) = %s, want %s...", tc.url, got, tc.want)
			}
			checkInside(t, got)
		})
	}
	// Names that sanitize alike stay apart.
	seen := map[string]string{}
	for _, id := range []string{"a/b", "a%2Fb", "a b", "a:b", "A:b", "a?b", "..", ".", "%2E%2E", "a..b", "aé", "a€"} {
		u := &url.URL{Path: "/rules/kusto/" + id + "/"}
		f := pageFile(u)
		checkInside(t, f)
		if prev, ok := seen[strings.ToLower(f)]; ok && prev != id {
			t.Errorf("ids %q and %q share the file %s (compared case-insensitively)", prev, id, f)
		}
		seen[strings.ToLower(f)] = id
	}
}

func checkInside(t *testing.T, f string) {
	t.Helper()
	if f != path.Clean(f) || strings.HasPrefix(f, "/") || strings.HasPrefix(f, "..") {
		t.Errorf("%q is not a clean path inside the folder", f)
	}
	for _, seg := range strings.Split(f, "/") {
		if seg == "" || seg == "." || seg == ".." || len(seg) > 120 || strings.ContainsAny(seg, "\x00\\:*?\"<>|") {
			t.Errorf("%q has an unsafe segment %q", f, seg)
		}
	}
}

func TestRelative(t *testing.T) {
	for _, tc := range []struct{ from, to, want string }{
		{"index.html", "rules/index.html", "rules/index.html"},
		{"rules/index.html", "index.html", "../index.html"},
		{"rules/sigma/x/index.html", "rules/sigma/y/index.html", "../y/index.html"},
		{"rules/sigma/x/index.html", "static/style.css", "../../../static/style.css"},
		{"rules/_q-a-1.html", "rules/_q-b-2.html", "_q-b-2.html"},
		{"rules/sigma/x/index.html", "rules/sigma/x/index.html", "index.html"},
		{"attack/index.html", "attack/techniques/T1/index.html", "techniques/T1/index.html"},
	} {
		if got := relative(tc.from, tc.to); got != tc.want {
			t.Errorf("relative(%s, %s) = %s, want %s", tc.from, tc.to, got, tc.want)
		}
		if got := path.Clean(path.Join(path.Dir(tc.from), relative(tc.from, tc.to))); got != tc.to {
			t.Errorf("relative(%s, %s) resolves to %s", tc.from, tc.to, got)
		}
	}
}

// TestClassify: which links become pages, which go to the search script and which
// are dropped.
func TestClassify(t *testing.T) {
	for _, tc := range []struct{ url, kind, fetch string }{
		{"/", "home", "/"},
		{"/rules/?language=sigma", "browse", "/rules/?language=sigma"},
		{"/rules/?page=1&language=sigma", "browse", "/rules/?language=sigma"},
		{"/rules/?language=sigma&page=3", "browse", "/rules/?language=sigma&page=3"},
		{"/rules/?q=bitsadmin", "search", ""},
		{"/rules/?language=sigma&severity=high", "search", ""},
		{"/rules/?per_page=10", "search", ""},
		{"/rules/sigma/abc/", "rule", "/rules/sigma/abc/"},
		{"/rules/sigma/abc/?x=1", "rule", "/rules/sigma/abc/"},
		{"/rules/eq/c2b5b8680332/", "eqclass", "/rules/eq/c2b5b8680332/"},
		{"/attack/techniques/T1197/?language=sigma", "technique", "/attack/techniques/T1197/"},
		{"/attack/?severity=high", "matrix", "/attack/?severity=high"},
		{"/attack/?severity=high&language=sigma", "matrix", "/attack/"},
		{"/attack/navigator.json?language=sigma", "data", ""},
		{"/api/rules/sigma/abc", "", ""},
		{"/api/", "", ""},
		{"/static/copy.js", "asset", "/static/copy.js"},
		{"/favicon.ico", "asset", "/static/favicon.svg"},
		{"/events/", "providers", "/events/"},
		{"/Microsoft-Windows-Sysmon/", "provider", "/Microsoft-Windows-Sysmon/"},
		{"/Microsoft-Windows-Sysmon/1?field=Image&page=2", "event", "/Microsoft-Windows-Sysmon/1?field=Image&page=2"},
		{"/a/b/c/d", "", ""},
	} {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		c := classify(u)
		if c.kind != tc.kind || c.fetch != tc.fetch {
			t.Errorf("classify(%s) = %s %q, want %s %q", tc.url, c.kind, c.fetch, tc.kind, tc.fetch)
		}
		if c.file != "" {
			checkInside(t, c.file)
		}
	}
}

// TestRewriteAttrs: values are unescaped for the decision and escaped again, text that
// only looks like an attribute (escaped by the templates) is left alone, and dropped
// attributes leave the element.
func TestRewriteAttrs(t *testing.T) {
	in := `<a href="/x?a=1&amp;b=2">t</a> <p>href=&#34;/evil&#34;</p> <a href="/api/">API</a> <script src="/s.js"></script> <form action="/rules/">`
	got := string(rewriteAttrs(nil, []byte(in), func(raw []byte) (string, bool) {
		v := html.UnescapeString(string(raw))
		if v == "/api/" {
			return "", false
		}
		return html.EscapeString("R" + v + "<\""), true
	}))
	want := `<a href="R/x?a=1&amp;b=2&lt;&#34;">t</a> <p>href=&#34;/evil&#34;</p> <a>API</a> <script src="R/s.js&lt;&#34;"></script> <form action="R/rules/&lt;&#34;">`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
