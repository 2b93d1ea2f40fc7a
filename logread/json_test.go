package logread

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ruledex/ruledex/event"
)

func readJSON(t testing.TB, src string) ([][]event.Field, []*Error) {
	t.Helper()
	r := NewJSONReader("in.json", strings.NewReader(src))
	var out [][]event.Field
	var errs []*Error
	var ev event.Event
	for n := 0; n < 10000; n++ {
		err := r.Next(&ev)
		if err == io.EOF {
			return out, errs
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("unlocated error %v", err)
			}
			errs = append(errs, e)
			continue
		}
		fs := make([]event.Field, len(ev.Fields))
		for i, f := range ev.Fields {
			fs[i] = event.Field{Name: strings.Clone(f.Name), Value: strings.Clone(f.Value)}
		}
		out = append(out, fs)
	}
	t.Fatal("reader does not terminate")
	return nil, nil
}

func fields(kv ...string) []event.Field {
	var out []event.Field
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, event.Field{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

func TestJSONShapes(t *testing.T) {
	nested := `{"Event":{"#attributes":{"xmlns":"x"},"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Security-Auditing"}},"EventID":{"#attributes":{"Qualifiers":0},"#text":4688},"Channel":"Security","Correlation":null,"TimeCreated":{"#attributes":{"SystemTime":"2021-02-22T23:07:20.794383Z"}},"Execution":{"#attributes":{"ProcessID":4,"ThreadID":5656}}},"EventData":{"NewProcessName":"C:\\Windows\\System32\\bitsadmin.exe","Empty":null,"Data":{"#text":["a","b"]}}}}`
	nestedWant := fields("Provider_Name", "Microsoft-Windows-Security-Auditing", "EventID_Qualifiers", "0", "EventID", "4688",
		"Channel", "Security", "TimeCreated", "2021-02-22T23:07:20.794383Z", "ProcessID", "4", "ThreadID", "5656",
		"NewProcessName", `C:\Windows\System32\bitsadmin.exe`, "Empty", "", "Data", "a", "Data", "b")
	tests := []struct {
		name string
		src  string
		want [][]event.Field
		errs []string // "line:substring"
	}{
		{"json lines of flat objects",
			"{\"EventID\":4688,\"NewProcessName\":\"C:\\\\x.exe\",\"Flag\":true,\"N\":null}\n{\"EventID\":1, \"Hashes\":[\"MD5=1\",\"SHA1=2\"]}\n",
			[][]event.Field{fields("EventID", "4688", "NewProcessName", `C:\x.exe`, "Flag", "true", "N", ""), fields("EventID", "1", "Hashes", "MD5=1", "Hashes", "SHA1=2")}, nil},
		{"nested flat object gets dotted names",
			`{"winlog":{"event_id":4688,"event_data":{"CommandLine":"whoami"}}}`,
			[][]event.Field{fields("winlog.event_id", "4688", "winlog.event_data.CommandLine", "whoami")}, nil},
		{"dotted Event names route like the nested form",
			`{"Event.System.EventID":4688,"Event.System.Provider.#attributes.Name":"P","Event.EventData.CommandLine":"whoami","Other":"x"}`,
			[][]event.Field{fields("EventID", "4688", "Provider_Name", "P", "CommandLine", "whoami", "Other", "x")}, nil},
		{"evtx_dump object", nested, [][]event.Field{nestedWant}, nil},
		{"concatenated pretty objects", nested + "\n" + nested, [][]event.Field{nestedWant, nestedWant}, nil},
		{"array of objects", "[\n" + nested + ",\n" + nested + "\n]", [][]event.Field{nestedWant, nestedWant}, nil},
		{"UserData leaves by their own name",
			`{"Event":{"System":{"EventID":1102},"UserData":{"LogFileCleared":{"#attributes":{"xmlns":"u"},"SubjectUserName":"bob","SubjectDomainName":"CORP"}}}}`,
			[][]event.Field{fields("EventID", "1102", "SubjectUserName", "bob", "SubjectDomainName", "CORP")}, nil},
		{"broken line is skipped with its line number",
			"{\"EventID\":1}\n{\"EventID\":2,,}\n{\"EventID\":3}\n",
			[][]event.Field{fields("EventID", "1"), fields("EventID", "3")}, []string{"2:cannot parse"}},
		{"unterminated last line",
			"{\"EventID\":1}\n{\"EventID\":2\n",
			[][]event.Field{fields("EventID", "1")}, []string{"2:unterminated"}},
		{"garbage between values",
			"{\"EventID\":1}\nnot json\n{\"EventID\":3}\n",
			[][]event.Field{fields("EventID", "1"), fields("EventID", "3")}, []string{"2:unexpected"}},
		{"EventData as a list of named Data elements",
			`{"Event":{"System":{"EventID":7045},"EventData":{"Data":[{"#attributes":{"Name":"ServiceName"},"#text":"evil"},{"#attributes":{"Name":"ImagePath"},"#text":"C:\\x.exe"},{"#attributes":{"Name":"Empty"}}]}}}`,
			[][]event.Field{fields("EventID", "7045", "ServiceName", "evil", "ImagePath", `C:\x.exe`, "Empty", "")}, nil},
		{"byte order mark and blank input", "\xef\xbb\xbf\n  \n", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, errs := readJSON(t, tc.src)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if len(errs) != len(tc.errs) {
				t.Fatalf("errors %v, want %v", errs, tc.errs)
			}
			for i, e := range errs {
				line, sub, _ := strings.Cut(tc.errs[i], ":")
				if got := e.Error(); !strings.HasPrefix(got, "in.json:"+line+" ") || !strings.Contains(got, sub) {
					t.Errorf("error %q, want line %s and %q", got, line, sub)
				}
			}
		})
	}
}

// TestJSONLargeInput exercises buffer growth and compaction across reads.
func TestJSONLargeInput(t *testing.T) {
	var b strings.Builder
	long := strings.Repeat("A", 200<<10)
	for i := 0; i < 300; i++ {
		b.WriteString(`{"EventID":4688,"CommandLine":"`)
		if i%100 == 7 {
			b.WriteString(long)
		}
		b.WriteString("x\"}\n")
	}
	got, errs := readJSON(t, b.String())
	if len(got) != 300 || len(errs) != 0 {
		t.Fatalf("%d events, errors %v", len(got), errs)
	}
	if v := got[7][1].Value; len(v) != len(long)+1 {
		t.Errorf("long value has %d bytes", len(v))
	}
}

func TestOpenDispatch(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "events.log") // unknown extension: sniffed
	if err := os.WriteFile(p, []byte(`{"EventID":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	evs, errs := readAll(t, p)
	if len(evs) != 1 || len(errs) != 0 {
		t.Errorf("%d events, errors %v", len(evs), errs)
	}
	q := filepath.Join(dir, "x.bin")
	os.WriteFile(q, []byte("\x00\x01"), 0o644)
	if _, err := Open(q); err == nil || !strings.Contains(err.Error(), "unknown format") {
		t.Errorf("Open(binary) = %v", err)
	}
}

func BenchmarkReadJSON(b *testing.B) {
	var data []byte
	for _, f := range regressionCases(b) {
		j, err := os.ReadFile(strings.TrimSuffix(f, ".evtx") + ".json")
		if err != nil {
			b.Fatal(err)
		}
		data = append(append(data, j...), '\n')
	}
	var ev event.Event
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		r := NewJSONReader("bench.json", strings.NewReader(string(data)))
		n = 0
		for {
			err := r.Next(&ev)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func TestOpenStdin(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdin
	os.Stdin = pr
	defer func() { os.Stdin = old }()
	go func() {
		pw.Write([]byte("{\"EventID\":4688}\n{\"EventID\":4689}\n"))
		pw.Close()
	}()
	evs, errs := readAll(t, "-")
	want := [][]event.Field{fields("EventID", "4688"), fields("EventID", "4689")}
	if diff := cmp.Diff(want, evs); diff != "" || len(errs) > 0 {
		t.Errorf("stdin (-want +got):\n%s\nerrors %v", diff, errs)
	}
}

// drainReader reads r to the end: events (copied) and errors as text.
func drainReader(t *testing.T, r Reader) ([][]event.Field, []string) {
	t.Helper()
	var out [][]event.Field
	var errs []string
	var ev event.Event
	for n := 0; n < 1<<20; n++ {
		err := r.Next(&ev)
		if err == io.EOF {
			return out, errs
		}
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		fs := make([]event.Field, len(ev.Fields))
		for i, f := range ev.Fields {
			fs[i] = event.Field{Name: strings.Clone(f.Name), Value: strings.Clone(f.Value)}
		}
		out = append(out, fs)
	}
	t.Fatal("reader does not terminate")
	return nil, nil
}

// A line holding one object is parsed without the bracket scan. Read one byte at a
// time, the reader never has a whole line ahead and always scans: both must give the
// same events and the same located errors, on the real regression events as JSON
// lines and on lines made to trip a line-based shortcut.
func TestJSONLinesFastPathSameAsScan(t *testing.T) {
	var real strings.Builder
	for i, f := range regressionCases(t) {
		if i%10 != 0 {
			continue
		}
		b, err := os.ReadFile(strings.TrimSuffix(f, ".evtx") + ".json")
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		for {
			var v json.RawMessage
			if err := dec.Decode(&v); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			vs := []json.RawMessage{v}
			if v[0] == '[' {
				json.Unmarshal(v, &vs)
			}
			for _, x := range vs {
				var line bytes.Buffer
				json.Compact(&line, x)
				real.Write(line.Bytes())
				real.WriteString("\r\n")
			}
		}
	}
	tests := []struct{ name, src string }{
		{"regression events", real.String()},
		{"two objects on a line", "{\"a\":1} {\"b\":2}\n{\"c\":3}\n"},
		{"brace in a string", "{\"a\":\"}\"}\n{\"a\":\"x}\n{\"b\":1}\n"},
		{"object across lines", "{\"a\":\n1}\n{\"b\":{\"c\":2}\n}\n"},
		{"trailing blanks", "{\"a\":1}  \t\r\n\n{\"b\":2}"},
		{"array", "[\n{\"a\":1},\n{\"b\":2}\n]\n{\"c\":3}\n"},
		{"bad then good", "{\"a\":1,}\n{\"b\":2}\n{\"c\":[}\n{\"d\":3}\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			scanned, scanErrs := drainReader(t, NewJSONReader("x.jsonl", iotest.OneByteReader(strings.NewReader(tc.src))))
			fast, fastErrs := drainReader(t, NewJSONBytesReader("x.jsonl", []byte(tc.src)))
			if len(scanned) == 0 {
				t.Fatal("no event read")
			}
			if diff := cmp.Diff(scanned, fast); diff != "" {
				t.Errorf("events differ (-scan +fast):\n%s", diff)
			}
			if diff := cmp.Diff(scanErrs, fastErrs); diff != "" {
				t.Errorf("errors differ (-scan +fast):\n%s", diff)
			}
		})
	}
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkReadJSONLines decodes the regression events as JSON lines from memory, as
// hunt's workers do with a batch (NewJSONBytesReader).
func BenchmarkReadJSONLines(b *testing.B) {
	var data []byte
	for _, f := range regressionCases(b) {
		j, err := os.ReadFile(strings.TrimSuffix(f, ".evtx") + ".json")
		if err != nil {
			b.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(j))
		for {
			var v json.RawMessage
			if dec.Decode(&v) != nil {
				break
			}
			vs := []json.RawMessage{v}
			if v[0] == '[' {
				json.Unmarshal(v, &vs)
			}
			for _, x := range vs {
				var line bytes.Buffer
				json.Compact(&line, x)
				data = append(append(data, line.Bytes()...), '\n')
			}
		}
	}
	// "tree" is the reference decoder alone (fastjson tree, then a walk), "fast" the
	// single-pass decoder the reader uses.
	for _, mode := range []string{"fast", "tree"} {
		b.Run(mode, func(b *testing.B) {
			var ev event.Event
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			n := 0
			cpu0 := cpuTime()
			for b.Loop() {
				r := NewJSONBytesReader("bench.jsonl", data)
				r.noFast = mode == "tree"
				n = 0
				for {
					err := r.Next(&ev)
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					n++
				}
				r.Close() // as hunt does after each part
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n)/float64(b.N), "ns/event")
			// CPU time is steadier than wall time on a machine shared with other work.
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(n)/float64(b.N), "cpu-ns/event")
		})
	}
}
