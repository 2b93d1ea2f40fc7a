package source

import (
	"io/fs"
	"os"
	"path/filepath"
)

// File is a regular file found by Walk.
type File struct {
	Abs   string // absolute path
	Rel   string // relative to the walked root, forward slashes (the file name for a file root)
	Size  int64
	MTime int64 // UnixNano
}

// skipDirs are never rule sources: version-control metadata and dependency trees.
var skipDirs = map[string]bool{".git": true, ".hg": true, ".svn": true, "node_modules": true}

// Walk lists the regular files under root (an absolute folder or file), skipping
// version-control folders. Symbolic links are not followed. Unreadable sub-folders are
// reported to onErr and skipped; only an unreadable root fails.
func Walk(root string, onErr func(path string, err error)) ([]File, error) {
	st, err := os.Stat(root)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []File{{Abs: root, Rel: filepath.Base(root), Size: st.Size(), MTime: st.ModTime().UnixNano()}}, nil
	}
	var out []File
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root {
				return err
			}
			if onErr != nil {
				onErr(p, err)
			}
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if p != root && skipDirs[d.Name()] {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if onErr != nil {
				onErr(p, err)
			}
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		out = append(out, File{Abs: p, Rel: filepath.ToSlash(rel), Size: info.Size(), MTime: info.ModTime().UnixNano()})
		return nil
	})
	return out, err
}
