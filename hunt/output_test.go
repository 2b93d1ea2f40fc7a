package hunt

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ruledex/ruledex/event"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/rule"
)

// appendJSONString quotes as encoding/json does without HTML escaping, on every string
// of the SigmaHQ regression events (command lines, XML task definitions, paths) and on
// the cases the fast path must leave to the slow one.
func TestAppendJSONStringSameAsEncodingJSON(t *testing.T) {
	var strs []string
	var collect func(v any)
	collect = func(v any) {
		switch x := v.(type) {
		case string:
			strs = append(strs, x)
		case map[string]any:
			for k, y := range x {
				strs = append(strs, k)
				collect(y)
			}
		case []any:
			for _, y := range x {
				collect(y)
			}
		}
	}
	var files []string
	filepath.WalkDir(filepath.Join(corpustest.Dir(t), "regression"), func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".json") {
			files = append(files, p)
		}
		return err
	})
	if len(files) < 100 {
		t.Fatalf("%d regression JSON files", len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		for {
			var v any
			if dec.Decode(&v) != nil {
				break
			}
			collect(v)
		}
	}
	strs = append(strs, "", `"`, `\`, "a\x00b\x1fc\x7f", "tab\there\r\n", "<script>&amp;</script>", "é ü 日本",
		"bad \xff utf8 \xc3", "line\u2028sep\u2029x", strings.Repeat("x", 5000)+"\"")
	// Every special byte at every offset of an 8-byte word, after plain words.
	for _, c := range []string{"\x00", "\x1f", " ", "\"", "\\", "\x7f", "\x80", "é", "\u2028", "\xff"} {
		for off := 0; off < 9; off++ {
			strs = append(strs, strings.Repeat("p", 16+off)+c+strings.Repeat("q", 11))
		}
	}
	for _, s := range strs {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		enc.Encode(s)
		got := appendJSONString([]byte("prefix"), s)
		if string(got) != "prefix"+strings.TrimSuffix(want.String(), "\n") {
			t.Fatalf("appendJSONString(%q) = %s, want %s", s, got[6:], want.String())
		}
	}
}

// The JSON output encodes each rule's head once and reuses it: records of several
// rules, interleaved and repeated, must come out as appendJSON writes each on its own,
// and as encoding/json reads them back (rule_id, title and level of their own rule).
func TestJSONOutputRuleHeadsSameAsAppendJSON(t *testing.T) {
	rules := []*rule.Rule{
		{ID: "r1", Title: "One \"quoted\" <title>", Severity: "high"},
		{ID: "r2", Title: `C:\path\title`, Severity: "low"},
		{ID: "r3", Title: "same title", Severity: "medium"},
		{ID: "r4", Title: "same title", Severity: "medium"},
	}
	o := NewOutput(&bytes.Buffer{}, JSON)
	var got, want []byte
	for i := 0; i < 40; i++ {
		r := rules[(i*7)%len(rules)]
		rec := Record{Rule: r, TimeText: "2024-01-02T03:04:05Z", Computer: "pc", Channel: "Security",
			EventID: "4688", File: "f.jsonl", Fields: []event.Field{{Name: "Image", Value: `C:\x.exe`}}}
		start := len(got)
		got = o.Encode(got, &rec)
		want = appendJSON(want, &rec)
		var back struct {
			ID    string `json:"rule_id"`
			Title string `json:"title"`
			Level string `json:"level"`
		}
		if err := json.Unmarshal(got[start:], &back); err != nil {
			t.Fatalf("record %d: %v: %s", i, err, got[start:])
		}
		if back.ID != r.ID || back.Title != r.Title || back.Level != r.Severity {
			t.Fatalf("record %d of rule %s: read back %+v", i, r.ID, back)
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Encode differs from appendJSON:\n%s\nwant\n%s", got, want)
	}
}
