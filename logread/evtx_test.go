package logread

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/ruledex/ruledex/event"
	"github.com/ruledex/ruledex/internal/corpustest"
)

func mdecrevoisier(t testing.TB) []string {
	files, err := Files(corpustest.Path(t, "evtx", "mdecrevoisier"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no mdecrevoisier EVTX samples")
	}
	return files
}

// TestMdecrevoisierClean: the sample logs read without errors and every record has
// the System fields rules route on.
func TestMdecrevoisierClean(t *testing.T) {
	for _, f := range mdecrevoisier(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			evs, errs := readAll(t, f)
			for _, e := range errs {
				t.Errorf("%v", e)
			}
			if len(evs) == 0 {
				t.Fatal("no events")
			}
			for i, fs := range evs {
				ev := event.Event{Fields: fs}
				for _, name := range []string{"EventID", "Channel", "Computer", "Provider_Name", "TimeCreated", "EventRecordID", "Level"} {
					if v, ok := ev.Get(name); !ok || v == "" {
						t.Errorf("event %d: no %s", i, name)
					}
				}
			}
		})
	}
}

// TestSeedEvent checks the fields of the first record of the seed rule's sample
// against what Event Viewer shows for it.
func TestSeedEvent(t *testing.T) {
	path := corpustest.Path(t, "evtx", "mdecrevoisier", "TA0003-Persistence", "T1197-BITS jobs", "ID4688-BITS transfer initiated.evtx")
	evs, errs := readAll(t, path)
	if len(errs) > 0 || len(evs) == 0 {
		t.Fatalf("events %d, errors %v", len(evs), errs)
	}
	ev := event.Event{Fields: evs[0]}
	want := []event.Field{
		{Name: "Provider_Name", Value: "Microsoft-Windows-Security-Auditing"},
		{Name: "EventID", Value: "4688"},
		{Name: "Channel", Value: "Security"},
		{Name: "Computer", Value: "jump01.offsec.lan"},
		{Name: "Keywords", Value: "0x8020000000000000"},
		{Name: "TimeCreated", Value: "2021-02-22T23:07:20.794383Z"},
		{Name: "EventRecordID", Value: "8528057"},
		{Name: "ProcessID", Value: "4"},
		{Name: "SubjectUserSid", Value: "S-1-5-21-4230534742-2542757381-3142984815-1111"},
		{Name: "SubjectLogonId", Value: "0x92e21"},
		{Name: "NewProcessName", Value: `C:\Windows\System32\bitsadmin.exe`},
		{Name: "TokenElevationType", Value: "%%1937"},
		{Name: "ProcessId", Value: "0x1ff8"},
		{Name: "CommandLine", Value: `bitsadmin  /transfer hackingarticles https://www.ma-neobanque.com/wp-content/uploads/2020/11/carte-max-premium.jpg c:\ignite.png`},
		{Name: "ParentProcessName", Value: `C:\Windows\System32\cmd.exe`},
		{Name: "MandatoryLabel", Value: "S-1-16-12288"},
	}
	for _, w := range want {
		if got, ok := ev.Get(w.Name); !ok || got != w.Value {
			t.Errorf("%s = %q (present %v), want %q", w.Name, got, ok, w.Value)
		}
	}
}

// chunksOf returns the header and the chunks of an EVTX file.
func chunksOf(t testing.TB, path string) ([]byte, [][]byte) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	first := int(binary.LittleEndian.Uint16(b[40:]))
	var chunks [][]byte
	for off := first; off+chunkSize <= len(b); off += chunkSize {
		chunks = append(chunks, b[off:off+chunkSize])
	}
	return b[:first], chunks
}

// multiChunk builds a file of several real chunks (chunks are self-contained, so the
// chunks of different logs concatenate into a valid log).
func multiChunk(t testing.TB, paths []string) (hdr []byte, chunks [][]byte) {
	for i, p := range paths {
		h, cs := chunksOf(t, p)
		if i == 0 {
			hdr = h
		}
		chunks = append(chunks, cs...)
	}
	return hdr, chunks
}

func writeFile(t testing.TB, dir, name string, parts ...[]byte) string {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, bytes.Join(parts, nil), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCorruptEVTX: damaged copies give located errors, never panics, and the
// undamaged chunks still yield their events.
func TestCorruptEVTX(t *testing.T) {
	files := mdecrevoisier(t)
	hdr, chunks := multiChunk(t, files)
	var perChunk []int
	for _, c := range chunks {
		evs, errs := readAll(t, writeFile(t, t.TempDir(), "one.evtx", hdr, c))
		if len(errs) > 0 {
			t.Fatalf("clean chunk: %v", errs)
		}
		perChunk = append(perChunk, len(evs))
	}
	total := 0
	for _, n := range perChunk {
		total += n
	}
	dir := t.TempDir()
	clone := func() [][]byte {
		out := make([][]byte, len(chunks))
		for i, c := range chunks {
			out[i] = bytes.Clone(c)
		}
		return out
	}
	firstRecordSize := func(c []byte) int { return int(binary.LittleEndian.Uint32(c[chunkHdrSize+4:])) }

	tests := []struct {
		name     string
		file     func() []byte
		wantErr  string // substring of the first error
		chunk    int    // chunk the first error is in
		wantRead int    // events still read
	}{
		{
			name: "truncated in the last chunk",
			file: func() []byte {
				b := bytes.Join(append([][]byte{hdr}, chunks...), nil)
				return b[:len(b)-chunkSize+chunkHdrSize+firstRecordSize(chunks[len(chunks)-1])/2]
			},
			wantErr:  "truncated",
			chunk:    len(chunks) - 1,
			wantRead: total - perChunk[len(chunks)-1],
		},
		{
			name: "bad chunk signature in chunk 1",
			file: func() []byte {
				cs := clone()
				copy(cs[1], "BadChnk\x00")
				return bytes.Join(append([][]byte{hdr}, cs...), nil)
			},
			wantErr:  "bad chunk signature",
			chunk:    1,
			wantRead: total - perChunk[1],
		},
		{
			name: "bad record signature in chunk 0",
			file: func() []byte {
				cs := clone()
				cs[0][chunkHdrSize] = 'X'
				return bytes.Join(append([][]byte{hdr}, cs...), nil)
			},
			wantErr:  "bad record signature",
			chunk:    0,
			wantRead: total - perChunk[0],
		},
		{
			name: "huge record size in chunk 2",
			file: func() []byte {
				cs := clone()
				binary.LittleEndian.PutUint32(cs[2][chunkHdrSize+4:], 1<<30)
				return bytes.Join(append([][]byte{hdr}, cs...), nil)
			},
			wantErr:  "bad record size",
			chunk:    2,
			wantRead: total - perChunk[2],
		},
		{
			name: "template definition offset out of the chunk",
			file: func() []byte {
				cs := clone()
				// Record 0's BinXML: fragment header (4), 0x0c, unknown (1), id (4), def offset (4).
				binary.LittleEndian.PutUint32(cs[3][chunkHdrSize+recordHdrSize+4+6:], 0xfffff0)
				return bytes.Join(append([][]byte{hdr}, cs...), nil)
			},
			wantErr:  "template",
			chunk:    3,
			wantRead: total - 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, dir, strings.ReplaceAll(tc.name, " ", "_")+".evtx", tc.file())
			evs, errs := readAll(t, p)
			if len(errs) == 0 {
				t.Fatalf("no error; %d events", len(evs))
			}
			var e *Error
			errors.As(errs[0], &e)
			if !strings.Contains(e.Error(), tc.wantErr) || e.File != p || e.Chunk != tc.chunk {
				t.Errorf("first error %q (chunk %d), want %q in chunk %d of %s", e, e.Chunk, tc.wantErr, tc.chunk, p)
			}
			if len(evs) != tc.wantRead {
				t.Errorf("read %d events, want %d (errors: %v)", len(evs), tc.wantRead, errs)
			}
		})
	}

	// Random damage: any outcome but a panic or a hang; errors stay located.
	rng := rand.New(rand.NewSource(7))
	whole := bytes.Join(append([][]byte{hdr}, chunks...), nil)
	for i := 0; i < 300; i++ {
		b := bytes.Clone(whole)
		for k := 0; k < 1+rng.Intn(20); k++ {
			b[len(hdr)+rng.Intn(len(b)-len(hdr))] = byte(rng.Intn(256))
		}
		if rng.Intn(3) == 0 {
			b = b[:len(hdr)+rng.Intn(len(b)-len(hdr))]
		}
		readAll(t, writeFile(t, dir, "random.evtx", b))
	}
}

// TestFolderContinues: a broken file in a folder does not stop the others.
func TestFolderContinues(t *testing.T) {
	files := mdecrevoisier(t)
	dir := t.TempDir()
	good, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "a_broken.evtx", []byte("ElfFile\x00 but nothing else"))
	writeFile(t, dir, "b_notevtx.evtx", []byte("plain text"))
	writeFile(t, dir, "c_good.evtx", good)
	writeFile(t, dir, "d_ignored.txt", []byte("ignored"))
	want, _ := readAll(t, files[0])
	evs, errs := readAll(t, dir)
	if len(evs) != len(want) {
		t.Errorf("read %d events, want %d", len(evs), len(want))
	}
	if len(errs) != 2 {
		t.Errorf("errors %v, want two (broken, not EVTX)", errs)
	}
	for _, e := range errs {
		if !strings.Contains(e.Error(), dir) {
			t.Errorf("error %q does not name the file", e)
		}
	}
}

// TestVelocidexAgrees compares our decoder with www.velocidex.com/golang/evtx on the
// System identity fields and string EventData values (velocidex formats hex and
// times differently, see velocidexFields).
func TestVelocidexAgrees(t *testing.T) {
	files := append(mdecrevoisier(t), regressionCases(t)...)
	for _, f := range files {
		ours, errs := readAll(t, f)
		if len(errs) > 0 {
			t.Fatalf("%s: %v", f, errs)
		}
		theirs := velocidexFields(t, f)
		if len(ours) != len(theirs) {
			t.Errorf("%s: %d events, velocidex %d", f, len(ours), len(theirs))
			continue
		}
		for i := range ours {
			if theirs[i] == nil {
				continue
			}
			ev := event.Event{Fields: ours[i]}
			for name, want := range theirs[i] {
				got, ok := ev.Get(name)
				if !ok || (got != want && unbrace(got) != want) {
					t.Errorf("%s event %d: %s = %q, velocidex %q", filepath.Base(f), i, name, got, want)
				}
			}
		}
	}
}

func BenchmarkReadEVTX(b *testing.B) {
	files := append(mdecrevoisier(b), regressionCases(b)...)
	hdr, chunks := multiChunk(b, files)
	data := bytes.Join(append([][]byte{hdr}, chunks...), nil)
	var ev event.Event
	records := 0
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := NewEVTXReader("bench.evtx", bytes.NewReader(data), int64(len(data)))
		if err != nil {
			b.Fatal(err)
		}
		records = 0
		for {
			err := r.Next(&ev)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			records++
		}
	}
	b.ReportMetric(float64(records)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkOpenEVTXFiles reads the sample files one by one through Open, as hunting a
// folder does (per-file costs included).
func BenchmarkOpenEVTXFiles(b *testing.B) {
	files := append(mdecrevoisier(b), regressionCases(b)...)
	var size int64
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			b.Fatal(err)
		}
		size += st.Size()
	}
	b.SetBytes(size)
	b.ReportAllocs()
	var ev event.Event
	for b.Loop() {
		for _, f := range files {
			r, err := Open(f)
			if err != nil {
				b.Fatal(err)
			}
			for r.Next(&ev) == nil {
			}
			r.Close()
		}
	}
}

// BenchmarkDecodeRecordWarm decodes records with their chunk's templates already
// compiled, which is the per-record cost in dense logs (about 100 records share a
// chunk's few templates); the samples hold one or two records per chunk, so
// BenchmarkReadEVTX is dominated by template compilation instead.
func BenchmarkDecodeRecordWarm(b *testing.B) {
	files := append(mdecrevoisier(b), regressionCases(b)...)
	hdr, chunks := multiChunk(b, files)
	data := bytes.Join(append([][]byte{hdr}, chunks...), nil)
	r, err := NewEVTXReader("bench.evtx", bytes.NewReader(data), int64(len(data)))
	if err != nil {
		b.Fatal(err)
	}
	type rec struct {
		chunk, pos, size int
	}
	var recs []rec
	var ev event.Event
	for {
		if err := r.nextChunk(); err != nil {
			break
		}
		for r.pos < r.limit {
			start := r.pos
			if r.record(&ev) != nil {
				break
			}
			recs = append(recs, rec{r.chunk, start, r.pos - start})
		}
	}
	var bytesPerPass int64
	for _, x := range recs {
		bytesPerPass += int64(x.size)
	}
	// Stay on each chunk for 100 decodes (as a dense chunk would), cycling its records.
	byChunk := map[int][]rec{}
	var order []int
	for _, x := range recs {
		if len(byChunk[x.chunk]) == 0 {
			order = append(order, x.chunk)
		}
		byChunk[x.chunk] = append(byChunk[x.chunk], x)
	}
	_ = bytesPerPass
	b.ReportAllocs()
	n := 0
	var decoded int64
	for b.Loop() {
		c := order[(n/100)%len(order)]
		x := byChunk[c][n%len(byChunk[c])]
		n++
		if c != r.chunk {
			r.r.ReadAt(r.buf, r.first+int64(c)*chunkSize)
			r.chunk = c
			r.dec.reset(r.buf)
		}
		r.pos = x.pos
		if err := r.record(&ev); err != nil {
			b.Fatal(err)
		}
		decoded += int64(x.size)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(decoded)/1e6/b.Elapsed().Seconds(), "MB/s")
}

// TestAppendUTF16 compares the decoder with the standard library's UTF-16 decoding.
func TestAppendUTF16(t *testing.T) {
	for _, s := range []string{"", "plain ascii", "C:\\Windows\\System32\\cmd.exe", "é ü ß", "日本語", "emoji 😀 after", "ascii then é", "\x7f\u0080"} {
		var b []byte
		for _, u := range utf16.Encode([]rune(s)) {
			b = append(b, byte(u), byte(u>>8))
		}
		b = append(b, 0, 0) // terminator
		if got := string(appendUTF16([]byte("x"), b)); got != "x"+s {
			t.Errorf("appendUTF16(%q) = %q", s, got)
		}
	}
	// A lone surrogate becomes U+FFFD, as in unicode/utf16.
	if got := string(appendUTF16(nil, []byte{0x00, 0xd8, 'a', 0})); got != "\uFFFDa" {
		t.Errorf("lone surrogate: %q", got)
	}
}
