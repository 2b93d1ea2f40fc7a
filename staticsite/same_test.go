package staticsite

import (
	"bytes"
	"context"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExportServerSameSite: the export as ruledex export site makes it (shared
// results, no page cache, pages in parallel) and the export of the server as readers
// see it, one page at a time, are the same files byte for byte.
func TestExportServerSameSite(t *testing.T) {
	dir := site(t)
	files := func(root string) map[string][]byte {
		out := map[string][]byte{}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			rel, _ := filepath.Rel(root, p)
			out[filepath.ToSlash(rel)] = b
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	got, want := files(dir), files(exported.plainDir)
	if len(got) != len(want) || len(got) < 100 {
		t.Errorf("%d files exported, %d by the plain server", len(got), len(want))
	}
	diff := 0
	for name, w := range want {
		if g, ok := got[name]; !ok || !bytes.Equal(g, w) {
			if diff++; diff <= 10 {
				t.Errorf("%s differs (present %v, %d bytes, want %d)", name, ok, len(g), len(w))
			}
		}
	}
	if diff > 0 {
		t.Errorf("%d of %d files differ", diff, len(want))
	}
}

// TestRelativeLinksPerPath: a relative link written the same on pages of different
// paths (facet links are "?language=..." on the browse page and the matrix) goes to
// each page's own target; decided once per path, never once for all.
func TestRelativeLinksPerPath(t *testing.T) {
	page := func(links ...string) string {
		var b strings.Builder
		b.WriteString("<!doctype html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>t</title>\n</head>\n<body>\n")
		for _, l := range links {
			b.WriteString(`<a href="` + l + `">x</a>` + "\n")
		}
		b.WriteString("</body>\n</html>\n")
		return b.String()
	}
	pages := map[string]string{
		"/":                         page("/rules/", "/attack/", "/rules/?language=sigma"),
		"/rules/":                   page("?language=sigma", "#top", "", "https://example.org/a+b"),
		"/attack/":                  page("?language=sigma", "#top", "", "https://example.org/a+b"),
		"/rules/?language=sigma":    page("/"),
		"/attack/?language=sigma":   page("/"),
		"/static/search.js":         "",
		"/attack/techniques/T1197/": page("/"),
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := pages[r.URL.RequestURI()]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(body))
	})
	dir := t.TempDir()
	if _, err := Export(context.Background(), Options{Handler: h, Dir: dir, Workers: 1}); err != nil {
		t.Fatal(err)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	rules, attack := read("rules/index.html"), read("attack/index.html")
	browse := `href="_q-language-sigma-`
	if !strings.Contains(rules, browse) || !strings.Contains(attack, browse) {
		t.Fatalf("the facet link does not point to the page's own filtered file:\n%s\n%s", rules, attack)
	}
	// The browse page's filtered file is in rules/, the matrix's in attack/: both exist.
	for _, d := range []string{"rules", "attack"} {
		m, _ := filepath.Glob(filepath.Join(dir, d, "_q-language-sigma-*.html"))
		if len(m) != 1 {
			t.Errorf("%s: %d filtered pages written, want 1", d, len(m))
		}
	}
	for _, want := range []string{`href="#top"`, `href=""`, `href="https://example.org/a+b"`} {
		if !strings.Contains(rules, want) || !strings.Contains(attack, want) {
			t.Errorf("link %s not kept as it was", want)
		}
	}
	if i, j := strings.Index(rules, `<meta charset="utf-8">`), strings.Index(rules, `http-equiv="Content-Security-Policy"`); i < 0 || j < i {
		t.Errorf("the policy is not right after the charset:\n%s", rules)
	}
}
