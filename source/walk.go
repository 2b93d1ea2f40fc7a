package source

import (
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
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

// Walk lists the regular files under root (an absolute folder or file), sorted by path,
// skipping version-control folders. Symbolic links are not followed. Unreadable
// sub-folders and files are reported to onErr and skipped; only an unreadable root
// fails. Folders are read in parallel: an unchanged re-ingest is mostly this walk.
func Walk(root string, onErr func(path string, err error)) ([]File, error) {
	st, err := os.Stat(root)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []File{{Abs: root, Rel: filepath.Base(root), Size: st.Size(), MTime: st.ModTime().UnixNano()}}, nil
	}
	if _, err := os.ReadDir(root); err != nil {
		return nil, err
	}
	w := &walker{root: root, onErr: onErr, dirs: make(chan string, 1024)}
	w.pending.Add(1)
	w.dirs <- root
	go func() {
		w.pending.Wait()
		close(w.dirs)
	}()
	var wg sync.WaitGroup
	for range max(2, runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range w.dirs {
				w.readDir(d)
			}
		}()
	}
	wg.Wait()
	sort.Slice(w.out, func(i, j int) bool { return w.out[i].Abs < w.out[j].Abs })
	return w.out, nil
}

type walker struct {
	root    string
	onErr   func(string, error)
	dirs    chan string
	pending sync.WaitGroup // directories queued but not yet read
	mu      sync.Mutex
	out     []File
}

func (w *walker) report(p string, err error) {
	if w.onErr != nil {
		w.mu.Lock()
		w.onErr(p, err)
		w.mu.Unlock()
	}
}

func (w *walker) readDir(dir string) {
	defer w.pending.Done()
	ents, err := os.ReadDir(dir)
	if err != nil {
		w.report(dir, err)
	}
	var files []File
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		switch {
		case e.IsDir():
			if skipDirs[e.Name()] {
				continue
			}
			w.pending.Add(1)
			select {
			case w.dirs <- p:
			default:
				// Queue full: read it here rather than block every worker on a full channel.
				w.readDir(p)
			}
		case e.Type().IsRegular():
			info, err := e.Info()
			if err != nil {
				w.report(p, err)
				continue
			}
			rel, _ := filepath.Rel(w.root, p)
			files = append(files, File{Abs: p, Rel: filepath.ToSlash(rel), Size: info.Size(), MTime: info.ModTime().UnixNano()})
		}
	}
	if len(files) > 0 {
		w.mu.Lock()
		w.out = append(w.out, files...)
		w.mu.Unlock()
	}
}
