package source

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ruledex/ruledex/internal/corpustest"
)

// FuzzParseRemote: any string yields either a repository with a matching https URL or ok=false.
func FuzzParseRemote(f *testing.F) {
	for _, s := range []string{"git@github.com:SigmaHQ/sigma.git", "https://github.com/a/b/tree/x", "ssh://git@host:22/a/b",
		"git@gitlab.com:g/s/p.git", "/local/path", "file:///x", "https://@/", ":", "a:b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		repo, url, blob, ok := ParseRemote(s)
		if !ok {
			return
		}
		if repo == "" || url != "https://"+repo || blob == "" {
			t.Errorf("ParseRemote(%q) = %q %q %q", s, repo, url, blob)
		}
	})
}

// FuzzManifest: a SOURCES.md of any content never panics and maps only folders under
// the manifest's own folder.
func FuzzManifest(f *testing.F) {
	b, err := os.ReadFile(filepath.Join(corpustest.Dir(f), "SOURCES.md"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(b))
	f.Add("| folder | commit | source |\n|---|---|---|\n| x | abc | a/b |\n")
	f.Add("|||\n| | |\n")
	f.Fuzz(func(t *testing.T, s string) {
		d := filepath.FromSlash("/m")
		for _, e := range parseManifest(d, []byte(s)) {
			if e.info == nil || e.info.Repo == "" {
				t.Errorf("entry without repository: %+v", e)
			}
		}
	})
}
