package logread

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/ruledex/ruledex/event"
)

// EVTX layout: a 4 KiB file header ("ElfFile\0"), then 64 KiB chunks ("ElfChnk\0"),
// each holding its own string and template tables and a run of records from offset
// 512. Chunks are independent, which is what makes per-chunk recovery (and parallel
// decoding) possible.
const (
	fileMagic     = "ElfFile\x00"
	chunkMagic    = "ElfChnk\x00"
	chunkSize     = 0x10000
	chunkHdrSize  = 0x200
	recordHdrSize = 24
)

// EVTXReader reads the records of one EVTX file in order.
type EVTXReader struct {
	name   string
	r      io.ReaderAt
	closer io.Closer
	size   int64
	first  int64 // offset of the first chunk

	chunk    int // index of the chunk in buf
	nchunks  int
	buf      []byte
	have     int // valid bytes in buf
	pos      int // next record offset within buf
	limit    int // end of records within buf
	loaded   bool
	done     bool
	dec      *chunkDec
	s        *sink
	pending  error
	chunkErr bool // the current chunk has failed; skip to the next
	state    *decoderState
}

// OpenEVTX opens an EVTX file.
func OpenEVTX(path string) (*EVTXReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	r, err := NewEVTXReader(path, f, st.Size())
	if err != nil {
		f.Close()
		return nil, err
	}
	r.closer = f
	return r, nil
}

// NewEVTXReader reads EVTX from r (size bytes); name is used in errors and events.
func NewEVTXReader(name string, r io.ReaderAt, size int64) (*EVTXReader, error) {
	var hdr [128]byte
	if _, err := r.ReadAt(hdr[:], 0); err != nil {
		return nil, &Error{File: name, Chunk: -1, Err: fmt.Errorf("file header: %w", err)}
	}
	if string(hdr[:8]) != fileMagic {
		return nil, &Error{File: name, Chunk: -1, Err: errors.New("not an EVTX file (no ElfFile signature)")}
	}
	first := int64(binary.LittleEndian.Uint16(hdr[40:]))
	if first < 128 || first > 0x10000 {
		first = 0x1000
	}
	n := 0
	if size > first {
		n = int((size - first + chunkSize - 1) / chunkSize)
	}
	st := decoders.Get().(*decoderState)
	return &EVTXReader{name: name, r: r, size: size, first: first, nchunks: n, chunk: -1,
		buf: st.buf, s: st.s, dec: st.dec, state: st}, nil
}

// decoderState is the per-file working memory (chunk buffer, interned names, template
// cache), pooled because hunting a folder opens thousands of small files.
type decoderState struct {
	buf []byte
	s   *sink
	dec *chunkDec
}

var decoders = sync.Pool{New: func() any {
	s := newSink()
	return &decoderState{buf: make([]byte, chunkSize), s: s, dec: newChunkDec(s)}
}}

// Close closes the underlying file when the reader opened it. Events read from r must
// not be used after Close.
func (r *EVTXReader) Close() error {
	if r.state != nil {
		decoders.Put(r.state)
		r.state = nil
		r.buf, r.s, r.dec = nil, nil, nil
		r.done = true
	}
	if r.closer != nil {
		return r.closer.Close()
	}
	return nil
}

// Next reads the next record into ev. It returns io.EOF at the end; any other error
// is an *Error locating a bad chunk or record, after which Next continues with the
// next record or chunk.
func (r *EVTXReader) Next(ev *event.Event) error {
	if r.done {
		return io.EOF
	}
	for {
		if !r.loaded || r.chunkErr || r.pos >= r.limit {
			if err := r.nextChunk(); err != nil {
				return err
			}
			continue
		}
		err := r.record(ev)
		if err != nil {
			return err
		}
		return nil
	}
}

// nextChunk loads the next chunk that holds records.
func (r *EVTXReader) nextChunk() error {
	for {
		r.loaded = false
		r.chunkErr = false
		r.chunk++
		if r.chunk >= r.nchunks {
			return io.EOF
		}
		off := r.first + int64(r.chunk)*chunkSize
		n, err := r.r.ReadAt(r.buf, off)
		if err != nil && err != io.EOF {
			return r.chunkError(fmt.Errorf("read: %w", err))
		}
		r.have = n
		b := r.buf[:n]
		if n < chunkHdrSize {
			if allZero(b) {
				continue
			}
			return r.chunkError(fmt.Errorf("truncated chunk: %d of %d bytes", n, chunkSize))
		}
		if string(b[:8]) != chunkMagic {
			if allZero(b) {
				continue // unused, preallocated chunk
			}
			// A zeroed or overwritten header over records: say so, or a file whose
			// first chunk is damaged reads as empty without a word.
			return r.chunkError(errors.New("bad chunk signature (chunk holds data)"))
		}
		free := int(binary.LittleEndian.Uint32(b[48:]))
		if free < chunkHdrSize || free > chunkSize {
			free = chunkSize
		}
		r.limit = free
		r.pos = chunkHdrSize
		r.dec.reset(b)
		r.loaded = true
		if n < chunkSize {
			r.limit = min(free, n)
			if n < free {
				// Decode what is there; the record cut short reports the truncation.
				r.pending = r.chunkError(fmt.Errorf("truncated chunk: %d of %d bytes", n, chunkSize))
				r.limit = free
			}
		}
		return nil
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func (r *EVTXReader) chunkError(err error) error {
	return &Error{File: r.name, Chunk: r.chunk, Offset: r.first + int64(r.chunk)*chunkSize, Err: err}
}

// record decodes the record at r.pos.
func (r *EVTXReader) record(ev *event.Event) error {
	b := r.buf[:r.have]
	start := r.pos
	chunkOff := r.first + int64(r.chunk)*chunkSize
	if start+recordHdrSize > len(b) {
		r.chunkErr = true
		if r.pending != nil {
			err := r.pending
			r.pending = nil
			return err
		}
		return &Error{File: r.name, Chunk: r.chunk, Offset: chunkOff + int64(start), Err: errors.New("record header cut short")}
	}
	if !bytes.Equal(b[start:start+4], []byte{0x2a, 0x2a, 0, 0}) {
		r.chunkErr = true
		if allZero(b[start : start+4]) {
			// Free space of a chunk whose free-space offset was wrong.
			return r.Next(ev)
		}
		return &Error{File: r.name, Chunk: r.chunk, Offset: chunkOff + int64(start), Err: errors.New("bad record signature")}
	}
	size := int(binary.LittleEndian.Uint32(b[start+4:]))
	id := int64(binary.LittleEndian.Uint64(b[start+8:]))
	if size < recordHdrSize+4 || start+size > chunkSize {
		r.chunkErr = true
		return &Error{File: r.name, Chunk: r.chunk, Record: id, Offset: chunkOff + int64(start), Err: fmt.Errorf("bad record size %d", size)}
	}
	if start+size > len(b) {
		r.chunkErr = true
		err := r.pending
		r.pending = nil
		if err == nil {
			err = r.chunkError(errors.New("truncated"))
		}
		var e *Error
		if errors.As(err, &e) {
			e.Record = id
			e.Offset = chunkOff + int64(start)
		}
		return err
	}
	r.pos = start + size
	ev.Reset()
	ev.File = r.name
	ev.Offset = id
	r.s.begin(ev)
	r.dec.vals = r.dec.vals[:0]
	r.dec.scratch = r.dec.scratch[:0]
	r.dec.depth = 0
	r.dec.budget = recordBudget
	err := r.dec.fragment(start+recordHdrSize, start+size-4)
	r.s.end()
	if err != nil {
		return &Error{File: r.name, Chunk: r.chunk, Record: id, Offset: chunkOff + int64(start), Err: err}
	}
	return nil
}
