package source

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/rule"
)

func TestParseRemote(t *testing.T) {
	tests := []struct {
		in, repo, url, blob string
		ok                  bool
	}{
		{"git@github.com:SigmaHQ/sigma.git", "github.com/SigmaHQ/sigma", "https://github.com/SigmaHQ/sigma", "blob", true},
		{"https://github.com/SigmaHQ/sigma.git", "github.com/SigmaHQ/sigma", "https://github.com/SigmaHQ/sigma", "blob", true},
		{"https://github.com/SigmaHQ/sigma", "github.com/SigmaHQ/sigma", "https://github.com/SigmaHQ/sigma", "blob", true},
		{"https://github.com/SigmaHQ/sigma/tree/master/rules", "github.com/SigmaHQ/sigma", "https://github.com/SigmaHQ/sigma", "blob", true},
		{"ssh://git@github.com/a/b.git", "github.com/a/b", "https://github.com/a/b", "blob", true},
		{"https://user@GitHub.com/a/b/", "github.com/a/b", "https://github.com/a/b", "blob", true},
		{"git@gitlab.com:group/sub/proj.git", "gitlab.com/group/sub/proj", "https://gitlab.com/group/sub/proj", "-/blob", true},
		{"https://gitlab.com/group/sub/proj/-/tree/main", "gitlab.com/group/sub/proj", "https://gitlab.com/group/sub/proj", "-/blob", true},
		{"/srv/git/rules.git", "", "", "", false},
		{"file:///srv/git/rules.git", "", "", "", false},
		{"", "", "", "", false},
	}
	for _, tt := range tests {
		repo, url, blob, ok := ParseRemote(tt.in)
		if repo != tt.repo || url != tt.url || blob != tt.blob || ok != tt.ok {
			t.Errorf("ParseRemote(%q) = %q %q %q %v, want %q %q %q %v", tt.in, repo, url, blob, ok, tt.repo, tt.url, tt.blob, tt.ok)
		}
	}
}

// TestManifest resolves the corpus' SOURCES.md: sub-folders map to upstream repositories
// and commits, paths become relative to the upstream repository.
func TestManifest(t *testing.T) {
	corpus := corpustest.Dir(t)
	r, err := NewResolver("")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		root, file string
		want       rule.Source
	}{
		{"sigma", "sigma/mdecrevoisier/windows-bits/win-os-BITS abuse for payload download (command).yaml", rule.Source{
			Repo: "github.com/mdecrevoisier/SIGMA-detection-rules", RepoURL: "https://github.com/mdecrevoisier/SIGMA-detection-rules",
			Path: "windows-bits/win-os-BITS abuse for payload download (command).yaml", Commit: "701ece8c4b396ae6816b774797525b3306ee4446",
			UpstreamURL: "https://github.com/mdecrevoisier/SIGMA-detection-rules/blob/701ece8c4b396ae6816b774797525b3306ee4446/windows-bits/win-os-BITS%20abuse%20for%20payload%20download%20%28command%29.yaml",
		}},
		{"sigma/sigmahq/rules", "sigma/sigmahq/rules/windows/process_creation/proc_creation_win_bitsadmin_download.yml", rule.Source{
			Repo: "github.com/SigmaHQ/sigma", RepoURL: "https://github.com/SigmaHQ/sigma",
			Path: "rules/windows/process_creation/proc_creation_win_bitsadmin_download.yml", Commit: "8eaafff1f2845a696050e05e72ba1140ee190698",
			UpstreamURL: "https://github.com/SigmaHQ/sigma/blob/8eaafff1f2845a696050e05e72ba1140ee190698/rules/windows/process_creation/proc_creation_win_bitsadmin_download.yml",
		}},
		// Per-file commits from the MANIFEST.tsv that SOURCES.md names.
		{"kql/azure-sentinel", "kql/azure-sentinel/Hunting Queries/Microsoft 365 Defender/Execution/Bitsadmin Activity.yaml", rule.Source{
			Repo: "github.com/Azure/Azure-Sentinel", RepoURL: "https://github.com/Azure/Azure-Sentinel",
			Path: "Hunting Queries/Microsoft 365 Defender/Execution/Bitsadmin Activity.yaml", Commit: "128d1aa2eff00590711bad104a3232b8a826ac7f",
			UpstreamURL: "https://github.com/Azure/Azure-Sentinel/blob/128d1aa2eff00590711bad104a3232b8a826ac7f/Hunting%20Queries/Microsoft%20365%20Defender/Execution/Bitsadmin%20Activity.yaml",
		}},
	}
	for _, tt := range tests {
		abs := filepath.Join(corpus, filepath.FromSlash(tt.file))
		if _, err := os.Stat(abs); err != nil {
			t.Fatalf("corpus file: %v", err)
		}
		got := r.For(filepath.Join(corpus, tt.root), abs).Source(abs)
		if got != tt.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.file, got, tt.want)
		}
	}
}

func TestGitRemote(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const commit = "0123456789abcdef0123456789abcdef01234567"
	write(".git/config", "[core]\n\tbare = false\n[remote \"upstream\"]\n\turl = https://example.org/x/y.git\n[remote \"origin\"]\n\turl = git@github.com:acme/rules.git\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n")
	write(".git/HEAD", "ref: refs/heads/main\n")
	write(".git/packed-refs", "# pack-refs with: peeled fully-peeled sorted\n"+commit+" refs/heads/main\n")
	write("rules/win/a b.yml", "title: x\n")
	r, _ := NewResolver("")
	abs := filepath.Join(dir, "rules", "win", "a b.yml")
	got := r.For(filepath.Join(dir, "rules"), abs).Source(abs)
	want := rule.Source{Repo: "github.com/acme/rules", RepoURL: "https://github.com/acme/rules", Path: "rules/win/a b.yml", Commit: commit,
		UpstreamURL: "https://github.com/acme/rules/blob/" + commit + "/rules/win/a%20b.yml"}
	if got != want {
		t.Errorf("git checkout:\n got %+v\nwant %+v", got, want)
	}

	// --source-url wins; paths are relative to the ingested root; no commit known.
	r, _ = NewResolver("https://github.com/SigmaHQ/sigma")
	got = r.For(filepath.Join(dir, "rules"), abs).Source(abs)
	want = rule.Source{Repo: "github.com/SigmaHQ/sigma", RepoURL: "https://github.com/SigmaHQ/sigma", Path: "win/a b.yml",
		UpstreamURL: "https://github.com/SigmaHQ/sigma/blob/HEAD/win/a%20b.yml"}
	if got != want {
		t.Errorf("--source-url:\n got %+v\nwant %+v", got, want)
	}
	if _, err := NewResolver("not a url"); err == nil {
		t.Errorf("NewResolver(bad url): no error")
	}
}

func TestPlainFolder(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x", "r.yml")
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, []byte("title: x\n"), 0o644)
	r, _ := NewResolver("")
	got := r.For(dir, p).Source(p)
	if got.Repo != dir || got.Path != "x/r.yml" || got.UpstreamURL != "" {
		t.Errorf("plain folder: %+v", got)
	}
	files, err := Walk(dir, nil)
	if err != nil || len(files) != 1 || files[0].Rel != "x/r.yml" {
		t.Errorf("Walk: %+v %v", files, err)
	}
}

// A mirror (ruledex sync) gives each file its own commit, and links to that commit.
func TestMirror(t *testing.T) {
	base := filepath.Join(t.TempDir(), "files")
	const c1, c2 = "1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222"
	commits := map[string]string{"rules/a b.yml": c1, "rules/sub/c.yml": c2}
	tests := []struct {
		remote, rel        string
		repo, commit, link string
	}{
		{"https://github.com/SigmaHQ/sigma", "rules/a b.yml", "github.com/SigmaHQ/sigma", c1,
			"https://github.com/SigmaHQ/sigma/blob/" + c1 + "/rules/a%20b.yml"},
		{"https://gitlab.com/g/sub/r.git", "rules/sub/c.yml", "gitlab.com/g/sub/r", c2,
			"https://gitlab.com/g/sub/r/-/blob/" + c2 + "/rules/sub/c.yml"},
		{"file:///srv/rules", "rules/sub/c.yml", "file:///srv/rules", c2, ""},
		{"https://github.com/SigmaHQ/sigma", "rules/unknown.yml", "github.com/SigmaHQ/sigma", "",
			"https://github.com/SigmaHQ/sigma/blob/HEAD/rules/unknown.yml"},
	}
	for _, tt := range tests {
		res, err := NewResolver("")
		if err != nil {
			t.Fatal(err)
		}
		res.AddMirror(Mirror(tt.remote, base, commits))
		abs := filepath.Join(base, filepath.FromSlash(tt.rel))
		s := res.For(base, abs).Source(abs)
		if s.Repo != tt.repo || s.Path != tt.rel || s.Commit != tt.commit || s.UpstreamURL != tt.link {
			t.Errorf("%s %s: got %+v, want repo %s commit %s link %s", tt.remote, tt.rel, s, tt.repo, tt.commit, tt.link)
		}
	}
}
