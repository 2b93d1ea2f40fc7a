package logread

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/ruledex/ruledex/event"
)

// drain reads r to the end, checking that every error is located and that the reader
// makes progress (a bounded number of calls per input byte).
func drain(t *testing.T, r Reader, size int) {
	var ev event.Event
	for n := 0; ; n++ {
		if n > 4*size+100 {
			t.Fatalf("no progress after %d calls on %d bytes", n, size)
		}
		err := r.Next(&ev)
		if err == io.EOF {
			return
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("unlocated error %T: %v", err, err)
			}
		}
	}
}

// FuzzEVTX feeds damaged chunks to the EVTX reader. Seeds are real chunks (the
// mdecrevoisier samples and a few regression files), each behind a real file header.
func FuzzEVTX(f *testing.F) {
	seeds := mdecrevoisier(f)
	cases := regressionCases(f)
	for i := 0; i < len(cases); i += 20 {
		seeds = append(seeds, cases[i])
	}
	var hdr []byte
	for _, p := range seeds {
		h, cs := chunksOf(f, p)
		hdr = h
		for _, c := range cs {
			free := int(uint32(c[48]) | uint32(c[49])<<8 | uint32(c[50])<<16 | uint32(c[51])<<24)
			if free < chunkHdrSize || free > len(c) {
				free = len(c)
			}
			// Only the used part: the fuzzer mutates what matters.
			f.Add(bytes.Clone(c[:free]))
		}
	}
	f.Fuzz(func(t *testing.T, chunk []byte) {
		data := append(bytes.Clone(hdr), chunk...)
		if len(chunk) < chunkSize {
			data = append(data, make([]byte, chunkSize-len(chunk))...)
		}
		r, err := NewEVTXReader("fuzz.evtx", bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		drain(t, r, len(data)/recordHdrSize)
	})
}

// FuzzJSON feeds JSON event streams to the JSON reader; seeds are regression exports
// and hand-written JSON lines.
func FuzzJSON(f *testing.F) {
	for i, c := range regressionCases(f) {
		if i%10 != 0 {
			continue
		}
		b, err := os.ReadFile(strings.TrimSuffix(c, ".evtx") + ".json")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("{\"EventID\":4688,\"NewProcessName\":\"C:\\\\x.exe\"}\n{\"Event.EventData.Image\":\"a\"}\n"))
	f.Add([]byte(`[{"Event":{"System":{"EventID":1}}},{"a":[1,{"b":null}]}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		drain(t, NewJSONReader("fuzz.json", bytes.NewReader(b)), len(b))
	})
}
