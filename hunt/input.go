package hunt

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"

	"github.com/ruledex/ruledex/logread"
)

// Part is a piece of an input that decodes on its own: an EVTX chunk, a batch of JSON
// lines, or a whole JSON document. Parts of one input are matched in parallel and
// their output is put back in order.
type Part struct {
	// Open returns a reader over the part; the pipeline closes it.
	Open func() (logread.Reader, error)
	// Line is added to the line numbers of the part's errors (a batch of JSON lines
	// starting at line Line+1 of its input).
	Line int
}

// Input is a source of events: a file, standard input, later a Kafka consumer group.
type Input interface {
	// Name names the input in messages and in the file column of matches.
	Name() string
	// Parts calls send with the input's parts in order, and stops early when send
	// returns false. An error means the input could not be read (at all, or from some
	// point on).
	Parts(send func(Part) bool) error
}

// batchBytes is the size of a JSON-lines batch: large enough that per-part costs
// vanish, small enough that two cores share a 100 MB file evenly and that memory held
// by in-flight parts stays small.
const batchBytes = 1 << 20

// FileInput reads an EVTX or JSON file.
type FileInput string

func (f FileInput) Name() string { return string(f) }

func (f FileInput) Parts(send func(Part) bool) error {
	path := string(f)
	k, err := logread.Detect(path)
	if err != nil {
		return err
	}
	switch k {
	case logread.KindEVTX:
		ef, err := logread.OpenEVTXFile(path)
		if err != nil {
			return err
		}
		for i := 0; i < ef.Chunks(); i++ {
			i := i
			if !send(Part{Open: func() (logread.Reader, error) { return ef.Chunk(i) }}) {
				// Release the chunks nobody will read, so the file closes.
				for j := i; j < ef.Chunks(); j++ {
					if r, err := ef.Chunk(j); err == nil {
						r.Close()
					}
				}
				return nil
			}
		}
		return nil
	case logread.KindJSON:
		fh, err := os.Open(path)
		if err != nil {
			return err
		}
		defer fh.Close()
		if ok, err := mapParts(path, fh, send); ok || err != nil {
			return err
		}
		return jsonParts(path, fh, func() (io.ReadCloser, error) { return os.Open(path) }, send)
	}
	return fmt.Errorf("%s: unknown format (want EVTX or JSON)", path)
}

// StdinInput reads JSON from an io.Reader (standard input).
type StdinInput struct {
	R io.Reader
}

func (StdinInput) Name() string { return "-" }

func (s StdinInput) Parts(send func(Part) bool) error {
	return jsonParts("-", s.R, nil, send)
}

// jsonParts splits JSON lines into batches of whole lines. Anything else (one
// evtx_dump document, an array, pretty-printed objects) is one part: the JSON reader
// needs all of it. reopen, when set, reads the whole input again for that case;
// otherwise the part continues from r.
//
// Batches are read straight into pooled buffers, and the workers decode them in place
// (logread.NewJSONBytesReader): the bytes of a large file are copied once, by read.
func jsonParts(name string, r io.Reader, reopen func() (io.ReadCloser, error), send func(Part) bool) error {
	br := bufio.NewReaderSize(r, 64<<10)
	first, err := firstLine(br)
	if err != nil && err != io.EOF {
		return err
	}
	if !isJSONLine(first) {
		var src io.Reader = io.MultiReader(bytes.NewReader(first), br)
		send(Part{Open: func() (logread.Reader, error) {
			if reopen != nil {
				rc, err := reopen()
				if err != nil {
					return nil, err
				}
				return &closing{logread.NewJSONReader(name, rc), rc}, nil
			}
			return logread.NewJSONReader(name, src), nil
		}})
		return nil
	}
	line := 0
	batch := append(getBatch(), first...)
	// Empty what bufio buffered, then read directly into the batches.
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		batch = append(batch, b...)
		br.Discard(n)
	}
	send1 := func(b []byte) bool {
		base := line
		line += bytes.Count(b, []byte{'\n'})
		return send(Part{Line: base, Open: func() (logread.Reader, error) {
			return &pooled{Reader: logread.NewJSONBytesReader(name, b), b: b}, nil
		}})
	}
	// One read can bring several parts (into a large pooled buffer): cut cuts all of
	// them, and reports false when the receiver stopped.
	cut := func() bool {
		for {
			end := partEnd(batch)
			if end < 0 {
				return true
			}
			next := append(getBatch(), batch[end:]...)
			if !send1(batch[:end]) {
				batches.Put(next[:0])
				return false
			}
			batch = next
		}
	}
	for {
		if !cut() {
			return nil
		}
		if cap(batch)-len(batch) < 64<<10 {
			// A line longer than a batch: grow (doubling) until it ends.
			batch = slices.Grow(batch, max(batchBytes, len(batch)))
		}
		n, err := r.Read(batch[len(batch):cap(batch)])
		batch = batch[:len(batch)+n]
		if err != nil {
			if !cut() {
				return nil
			}
			var ok bool
			if len(batch) > 0 {
				ok = send1(batch)
			} else {
				batches.Put(batch[:0])
			}
			if err == io.EOF || !ok {
				return nil
			}
			return err
		}
	}
}

// partEnd is where the part at the start of b ends: after the first line that reaches
// batchBytes, wherever reads happen to stop, so that the parts, and the order of
// matches within them, depend only on the input; -1 when b holds no such line yet.
func partEnd(b []byte) int {
	if len(b) < batchBytes {
		return -1
	}
	nl := bytes.IndexByte(b[batchBytes-1:], '\n')
	if nl < 0 {
		return -1
	}
	return batchBytes + nl
}

// firstLine reads up to and including the first newline that ends a non-blank line.
// Only the line being read is tested for blankness: testing all that was read made
// a file of a million blank lines take minutes.
func firstLine(br *bufio.Reader) ([]byte, error) {
	var out []byte
	blank := true // the current line so far
	for {
		chunk, err := br.ReadSlice('\n')
		out = append(out, chunk...)
		blank = blank && len(bytes.TrimSpace(chunk)) == 0
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil || !blank {
			return out, err
		}
		blank = true
	}
}

// isJSONLine tells a first line that is a whole JSON object: the input is JSON lines.
func isJSONLine(b []byte) bool {
	b = bytes.TrimSpace(bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")))
	return len(b) > 1 && b[0] == '{' && b[len(b)-1] == '}' && json.Valid(b)
}

// batches recycles JSON-lines batch buffers: a fresh 1 MiB buffer per batch is
// zeroed by the runtime, which costed more than decoding some batches.
var batches = sync.Pool{New: func() any { return make([]byte, 0, batchBytes+64<<10) }}

func getBatch() []byte { return batches.Get().([]byte)[:0] }

// pooled returns its batch to the pool when the part is done.
type pooled struct {
	logread.Reader
	b []byte
}

func (p *pooled) Close() error {
	err := p.Reader.Close()
	if p.b != nil && cap(p.b) <= 4*batchBytes {
		batches.Put(p.b[:0])
	}
	p.b = nil
	return err
}

type closing struct {
	logread.Reader
	c io.Closer
}

func (c *closing) Close() error {
	return errors.Join(c.Reader.Close(), c.c.Close())
}

// Expand turns command-line EVENTS into inputs: "-" is standard input, a folder its
// event files (symbolic links followed, see logread.Files), a file itself. Paths that
// cannot be read are returned in bad with the reason.
func Expand(args []string, stdin io.Reader) (inputs []Input, bad []error) {
	for _, a := range args {
		if a == "-" {
			inputs = append(inputs, StdinInput{R: stdin})
			continue
		}
		st, err := os.Stat(a)
		if err != nil {
			bad = append(bad, err)
			continue
		}
		if !st.IsDir() {
			inputs = append(inputs, FileInput(a))
			continue
		}
		files, err := logread.Files(a)
		if err != nil {
			bad = append(bad, fmt.Errorf("%s: %w", a, err))
		}
		if len(files) == 0 {
			bad = append(bad, fmt.Errorf("%s: no .evtx, .json, .jsonl or .ndjson file in this folder", a))
		}
		for _, f := range files {
			inputs = append(inputs, FileInput(f))
		}
	}
	return inputs, bad
}
