package gitsource

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ruledex/ruledex/internal/corpustest"
)

func TestParseSources(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Source
		errs []string // each must appear in the error text
	}{
		{name: "full entry", in: `sources:
  - name: sigma
    url: https://github.com/SigmaHQ/sigma
    ref: master
    paths: [rules, ./rules-emerging-threats/]
    language: sigma
    license: DRL-1.1
`, want: []Source{{Name: "sigma", URL: "https://github.com/SigmaHQ/sigma", Ref: "master",
			Paths: []string{"rules", "rules-emerging-threats"}, Language: []string{"sigma"}, License: "DRL-1.1", Line: 2}}},
		{name: "unknown key and missing url", in: `sources:
  - name: a
    urll: https://x/y
`, errs: []string{"f.yaml:3: unknown key \"urll\"", "f.yaml:2: source \"a\" without a url"}},
		{name: "bad name", in: `sources:
  - name: ../up
    url: https://x/y
`, errs: []string{"f.yaml:2: name \"../up\""}},
		{name: "path leaving the repository", in: `sources:
  - name: a
    url: https://x/y
    paths: [rules, ../etc]
`, errs: []string{"f.yaml:4: paths: \"../etc\": leaves the repository"}},
		{name: "duplicate name", in: `sources:
  - name: a
    url: https://x/y
  - name: a
    url: https://x/z
`, errs: []string{"f.yaml:4: source name \"a\" is also used at line 2"}},
		{name: "credentials in url", in: `sources:
  - name: a
    url: https://me:hunter2@example.org/r.git
`, errs: []string{"f.yaml:3: url: credentials in the URL"}},
		{name: "unsupported scheme", in: `sources:
  - name: a
    url: ftp://example.org/r
`, errs: []string{"f.yaml:3: url: unsupported scheme \"ftp\""}},
		{name: "bad kind", in: `sources:
  - name: a
    url: https://x/y
    kind: docs
`, errs: []string{"f.yaml:4: kind \"docs\""}},
		{name: "not a list", in: "sources: {name: a}\n", errs: []string{"f.yaml:1: sources must be a list"}},
		{name: "syntax error", in: "sources:\n  - name: [a\n", errs: []string{"f.yaml:"}},
		{name: "empty", in: "", errs: []string{"f.yaml: empty"}},
		{name: "top-level typo", in: "source:\n  - name: a\n", errs: []string{"f.yaml:1: unknown key \"source\"", "no sources: list"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse("f.yaml", []byte(tt.in))
			if len(tt.errs) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if d := cmp.Diff(tt.want, got); d != "" {
					t.Errorf("(-want +got)\n%s", d)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, got %+v", got)
			}
			for _, e := range tt.errs {
				if !strings.Contains(err.Error(), e) {
					t.Errorf("error %q lacks %q", err, e)
				}
			}
		})
	}
}

// The defaults round-trip through the file format, name the repositories the corpus
// comes from, and paths the corpus has.
func TestDefaultsRoundTrip(t *testing.T) {
	b, err := Marshal(Defaults())
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse("defaults.yaml", b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if d := cmp.Diff(Defaults(), got, cmpopts.IgnoreFields(Source{}, "Line")); d != "" {
		t.Errorf("(-defaults +parsed)\n%s", d)
	}
	manifest, err := os.ReadFile(filepath.Join(corpusDir(t), "SOURCES.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range got {
		repo := strings.TrimPrefix(s.URL, "https://github.com/")
		if !strings.Contains(string(manifest), repo) {
			t.Errorf("%s: %s is not a source of the corpus (SOURCES.md)", s.Name, repo)
		}
	}
}

// TestTokenNeverShown: the token goes to the server as basic auth and nowhere else:
// not in the report, its JSON, the error text or any file of the cache.
func TestTokenNeverShown(t *testing.T) {
	const token = "ghp_secretTOKEN1234567890"
	var mu sync.Mutex
	var gotAuth []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		_, pass, ok := r.BasicAuth()
		if ok {
			gotAuth = append(gotAuth, pass)
		}
		mu.Unlock()
		// Echo the credentials back, as a careless proxy might: they must still not show.
		w.Header().Set("WWW-Authenticate", `Basic realm="x"`)
		http.Error(w, "denied for "+pass, http.StatusForbidden)
	}))
	defer srv.Close()
	h := newHarness(t)
	h.env = func(k string) string {
		if k == "RULEDEX_GIT_TOKEN" {
			return token
		}
		return ""
	}
	var logs []string
	rep, err := Sync(t.Context(), []Source{{Name: "private", URL: srv.URL + "/org/private.git"}},
		Options{CacheDir: h.cache, Env: h.env, Log: func(m string) { logs = append(logs, m) }})
	if err == nil || rep.Failed != 1 {
		t.Fatalf("err %v, report %+v", err, rep)
	}
	mu.Lock()
	if len(gotAuth) == 0 || gotAuth[0] != token {
		t.Errorf("server saw basic auth passwords %q, want the token", gotAuth)
	}
	mu.Unlock()
	js, _ := json.Marshal(rep)
	texts := map[string]string{"error": err.Error(), "report": string(js), "logs": strings.Join(logs, "\n")}
	filepath.Walk(h.cache, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			texts[p] = string(b)
		}
		return nil
	})
	if len(texts) < 4 {
		t.Fatalf("no cache files written: %v", texts)
	}
	for where, s := range texts {
		if strings.Contains(s, token) {
			t.Errorf("token in %s: %s", where, s)
		}
	}
	t.Logf("reported: %s", rep.Repos[0].Error)
	if rep.Repos[0].Error == "" {
		t.Error("no error reported for the failing repository")
	}
}

func TestTokenFor(t *testing.T) {
	env := func(m map[string]string) Env { return func(k string) string { return m[k] } }
	tests := []struct {
		url  string
		env  map[string]string
		want string
	}{
		{"https://github.com/a/b", map[string]string{"GITHUB_TOKEN": "g"}, "g"},
		{"https://github.com/a/b", map[string]string{"GITHUB_TOKEN": "g", "RULEDEX_GIT_TOKEN": "r"}, "r"},
		{"https://gitlab.com/a/b", map[string]string{"GITHUB_TOKEN": "g"}, ""},
		{"https://gitlab.com/a/b", map[string]string{"RULEDEX_GIT_TOKEN": "r"}, "r"},
		{"file:///tmp/x", map[string]string{"RULEDEX_GIT_TOKEN": "r"}, ""},
		{"ssh://git@github.com/a/b", map[string]string{"GITHUB_TOKEN": "g"}, ""},
	}
	for _, tt := range tests {
		if got := tokenFor(tt.url, env(tt.env)); got != tt.want {
			t.Errorf("tokenFor(%s, %v) = %q, want %q", tt.url, tt.env, got, tt.want)
		}
	}
}

func corpusDir(t *testing.T) string { return corpustest.Dir(t) }
