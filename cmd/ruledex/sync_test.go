package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/internal/gittest"
)

// syncUpstream is a local rule repository for the CLI tests.
type syncUpstream struct {
	*gittest.Repo
	t *testing.T
}

func newSyncUpstream(t *testing.T) syncUpstream { return syncUpstream{gittest.New(t, "rules-repo"), t} }

// add copies a corpus file into the repository and commits it; returns the commit.
func (u syncUpstream) add(rel string, corpusPath ...string) string {
	u.t.Helper()
	b, err := os.ReadFile(corpustest.Path(u.t, corpusPath...))
	if err != nil {
		u.t.Fatal(err)
	}
	u.Write(rel, b)
	return u.Commit("add " + rel)
}

type syncCLI struct {
	db, home string
}

func (c syncCLI) cmd(t *testing.T, args ...string) *exec.Cmd {
	cmd := exec.Command(cliBin, append([]string{"--db", c.db}, args...)...)
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "XDG_") && !strings.HasPrefix(e, "RULEDEX_") && !strings.HasPrefix(e, "GITHUB_TOKEN=") {
			env = append(env, e)
		}
	}
	cmd.Env = append(env, "XDG_CACHE_HOME="+filepath.Join(c.home, "cache"), "XDG_CONFIG_HOME="+filepath.Join(c.home, "config"),
		"XDG_DATA_HOME="+filepath.Join(c.home, "data"))
	return cmd
}

func (c syncCLI) run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := c.cmd(t, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

func writeSources(t *testing.T, dir string, body string) string {
	t.Helper()
	p := filepath.Join(dir, "sources.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCLISync: sync of a local repository, the seed rule's recorded commit, a failing
// repository (exit 4, the other still synced), a bad sources file (exit 1, located).
func TestCLISync(t *testing.T) {
	cliSetup(t)
	up := newSyncUpstream(t)
	head := up.add("windows/bits.yaml", "sigma", "mdecrevoisier", "windows-bits", "win-os-BITS abuse for payload download (command).yaml")
	home := t.TempDir()
	c := syncCLI{db: filepath.Join(home, "c.db"), home: home}
	src := writeSources(t, home, fmt.Sprintf("sources:\n  - name: local\n    url: file://%s\n", filepath.ToSlash(up.Dir)))

	type report struct {
		Repos []struct {
			Name, Status, Commit, Error string
			Added                       int
		}
		Failed         int
		Ingest         struct{ Changed, TotalRules int } `json:"ingest"`
		CatalogCurrent bool                              `json:"catalog_current"`
	}
	out, stderr, code := c.run(t, "sync", "--sources", src, "--json")
	var rep report
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil {
		t.Fatalf("sync: exit %d\n%s\n%s", code, out, stderr)
	}
	if len(rep.Repos) != 1 || rep.Repos[0].Status != "new" || rep.Repos[0].Commit != head || rep.Ingest.Changed != 1 {
		t.Fatalf("first sync report: %s", out)
	}
	// Nothing new: the catalog is known to hold this commit, nothing is walked.
	out, stderr, code = c.run(t, "sync", "--sources", src, "--json")
	rep = report{}
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || !rep.CatalogCurrent || rep.Repos[0].Status != "unchanged" {
		t.Fatalf("second sync: exit %d\n%s\n%s", code, out, stderr)
	}
	// After the mirror's rules are removed from the catalog, the same commit is ingested again.
	mirror := filepath.Join(home, "cache", "ruledex", "repos", "local", "files")
	if _, stderr, code := c.run(t, "remove", mirror); code != 0 {
		t.Fatalf("remove %s: exit %d %s", mirror, code, stderr)
	}
	out, stderr, code = c.run(t, "sync", "--sources", src, "--json")
	rep = report{}
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.CatalogCurrent || rep.Ingest.Changed != 1 {
		t.Fatalf("sync after remove: exit %d\n%s\n%s", code, out, stderr)
	}
	out, stderr, code = c.run(t, "show", "BITS payload downloaded via commandline", "--json")
	var shown struct {
		Source struct{ Commit, Path, Repo string } `json:"source"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &shown) != nil {
		t.Fatalf("show: exit %d\n%.500s\n%s", code, out, stderr)
	}
	if shown.Source.Commit != head || shown.Source.Path != "windows/bits.yaml" {
		t.Errorf("seed rule source %+v, want commit %s path windows/bits.yaml", shown.Source, head)
	}

	// A second repository that cannot be fetched: exit 4, the first one still synced.
	head2 := up.add("windows/bits-dup.yaml", "sigma", "mdecrevoisier", "windows-bits", "win-os-BITS abuse for payload download (command).yaml")
	src = writeSources(t, home, fmt.Sprintf("sources:\n  - name: local\n    url: file://%s\n  - name: gone\n    url: file://%s/nope\n",
		filepath.ToSlash(up.Dir), filepath.ToSlash(home)))
	out, stderr, code = c.run(t, "sync", "--sources", src, "--json")
	rep = report{}
	if code != exitPartial || json.Unmarshal([]byte(out), &rep) != nil {
		t.Fatalf("sync with a missing repository: exit %d, want %d\n%s\n%s", code, exitPartial, out, stderr)
	}
	if rep.Failed != 1 || rep.Repos[0].Commit != head2 || rep.Repos[1].Status != "failed" || rep.Repos[1].Error == "" {
		t.Errorf("partial sync report: %s", out)
	}

	// sources list shows what each source was last synced at.
	out, stderr, code = c.run(t, "sources", "list", "--file", src, "--json")
	var listed []struct {
		Name         string
		SyncedCommit string `json:"synced_commit"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &listed) != nil || len(listed) != 2 ||
		listed[0].SyncedCommit != head2 || listed[1].SyncedCommit != "" {
		t.Errorf("sources list: exit %d %s %s", code, out, stderr)
	}

	// A source dropped from the file: its mirror is reported as stale, its rules kept.
	only := writeSources(t, t.TempDir(), fmt.Sprintf("sources:\n  - name: gone\n    url: file://%s/nope\n", filepath.ToSlash(home)))
	out, _, code = c.run(t, "sync", "--sources", only, "--json")
	var stale struct{ Stale []string }
	mirror = filepath.Join(home, "cache", "ruledex", "repos", "local", "files")
	if code != exitFailure || json.Unmarshal([]byte(out), &stale) != nil || len(stale.Stale) != 1 || stale.Stale[0] != mirror {
		t.Errorf("sync without the local source: exit %d, %s; want exit 1 and %s stale", code, out, mirror)
	}

	// A bad sources file: exit 1, with file and line.
	bad := writeSources(t, t.TempDir(), "sources:\n  - name: x\n    url: ftp://example.org/r\n")
	_, stderr, code = c.run(t, "sync", "--sources", bad)
	if code != exitFailure || !strings.Contains(stderr, bad+":3: url: unsupported scheme") {
		t.Errorf("bad sources file: exit %d, stderr %q", code, stderr)
	}
	// Unknown source name on the command line: usage error.
	if _, stderr, code := c.run(t, "sync", "--sources", src, "nosuch"); code != exitUsage {
		t.Errorf("unknown source name: exit %d (%s)", code, stderr)
	}
}

// TestCLIServeSyncEvery: serve --sync-every picks up a new upstream commit without a
// restart.
func TestCLIServeSyncEvery(t *testing.T) {
	cliSetup(t)
	up := newSyncUpstream(t)
	up.add("a.yaml", "sigma", "mdecrevoisier", "windows-bits", "win-os-BITS abuse for payload download (command).yaml")
	home := t.TempDir()
	c := syncCLI{db: filepath.Join(home, "c.db"), home: home}
	src := writeSources(t, home, fmt.Sprintf("sources:\n  - name: local\n    url: file://%s\n", filepath.ToSlash(up.Dir)))
	cmd := c.cmd(t, "--data", corpustest.Dir(t), "serve", "--addr", "127.0.0.1:0", "--sources", src, "--sync-every", "300ms", "--sync-fast")
	base, logs := startServe(t, cmd)
	total := func() int {
		resp, err := http.Get(base + "api/search?per_page=1")
		if err != nil {
			return -1
		}
		defer resp.Body.Close()
		var r struct{ Total int }
		b, _ := io.ReadAll(resp.Body)
		json.Unmarshal(b, &r)
		return r.Total
	}
	waitFor := func(n int) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for time.Now().Before(deadline) {
			if total() == n {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("the server never showed %d rules (shows %d)\n%s", n, total(), logs.String())
	}
	waitFor(1)
	up.add("b.yaml", "sigma", "sigmahq", "rules", "windows", "process_creation", "proc_creation_win_bitsadmin_download.yml")
	waitFor(2)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("serve exit: %v\n%s", err, logs.String())
	}
}
