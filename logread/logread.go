// Package logread reads Windows event logs (EVTX, evtx_dump-style JSON, JSON lines)
// into flat event.Event records for the hunting engine.
//
// Readers reuse the Event and its strings between records: a consumer that keeps
// anything after the next call to Next must copy it. Errors from Next other than
// io.EOF are *Error values locating a bad chunk, record or JSON value; reading goes
// on with the next one, so a damaged file never stops a batch:
//
//	r, err := logread.Open(path)
//	...
//	var ev event.Event
//	for {
//		err := r.Next(&ev)
//		if err == io.EOF {
//			break
//		}
//		if err != nil {
//			log.Print(err) // located, non-fatal
//			continue
//		}
//		match(&ev)
//	}
package logread

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ruledex/ruledex/event"
)

// Reader yields events.
type Reader interface {
	// Next fills ev with the next record. io.EOF ends the stream; an *Error is
	// non-fatal and the next call continues after the bad part.
	Next(ev *event.Event) error
	Close() error
}

// Error locates a problem in an input. Fields that do not apply are zero (Chunk -1
// for errors outside chunks).
type Error struct {
	File   string
	Chunk  int   // EVTX chunk index, -1 when not in a chunk
	Record int64 // EVTX record id when known
	Offset int64 // byte offset in the file (EVTX: of the chunk or record)
	Line   int   // JSON: 1-based line of the offending value
	Err    error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Chunk >= 0 && e.Line == 0 {
		fmt.Fprintf(&b, ": chunk %d", e.Chunk)
		if e.Record > 0 {
			fmt.Fprintf(&b, " record %d", e.Record)
		}
	}
	fmt.Fprintf(&b, " (offset %d): %v", e.Offset, e.Err)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Kind is an input format.
type Kind int

const (
	KindUnknown Kind = iota
	KindEVTX
	KindJSON // evtx_dump-style objects, arrays or JSON lines; detected per value
)

// Detect tells the format of a file from its extension, else from its first bytes.
func Detect(path string) (Kind, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".evtx":
		return KindEVTX, nil
	case ".json", ".jsonl", ".ndjson":
		return KindJSON, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return KindUnknown, err
	}
	defer f.Close()
	return sniff(bufio.NewReader(f))
}

func sniff(br *bufio.Reader) (Kind, error) {
	head, err := br.Peek(8)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return KindUnknown, err
	}
	if string(head) == fileMagic {
		return KindEVTX, nil
	}
	for i := 0; ; i++ {
		b, err := br.Peek(i + 1)
		if err != nil || len(b) <= i {
			return KindUnknown, nil
		}
		switch b[i] {
		case ' ', '\t', '\r', '\n', 0xef, 0xbb, 0xbf:
			continue
		case '{', '[':
			return KindJSON, nil
		}
		return KindUnknown, nil
	}
}

// Open opens a file, a folder (walked for .evtx, .json, .jsonl and .ndjson files in
// lexical order) or "-" for standard input (JSON).
func Open(path string) (Reader, error) {
	if path == "-" {
		return NewJSONReader("-", os.Stdin), nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		files, err := Files(path)
		if err != nil {
			return nil, err
		}
		return &multiReader{files: files}, nil
	}
	return openFile(path)
}

// OpenAll reads several paths (files, folders, "-") in turn.
func OpenAll(paths ...string) Reader {
	return &multiReader{files: paths, expand: true}
}

func openFile(path string) (Reader, error) {
	k, err := Detect(path)
	if err != nil {
		return nil, err
	}
	switch k {
	case KindEVTX:
		return OpenEVTX(path)
	case KindJSON:
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		r := NewJSONReader(path, f)
		r.closer = f
		return r, nil
	}
	return nil, &Error{File: path, Chunk: -1, Err: errors.New("unknown format (want EVTX or JSON)")}
}

// Files lists the event files under dir in lexical order. Symbolic links to files and
// folders are followed (log folders are often links to a mounted share); a folder
// reached again through a link is not walked twice, so link loops end.
func Files(dir string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	var errs []error
	var walk func(root string)
	walk = func(root string) {
		if real, err := filepath.EvalSymlinks(root); err == nil {
			if seen[real] {
				return
			}
			seen[real] = true
		}
		start := root
		if st, err := os.Lstat(root); err == nil && st.Mode()&fs.ModeSymlink != 0 {
			start = root + string(filepath.Separator) // WalkDir does not follow a link root
		}
		err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				errs = append(errs, err)
				if d != nil && d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.Type()&fs.ModeSymlink != 0 || (p == start && !d.IsDir()) {
				st, err := os.Stat(p)
				if err != nil {
					errs = append(errs, err)
					return nil
				}
				if st.IsDir() {
					walk(p)
					return nil
				}
			} else if d.IsDir() {
				if real, err := filepath.EvalSymlinks(p); err == nil && p != start {
					if seen[real] {
						return filepath.SkipDir
					}
					seen[real] = true
				}
				return nil
			}
			switch strings.ToLower(filepath.Ext(p)) {
			case ".evtx", ".json", ".jsonl", ".ndjson":
				out = append(out, p)
			}
			return nil
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	walk(dir)
	sort.Strings(out)
	return out, errors.Join(errs...)
}

// multiReader reads files one after another; a file that cannot be opened is reported
// as a located error and skipped.
type multiReader struct {
	files  []string
	expand bool // entries may be folders or "-"
	cur    Reader
	i      int
}

func (m *multiReader) Next(ev *event.Event) error {
	for {
		if m.cur == nil {
			if m.i >= len(m.files) {
				return io.EOF
			}
			p := m.files[m.i]
			m.i++
			var r Reader
			var err error
			if m.expand {
				r, err = Open(p)
			} else {
				r, err = openFile(p)
			}
			if err != nil {
				var e *Error
				if errors.As(err, &e) {
					return err
				}
				return &Error{File: p, Chunk: -1, Err: err}
			}
			m.cur = r
		}
		err := m.cur.Next(ev)
		if err == io.EOF {
			m.cur.Close()
			m.cur = nil
			continue
		}
		return err
	}
}

func (m *multiReader) Close() error {
	if m.cur != nil {
		return m.cur.Close()
	}
	return nil
}
