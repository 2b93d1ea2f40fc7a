// Package gittest makes local git repositories for tests that stand for an upstream
// rule repository: files are written, removed and renamed in the work tree, then
// committed with fixed authors and times so that commit hashes are reproducible.
package gittest

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Repo is a non-bare repository in a test's temporary folder.
type Repo struct {
	t    *testing.T
	Dir  string
	Repo *git.Repository
	wt   *git.Worktree
	n    int
}

// New creates an empty repository named name under t.TempDir().
func New(t *testing.T, name string) *Repo {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	repo, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	return &Repo{t: t, Dir: dir, Repo: repo, wt: wt}
}

// Write writes data to rel (slash-separated), creating folders.
func (r *Repo) Write(rel string, data []byte) {
	r.t.Helper()
	p := filepath.Join(r.Dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		r.t.Fatal(err)
	}
}

// Remove deletes rel from the work tree.
func (r *Repo) Remove(rel string) {
	r.t.Helper()
	if err := os.Remove(filepath.Join(r.Dir, filepath.FromSlash(rel))); err != nil {
		r.t.Fatal(err)
	}
}

// Rename moves from to to in the work tree, creating folders.
func (r *Repo) Rename(from, to string) {
	r.t.Helper()
	dst := filepath.Join(r.Dir, filepath.FromSlash(to))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(r.Dir, filepath.FromSlash(from)), dst); err != nil {
		r.t.Fatal(err)
	}
}

// Commit stages everything (additions, edits, deletions), commits it and returns the
// commit hash. Each commit is one minute after the previous one.
func (r *Repo) Commit(msg string) string {
	r.t.Helper()
	if err := r.wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		r.t.Fatal(err)
	}
	r.n++
	h, err := r.wt.Commit(msg, &git.CommitOptions{Author: &object.Signature{Name: "t", Email: "t@example.org",
		When: time.Date(2026, 1, 1, 0, r.n, 0, 0, time.UTC)}})
	if err != nil {
		r.t.Fatal(err)
	}
	return h.String()
}

// ResetHard moves the branch back to commit, as a force-push that rewrites history does.
func (r *Repo) ResetHard(commit string) {
	r.t.Helper()
	if err := r.wt.Reset(&git.ResetOptions{Commit: plumbing.NewHash(commit), Mode: git.HardReset}); err != nil {
		r.t.Fatal(err)
	}
}
