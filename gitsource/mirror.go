package gitsource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/utils/merkletrie"
)

// state is what a mirror folder holds, saved beside it after every update. An update
// that stops half-way leaves the previous state, and applying the same diff again
// from there is harmless, so the folder always converges to the fetched tree.
type state struct {
	URL    string   `json:"url"`
	Paths  []string `json:"paths"`
	Commit string   `json:"commit"`
	// Files maps each mirrored path to the commit its current content was fetched at.
	Files map[string]string `json:"files"`
}

func loadState(file string) *state {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	var st state
	if json.Unmarshal(b, &st) != nil || st.Files == nil {
		return nil
	}
	return &st
}

func (st *state) save(file string) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}

// Changes counts what an update did to a mirror.
type Changes struct {
	Added    int `json:"added"`
	Modified int `json:"modified"`
	Deleted  int `json:"deleted"`
	Renamed  int `json:"renamed"`
	// Full is true when the mirror was written from scratch (first sync, paths changed,
	// or the previous commit is no longer in the cache).
	Full bool `json:"full,omitempty"`
	// Missing are paths of the source that the fetched tree does not have (checked when
	// the mirror is written from scratch).
	Missing []string `json:"missing_paths,omitempty"`
	// Refused are file paths not written because they would leave the mirror or write
	// into a .git folder ("..", ".git" components).
	Refused []string `json:"refused_paths,omitempty"`
}

// Total is the number of files written or removed.
func (c Changes) Total() int { return c.Added + c.Modified + c.Deleted + c.Renamed }

// mirror is the folder of files of one source and its saved state.
type mirror struct {
	dir       string // files
	stateFile string
	src       Source
	repo      *git.Repository
	refused   []string // paths a hostile tree used to escape the mirror, not written
}

func inPaths(paths []string, name string) bool {
	if len(paths) == 0 {
		return true
	}
	for _, p := range paths {
		if name == p || strings.HasPrefix(name, p+"/") {
			return true
		}
	}
	return false
}

// localPath is where a repository path goes under the mirror, or an error for a name a
// hostile remote could use to write outside it.
func (m *mirror) localPath(name string) (string, error) {
	for _, part := range strings.Split(name, "/") {
		if part == "" || part == "." || part == ".." || strings.EqualFold(part, ".git") || strings.ContainsRune(part, '\\') {
			return "", fmt.Errorf("refusing repository path %q", name)
		}
	}
	p := filepath.FromSlash(name)
	if !filepath.IsLocal(p) {
		return "", fmt.Errorf("refusing repository path %q", name)
	}
	return filepath.Join(m.dir, p), nil
}

// update makes the mirror hold commit's files under the source's paths, writing only
// what differs from the commit mirrored before, and returns the per-file commits.
func (m *mirror) update(ctx context.Context, commit *object.Commit) (*state, Changes, error) {
	var ch Changes
	newTree, err := commit.Tree()
	if err != nil {
		return nil, ch, fmt.Errorf("tree of %s: %w", commit.Hash, err)
	}
	hash := commit.Hash.String()
	st := loadState(m.stateFile)
	if st != nil && (st.URL != m.src.URL || !slices.Equal(st.Paths, m.src.Paths)) {
		st = nil
	}
	if st != nil {
		if _, err := os.Stat(m.dir); err != nil {
			st = nil
		}
	}
	if st != nil && st.Commit == hash {
		return st, ch, nil
	}
	var oldTree *object.Tree
	if st != nil {
		old, err := m.repo.CommitObject(plumbing.NewHash(st.Commit))
		if err == nil {
			oldTree, err = old.Tree()
		}
		if err != nil {
			oldTree = nil
		}
	}
	if oldTree == nil {
		return m.full(ctx, newTree, hash)
	}
	// Trees are compared, not history: a force-pushed branch is one more pair of trees.
	changes, err := object.DiffTreeWithOptions(ctx, oldTree, newTree,
		&object.DiffTreeOptions{DetectRenames: true, OnlyExactRenames: true})
	if err != nil {
		return nil, ch, fmt.Errorf("diff %s..%s: %w", st.Commit, hash, err)
	}
	for _, c := range changes {
		if err := ctx.Err(); err != nil {
			return nil, ch, err
		}
		act, err := c.Action()
		if err != nil {
			return nil, ch, err
		}
		from, to := c.From.Name, c.To.Name
		fromIn := act != merkletrie.Insert && inPaths(m.src.Paths, from)
		toIn := act != merkletrie.Delete && inPaths(m.src.Paths, to)
		if fromIn && (act == merkletrie.Delete || from != to) {
			if err := m.remove(from); err != nil {
				return nil, ch, err
			}
			delete(st.Files, from)
		}
		if toIn {
			ok, err := m.write(c.To.TreeEntry, to)
			if err != nil {
				return nil, ch, err
			}
			if ok {
				// A renamed file is new at its path: blob/<old commit>/<new path> would not exist.
				st.Files[to] = hash
			} else {
				// Now a symbolic link or submodule: the old file must not stay behind.
				if fromIn && from == to {
					if err := m.remove(to); err != nil {
						return nil, ch, err
					}
				}
				delete(st.Files, to)
				toIn = false
			}
		}
		switch {
		case fromIn && toIn && from != to:
			ch.Renamed++
		case fromIn && toIn:
			ch.Modified++
		case fromIn:
			ch.Deleted++
		case toIn:
			ch.Added++
		}
	}
	st.Commit = hash
	ch.Refused = m.refused
	if err := st.save(m.stateFile); err != nil {
		return nil, ch, fmt.Errorf("save mirror state: %w", err)
	}
	return st, ch, nil
}

// full writes the mirror from scratch.
func (m *mirror) full(ctx context.Context, tree *object.Tree, hash string) (*state, Changes, error) {
	ch := Changes{Full: true}
	// The state goes first: an interrupted rewrite must be redone whole next time.
	if err := os.Remove(m.stateFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, ch, err
	}
	if err := os.RemoveAll(m.dir); err != nil {
		return nil, ch, fmt.Errorf("clear mirror: %w", err)
	}
	if err := os.MkdirAll(m.dir, 0o755); err != nil {
		return nil, ch, err
	}
	st := &state{URL: m.src.URL, Paths: m.src.Paths, Commit: hash, Files: map[string]string{}}
	put := func(name string, e object.TreeEntry) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		ok, err := m.write(e, name)
		if ok {
			st.Files[name] = hash
			ch.Added++
		}
		return err
	}
	walk := func(prefix string, t *object.Tree) error {
		return t.Files().ForEach(func(f *object.File) error {
			return put(prefix+f.Name, object.TreeEntry{Name: path.Base(f.Name), Mode: f.Mode, Hash: f.Hash})
		})
	}
	if len(m.src.Paths) == 0 {
		if err := walk("", tree); err != nil {
			return nil, ch, err
		}
	}
	// Only the trees under paths are read: a few folders of a large repository.
	for _, p := range m.src.Paths {
		e, err := tree.FindEntry(p)
		if err != nil {
			ch.Missing = append(ch.Missing, p)
			continue
		}
		if e.Mode == filemode.Dir {
			sub, err := tree.Tree(p)
			if err != nil {
				return nil, ch, fmt.Errorf("%s: %w", p, err)
			}
			err = walk(p+"/", sub)
		} else {
			err = put(p, *e)
		}
		if err != nil {
			return nil, ch, err
		}
	}
	ch.Refused = m.refused
	if err := st.save(m.stateFile); err != nil {
		return nil, ch, fmt.Errorf("save mirror state: %w", err)
	}
	return st, ch, nil
}

// write puts one blob at name; ok is false for entries that are not regular files
// (symbolic links, submodules), which are never mirrored.
func (m *mirror) write(e object.TreeEntry, name string) (ok bool, err error) {
	if e.Mode != filemode.Regular && e.Mode != filemode.Executable && e.Mode != filemode.Deprecated {
		return false, nil
	}
	dst, err := m.localPath(name)
	if err != nil {
		m.refused = append(m.refused, name)
		return false, nil
	}
	blob, err := m.repo.BlobObject(e.Hash)
	if err != nil {
		return false, fmt.Errorf("%s: %w", name, err)
	}
	r, err := blob.Reader()
	if err != nil {
		return false, fmt.Errorf("%s: %w", name, err)
	}
	defer r.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return false, err
	}
	// A path that was a folder and is now a file (or the reverse) is replaced.
	if st, err := os.Lstat(dst); err == nil && !st.Mode().IsRegular() {
		if err := os.RemoveAll(dst); err != nil {
			return false, err
		}
	}
	f, err := os.Create(dst)
	if err != nil {
		return false, err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return false, fmt.Errorf("%s: %w", name, err)
	}
	return true, f.Close()
}

// remove deletes name and the folders it leaves empty.
func (m *mirror) remove(name string) error {
	dst, err := m.localPath(name)
	if err != nil {
		return err
	}
	if err := os.Remove(dst); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for d := filepath.Dir(dst); d != m.dir && strings.HasPrefix(d, m.dir); d = filepath.Dir(d) {
		if os.Remove(d) != nil {
			break // not empty
		}
	}
	return nil
}
