package logread

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
	"github.com/valyala/fastjson"

	"github.com/ruledex/ruledex/event"
)

func cloneFields(ev *event.Event) []event.Field {
	fs := make([]event.Field, len(ev.Fields))
	for i, f := range ev.Fields {
		fs[i] = event.Field{Name: strings.Clone(f.Name), Value: strings.Clone(f.Value)}
	}
	return fs
}

// treeDecode decodes one JSON value with the reference (fastjson tree) decoder; ok is
// false when fastjson rejects it or it is not an object.
func treeDecode(j *JSONReader, b []byte) ([]event.Field, bool) {
	v, err := j.p.ParseBytes(b)
	if err != nil || v.Type() != fastjson.TypeObject {
		return nil, false
	}
	var ev event.Event
	j.s.begin(&ev)
	j.event(v)
	return cloneFields(&ev), true
}

// fastDecode decodes one JSON value with the fast decoder; ok is false when it
// declines.
func fastDecode(j *JSONReader, b []byte) ([]event.Field, bool) {
	var ev event.Event
	j.s.begin(&ev)
	if !j.fastEvent(b) {
		return nil, false
	}
	return cloneFields(&ev), true
}

// regressionValues returns every event of the regression JSON exports as its own
// bytes: compact (one JSON line) and as written (pretty-printed, as the bracket scan
// hands it over).
func regressionValues(t testing.TB) (compact, pretty [][]byte) {
	for _, f := range regressionCases(t) {
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
				vs = nil
				if err := json.Unmarshal(v, &vs); err != nil {
					t.Fatal(err)
				}
			}
			for _, x := range vs {
				var line bytes.Buffer
				if err := json.Compact(&line, x); err != nil {
					t.Fatal(err)
				}
				compact = append(compact, line.Bytes())
				pretty = append(pretty, bytes.Clone(x))
			}
		}
	}
	return compact, pretty
}

// fastCases are objects written to reach every branch of both decoders: those the fast
// decoder takes (want true) and those it must leave to the tree (want false).
var fastCases = []struct {
	name string
	src  string
	fast bool // the fast decoder takes it
}{
	{"flat scalars", `{"EventID":4688,"A":"x","T":true,"F":false,"N":null,"E":""}`, true},
	{"flat nesting", `{"winlog":{"event_id":1,"data":{"a":"b","c":[1,{"d":null},[]]},"e":{}},"x":[]}`, true},
	{"flat GUID keeps no braces", `{"Guid":"5770385F-C22A-43E0-BF4C-06F5698FFBD9"}`, true},
	{"escapes", `{"A":"C:\\x\"y\/z\b\f\n\r\t","B":"\u00e9\u4e2d\ud83d\ude00","C":"\q\u12","D":"\uzzzz\ud800x\ud800\u0041\udc00\uZZZZ"}`, true},
	{"escapes at the closing quote", `{"A":"\u12","B":"\ud800\u12","C":"\ud800\\","D":"x\\","E":"\u","F":"\ud800\u004","G":"\\\"\\"}`, true},
	{"escapes in evtx_dump text", `{"Event":{"EventData":{"A":"\u12","B":"\ud83d\ude00","C":"\"q\"","D":{"#attributes":{"Name":"\\x"},"#text":"\ttab"}}}}`, true},
	{"invalid UTF-8 and control bytes", "{\"A\":\"\xff\xfe\x01\",\"Event.EventData.B\":\"\xc3\"}", true},
	{"odd numbers", `{"A":-1.5e+10,"B":1-2,"C":0,"D":12.,"E":-0}`, true},
	{"duplicate keys", `{"A":1,"A":2,"Event.EventData.X":1,"Event.EventData.X":2}`, true},
	{"evtx_dump", `{"Event":{"#attributes":{"xmlns":"x"},"System":{"Provider":{"#attributes":{"Name":"P","Guid":"5770385F-C22A-43E0-BF4C-06F5698FFBD9"}},"EventID":{"#attributes":{"Qualifiers":null},"#text":4688},"Correlation":null,"Execution":{"#attributes":{"ProcessID":4,"ThreadID":5}},"Channel":"Security"},"EventData":{"A":"x","G":"5770385f-c22a-43e0-bf4c-06f5698ffbd9","Data":{"#text":["a","b",1,true,null]},"E":{},"L":[],"B":[1,"two"]}}}`, true},
	{"evtx_dump named data", `{"Event":{"System":{"EventID":7045},"EventData":{"Data":[{"#attributes":{"Name":"S"},"#text":"evil"},{"#attributes":{"Name":"I"},"#text":"C:\\x.exe"},{"#attributes":{"Name":"Empty"}}]}}}`, true},
	{"evtx_dump user data", `{"Event":{"System":{"EventID":104,"Channel":"System"},"UserData":{"LogFileCleared":{"#attributes":{"xmlns":"u"},"Channel":"Security","BackupPath":null}}}}`, true},
	{"escaped GUID gets braces", `{"Event":{"EventData":{"G":"5770385F-C22A-43E0-BF4C-06F5698FFBD\u0039"}}}`, true},
	{"members before Event are dropped", `{"A":1,"Event":{"System":{"EventID":1}},"B":2,"Event":{"System":{"EventID":2}}}`, true},
	{"Event that is not an object is flat", `{"Event":"x","Event":{"System":{"EventID":2}},"Event.System.EventID":3}`, true},
	{"dotted names", `{"Event.System.Provider.#attributes.Name":"P","Event.EventData.X":{"#text":"y"},"Event.":1,"Event..a":2,"Event.a.#attributes":3}`, true},
	{"second attributes ignored", `{"Event":{"System":{"Provider":{"#attributes":{"Name":"P"},"#attributes":{"Name":"Q"}}}}}`, true},
	{"attributes not an object", `{"Event":{"System":{"Provider":{"#attributes":"P","#text":"t"}}}}`, true},
	{"empty containers", `{"Event":{"System":{},"EventData":{"Data":[],"X":{"#text":[]}}}}`, true},
	{"blanks everywhere", " \t{ \"A\" : [ 1 , { \"b\" : \"c\" } ] ,\r\n \"Event.EventData.X\" : \"y\" } \n", true},
	{"empty object", `{}`, true},

	{"attributes after a member", `{"Event":{"System":{"Provider":{"#text":"t","#attributes":{"Name":"P"}}}}}`, false},
	{"escaped key", `{"A\u0042":1}`, false},
	{"escaped Event key", `{"\u0045vent":{"System":{"EventID":1}},"Event":"x"}`, false},
	{"object as text", `{"Event":{"EventData":{"X":{"#text":{"a":1}}}}}`, false},
	{"array in a text array", `{"Event":{"EventData":{"X":{"#text":[[1]]}}}}`, false},
	{"object as attribute", `{"Event":{"System":{"Provider":{"#attributes":{"Name":{"a":"b"}}}}}}`, false},
	{"nan", `{"A":nan}`, false},
	{"inf", `{"A":-inf}`, false},
	{"lone sign", `{"A":-}`, false},
	{"plus", `{"A":+1}`, false},
	{"leading dot", `{"A":.5}`, false},
	{"trailing comma", `{"A":1,}`, false},
	{"missing colon", `{"A" 1}`, false},
	{"unterminated", `{"A":"x`, false},
	{"two values", `{"A":1} {"B":2}`, false},
	{"bad literal", `{"A":tru}`, false},
	{"not an object", `[{"A":1}]`, false},
	{"too deep", `{"A":` + strings.Repeat("[", 150) + strings.Repeat("]", 150) + `}`, false},
}

// TestJSONFastSameAsTree: on every regression event (compact and pretty) and on the
// hand-written cases, the fast decoder gives the tree's fields exactly, and takes
// every real event (a decline there would silently cost the speed-up).
func TestJSONFastSameAsTree(t *testing.T) {
	j := NewJSONBytesReader("x", nil)
	compact, pretty := regressionValues(t)
	if len(compact) < 150 {
		t.Fatalf("only %d regression events", len(compact))
	}
	for _, set := range [][][]byte{compact, pretty} {
		for _, b := range set {
			want, ok := treeDecode(j, b)
			if !ok {
				t.Fatalf("tree rejects a regression event: %.200s", b)
			}
			got, ok := fastDecode(j, b)
			if !ok {
				t.Fatalf("fast decoder declines a regression event: %.200s", b)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("%.200s\n(-tree +fast):\n%s", b, diff)
			}
		}
	}
	for _, tc := range fastCases {
		t.Run(tc.name, func(t *testing.T) {
			want, treeOK := treeDecode(j, []byte(tc.src))
			got, fastOK := fastDecode(j, []byte(tc.src))
			if fastOK != tc.fast {
				t.Fatalf("fast decoder takes it: %v, want %v", fastOK, tc.fast)
			}
			if fastOK && !treeOK {
				t.Fatal("fast decoder takes what the tree rejects")
			}
			if fastOK {
				if len(got) == 0 && tc.src != "{}" {
					t.Fatal("no field")
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("(-tree +fast):\n%s", diff)
				}
			}
		})
	}
}

// Checks the tree itself on a few cases, so the differential test cannot pass on a
// reference that agrees with a wrong fast decoder by accident.
func TestJSONFastKnownValues(t *testing.T) {
	j := NewJSONBytesReader("x", nil)
	for _, tc := range []struct {
		src  string
		want []event.Field
	}{
		{`{"A":"\u00e9\ud83d\ude00\q\u12"}`, fields("A", "é😀\\q\\u12")},
		{`{"Event":{"EventData":{"G":"5770385f-c22a-43e0-bf4c-06f5698ffbd9"}}}`, fields("G", "{5770385f-c22a-43e0-bf4c-06f5698ffbd9}")},
		{`{"A":1,"Event":{"System":{"EventID":1}}}`, fields("EventID", "1")},
		{`{"w":{"a":{"b":1},"c":[2,3]}}`, fields("w.a.b", "1", "w.c", "2", "w.c", "3")},
	} {
		got, ok := fastDecode(j, []byte(tc.src))
		if !ok {
			t.Errorf("%s: declined", tc.src)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.src, diff)
		}
	}
}

// TestJSONReaderFastSameAsTree runs whole streams through the reader with and without
// the fast decoder (lines, pretty objects, arrays, broken values; read at once and a
// byte at a time): same events and same located errors.
func TestJSONReaderFastSameAsTree(t *testing.T) {
	compact, pretty := regressionValues(t)
	var lines, objs strings.Builder
	for i := range compact {
		lines.Write(compact[i])
		lines.WriteString("\n")
		objs.Write(pretty[i])
		objs.WriteString("\n")
	}
	var cases strings.Builder
	for _, tc := range fastCases {
		cases.WriteString(tc.src)
		cases.WriteString("\n")
	}
	streams := map[string]string{
		"lines":  lines.String(),
		"pretty": objs.String(),
		"array":  "[" + strings.Join(strings.Split(strings.TrimSpace(lines.String()), "\n"), ",\n") + "]",
		"cases":  cases.String(),
	}
	for name, src := range streams {
		for _, oneByte := range []bool{false, true} {
			if oneByte && len(src) > 1<<20 {
				continue
			}
			open := func() *JSONReader {
				if oneByte {
					return NewJSONReader("x.jsonl", iotest.OneByteReader(strings.NewReader(src)))
				}
				return NewJSONBytesReader("x.jsonl", []byte(src))
			}
			tree := open()
			tree.noFast = true
			want, wantErrs := drainReader(t, tree)
			got, gotErrs := drainReader(t, open())
			if len(want) == 0 {
				t.Fatalf("%s: no event", name)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s (one byte %v): events (-tree +fast):\n%s", name, oneByte, diff)
			}
			if diff := cmp.Diff(wantErrs, gotErrs); diff != "" {
				t.Errorf("%s (one byte %v): errors (-tree +fast):\n%s", name, oneByte, diff)
			}
		}
	}
}

// FuzzJSONFastSameAsTree: whatever the bytes, the fast decoder either declines or
// gives exactly the tree decoder's event; it never takes what fastjson rejects.
func FuzzJSONFastSameAsTree(f *testing.F) {
	compact, _ := regressionValues(f)
	for i := 0; i < len(compact); i += 25 {
		f.Add(compact[i])
	}
	for _, tc := range fastCases {
		f.Add([]byte(tc.src))
	}
	j := NewJSONBytesReader("x", nil)
	f.Fuzz(func(t *testing.T, b []byte) {
		got, fastOK := fastDecode(j, b)
		want, treeOK := treeDecode(j, b)
		if !fastOK {
			return
		}
		if !treeOK {
			t.Fatalf("fast decoder takes what the tree rejects: %q", b)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("%q (-tree +fast):\n%s", b, diff)
		}
	})
}
