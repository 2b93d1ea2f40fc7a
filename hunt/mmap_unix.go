//go:build unix

package hunt

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sync/atomic"
	"syscall"

	"github.com/ruledex/ruledex/event"
	"github.com/ruledex/ruledex/logread"
)

// mapParts splits a regular file of JSON lines into the parts jsonParts would make
// (same boundaries, same line numbers), reading it through one read-only mapping
// instead of read(2) into batch buffers. Read copied every byte in the kernel and
// faulted in fresh buffer pages; mapped, the workers decode the page cache in place:
// a 200,000-event hunt took 3% less CPU and 5% less time.
//
// It reports false, having read nothing, when it does not apply: not a regular
// file, empty, not JSON lines, or a mapping refused (some filesystems); the caller
// then reads the file.
//
// A file truncated while it is mapped makes reads beyond its new end fault; the
// faults become the located error "changed while it was read", never a crash.
func mapParts(path string, fh *os.File, send func(Part) bool) (ok bool, err error) {
	st, err := fh.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Size() == 0 || st.Size() != int64(int(st.Size())) {
		return false, nil
	}
	data, err := syscall.Mmap(int(fh.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return false, nil
	}
	m := &mapping{data: data}
	m.refs.Store(1) // the splitter's, released on return
	defer m.release()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() { asFault(recover(), path, &err) }()

	// The first non-blank line decides, as firstLine and isJSONLine do for a stream.
	end := 0
	for end < len(data) {
		from := end
		nl := bytes.IndexByte(data[end:], '\n')
		if nl < 0 {
			end = len(data)
			break
		}
		end += nl + 1
		if len(bytes.TrimSpace(data[from:end])) > 0 {
			break
		}
	}
	if !isJSONLine(data[:end]) {
		return false, nil
	}
	line := 0
	for start := 0; start < len(data); {
		end := len(data)
		if n := partEnd(data[start:]); n >= 0 {
			end = start + n
		}
		b, off := data[start:end:end], start
		base := line
		line += bytes.Count(b, []byte{'\n'})
		m.refs.Add(1)
		if !send(Part{Line: base, Open: func() (logread.Reader, error) {
			return &mappedPart{r: logread.NewJSONBytesReader(path, b), m: m, off: off, n: len(b), name: path}, nil
		}}) {
			m.release()
			return true, nil
		}
		start = end
	}
	return true, nil
}

// mapping is a file mapped once, unmapped when its splitter and every part are done.
type mapping struct {
	data []byte
	refs atomic.Int32
}

func (m *mapping) release() {
	if m.refs.Add(-1) == 0 {
		syscall.Munmap(m.data)
	}
}

// mappedPart reads one part of a mapping.
type mappedPart struct {
	r      *logread.JSONReader
	m      *mapping
	off, n int // the part's bytes in the mapping
	name   string
	failed bool
}

func (p *mappedPart) Next(ev *event.Event) (err error) {
	if p.failed {
		return io.EOF
	}
	// The decoded event holds copies (the reader's arena), so a fault can only happen
	// here, while the mapping is read.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if asFault(recover(), p.name, &err) {
			p.failed = true
		}
	}()
	return p.r.Next(ev)
}

func (p *mappedPart) Close() error {
	if p.m == nil {
		return nil
	}
	err := p.r.Close()
	// The part's pages leave the process (not the page cache): a hunt over a large
	// file would otherwise keep all of it resident until its last part. Pages shared
	// with a neighbouring part stay until the mapping goes.
	page := os.Getpagesize()
	lo, hi := (p.off+page-1)/page*page, (p.off+p.n)/page*page
	if hi > lo {
		syscall.Madvise(p.m.data[lo:hi], syscall.MADV_DONTNEED)
	}
	p.m.release()
	p.m = nil
	return err
}

// asFault turns the value a memory fault panics with (after SetPanicOnFault(true))
// into *errp and reports true; nil reports false, and other panics go on.
func asFault(r any, name string, errp *error) bool {
	if r == nil {
		return false
	}
	if f, ok := r.(interface{ Addr() uintptr }); ok {
		*errp = fmt.Errorf("%s: the file changed while it was read (truncated?): fault at %#x", name, f.Addr())
		return true
	}
	panic(r)
}
