package logread

import (
	"errors"
	"io"
	"os"
	"sync"

	"github.com/ruledex/ruledex/event"
)

// Scan reads every event of paths (files, folders, "-") with workers goroutines and
// calls fn on the worker's own goroutine, so a matcher per worker needs no locking.
// EVTX chunks are independent, so the chunks of one file are decoded in parallel too;
// events of one chunk arrive in order, chunks and files in no set order (sort by
// TimeCreated where order matters). Located errors go to onErr (from any worker,
// serialised); Scan returns only when every input is done.
//
// The event passed to fn is reused after fn returns, like Reader's.
func Scan(paths []string, workers int, fn func(worker int, ev *event.Event), onErr func(error)) {
	if workers < 1 {
		workers = 1
	}
	var errMu sync.Mutex
	report := func(err error) {
		if onErr == nil {
			return
		}
		errMu.Lock()
		defer errMu.Unlock()
		onErr(err)
	}

	type job struct {
		path  string
		chunk int // EVTX chunk index; -1 for a whole file
		file  *evtxFile
	}
	jobs := make(chan job, workers*4)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var ev event.Event
			for j := range jobs {
				var r Reader
				var err error
				if j.chunk >= 0 {
					r, err = j.file.chunkReader(j.chunk)
				} else {
					r, err = Open(j.path)
				}
				if err != nil {
					report(locate(j.path, err))
				} else {
					drainTo(r, &ev, func(ev *event.Event) { fn(w, ev) }, report)
					r.Close()
				}
				if j.file != nil {
					j.file.done()
				}
			}
		}(w)
	}

	for _, p := range paths {
		var files []string
		if p == "-" {
			files = []string{p}
		} else if st, err := os.Stat(p); err != nil {
			report(locate(p, err))
			continue
		} else if st.IsDir() {
			fs, err := Files(p)
			if err != nil {
				report(locate(p, err))
			}
			files = fs
		} else {
			files = []string{p}
		}
		for _, f := range files {
			k := KindUnknown
			if f != "-" {
				k, _ = Detect(f)
			}
			if k != KindEVTX {
				jobs <- job{path: f, chunk: -1}
				continue
			}
			ef, n, err := openEVTXFile(f)
			if err != nil {
				report(locate(f, err))
				continue
			}
			if n == 0 {
				ef.close()
				continue
			}
			ef.pending.Add(int64(n))
			for c := 0; c < n; c++ {
				jobs <- job{path: f, chunk: c, file: ef}
			}
		}
	}
	close(jobs)
	wg.Wait()
}

func locate(path string, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return &Error{File: path, Chunk: -1, Err: err}
}

func drainTo(r Reader, ev *event.Event, fn func(*event.Event), report func(error)) {
	for {
		err := r.Next(ev)
		if err == io.EOF {
			return
		}
		if err != nil {
			report(err)
			continue
		}
		fn(ev)
	}
}

// evtxFile is an EVTX file shared by the workers decoding its chunks; the last one
// to finish closes it.
type evtxFile struct {
	name    string
	f       *os.File
	size    int64
	pending refCount
}

type refCount struct {
	mu sync.Mutex
	n  int64
}

func (c *refCount) Add(d int64) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n += d
	return c.n
}

func openEVTXFile(path string) (*evtxFile, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	// Validate the header once; chunk readers re-read it cheaply.
	r, err := NewEVTXReader(path, f, st.Size())
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	n := r.nchunks
	r.Close()
	return &evtxFile{name: path, f: f, size: st.Size()}, n, nil
}

func (e *evtxFile) chunkReader(i int) (Reader, error) {
	r, err := NewEVTXReader(e.name, e.f, e.size)
	if err != nil {
		return nil, err
	}
	r.chunk = i - 1
	r.nchunks = i + 1
	return r, nil
}

func (e *evtxFile) done() {
	if e.pending.Add(-1) == 0 {
		e.close()
	}
}

func (e *evtxFile) close() { e.f.Close() }

// EVTXFile is an EVTX file whose chunks are read independently, so that one large log
// is decoded by several goroutines. Each chunk must be read once, by Chunk; the file
// closes when every chunk's reader has been closed.
type EVTXFile struct {
	f *evtxFile
	n int
}

// OpenEVTXFile opens path and checks its header.
func OpenEVTXFile(path string) (*EVTXFile, error) {
	f, n, err := openEVTXFile(path)
	if err != nil {
		return nil, locate(path, err)
	}
	f.pending.Add(int64(n))
	if n == 0 {
		f.close()
	}
	return &EVTXFile{f: f, n: n}, nil
}

// Chunks is the number of chunks (preallocated empty ones included).
func (e *EVTXFile) Chunks() int { return e.n }

// Chunk returns a reader over chunk i; its errors locate the chunk in the file.
func (e *EVTXFile) Chunk(i int) (Reader, error) {
	r, err := e.f.chunkReader(i)
	if err != nil {
		e.f.done()
		return nil, err
	}
	return &ownedChunk{Reader: r, f: e.f}, nil
}

type ownedChunk struct {
	Reader
	f    *evtxFile
	done bool
}

func (c *ownedChunk) Close() error {
	err := c.Reader.Close()
	if !c.done {
		c.done = true
		c.f.done()
	}
	return err
}
