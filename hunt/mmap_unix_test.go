//go:build unix

package hunt

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ruledex/ruledex/event"
)

// partsText decodes every part an input makes and describes them: each part's first
// line number, then its events and errors in order.
func partsText(t *testing.T, in func(send func(Part) bool) error) string {
	t.Helper()
	var b strings.Builder
	err := in(func(p Part) bool {
		fmt.Fprintf(&b, "part at line %d\n", p.Line)
		r, err := p.Open()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var ev event.Event
		for {
			err := r.Next(&ev)
			if err == io.EOF {
				return true
			}
			if err != nil {
				fmt.Fprintf(&b, "  error %v\n", err)
				continue
			}
			fmt.Fprintf(&b, "  event")
			for _, f := range ev.Fields {
				fmt.Fprintf(&b, " %s=%.40q", f.Name, f.Value)
			}
			b.WriteByte('\n')
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestMappedPartsSameAsRead: a file read through its mapping splits into the parts
// that reading it makes (same boundaries, same first line numbers), which decode to
// the same events and the same located errors; files that are not JSON lines are not
// mapped. (It found that reading into a large pooled buffer cut fewer, larger parts.)
func TestMappedPartsSameAsRead(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	var lines strings.Builder
	lines.WriteString("\n  \n") // blank lines before the first event
	for n := 0; lines.Len() < 3*batchBytes; n++ {
		switch n {
		case 700:
			lines.WriteString("{broken\n")
		case 1500:
			// A line longer than a batch.
			long := strings.Replace(bitsLine(n, true, t0), `x /transfer j1`, `x /transfer j1 `+strings.Repeat("A", batchBytes+5), 1)
			lines.WriteString(long + "\n")
		default:
			lines.WriteString(bitsLine(n, n%100 == 0, t0.Add(time.Duration(n)*time.Second)) + "\n")
		}
	}
	exact := batchBytes - len(bitsLine(0, false, t0)+"\n")
	cases := []struct{ name, text string }{
		{"events, errors and a long line", lines.String()},
		{"no final newline", strings.TrimSuffix(lines.String(), "\n")},
		{"one short line", bitsLine(1, true, t0)},
		// A file of exactly one batch, ending with a newline: no empty part after it.
		{"exactly a batch", strings.Repeat("\n", exact) + bitsLine(1, true, t0) + "\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "events.jsonl")
			if err := os.WriteFile(p, []byte(c.text), 0o644); err != nil {
				t.Fatal(err)
			}
			fh, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			mapped := partsText(t, func(send func(Part) bool) error {
				ok, err := mapParts(p, fh, send)
				if !ok {
					t.Fatal("a JSON-lines file was not mapped")
				}
				return err
			})
			// A large pooled buffer (left by a long line) lets one read bring several
			// parts: they must still be cut where a small buffer cuts them.
			batches.Put(make([]byte, 0, 4*batchBytes))
			read := partsText(t, func(send func(Part) bool) error {
				return jsonParts(p, strings.NewReader(c.text), nil, send)
			})
			if mapped != read {
				ml, rl := strings.Split(mapped, "\n"), strings.Split(read, "\n")
				for i := range min(len(ml), len(rl)) {
					if ml[i] != rl[i] {
						t.Errorf("mapped parts differ from read ones at line %d of %d/%d:\nmapped: %.300s\nread:   %.300s", i, len(ml), len(rl), ml[i], rl[i])
						break
					}
				}
				if len(ml) != len(rl) {
					t.Errorf("mapped: %d lines, read: %d; last mapped %.300q, last read %.300q", len(ml), len(rl), ml[len(ml)-2], rl[len(rl)-2])
				}
			}
			if !strings.Contains(mapped, "event") {
				t.Errorf("no event decoded:\n%s", head(mapped))
			}
		})
	}
	for _, text := range []string{"", "\n\n", `{"Event": {"System": {}}` + "\n}\n", "[{}]\n"} {
		p := filepath.Join(t.TempDir(), "doc.json")
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		fh, _ := os.Open(p)
		ok, err := mapParts(p, fh, func(Part) bool { t.Errorf("%q: a part sent", text); return true })
		fh.Close()
		if ok || err != nil {
			t.Errorf("%q: mapped %v, error %v; want left to the reader", text, ok, err)
		}
	}
}

func head(s string) string {
	if len(s) > 3000 {
		return s[:3000] + "..."
	}
	return s
}

// TestMappedFileTruncated: a file cut short while its parts are being read makes a
// located error, not a crash (a read beyond the new end of a mapping faults).
func TestMappedFileTruncated(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	var b strings.Builder
	for n := 0; b.Len() < 3*batchBytes; n++ {
		b.WriteString(bitsLine(n, false, t0) + "\n")
	}
	p := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	var parts []Part
	if err := FileInput(p).Parts(func(pt Part) bool { parts = append(parts, pt); return true }); err != nil {
		t.Fatal(err)
	}
	if len(parts) < 3 {
		t.Fatalf("%d parts", len(parts))
	}
	if err := os.Truncate(p, 0); err != nil {
		t.Fatal(err)
	}
	var ev event.Event
	for i, pt := range parts {
		r, err := pt.Open()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := r.(*mappedPart); !ok {
			t.Fatalf("part %d is a %T, not read through the mapping", i, r)
		}
		err = r.Next(&ev)
		if err == nil || !strings.Contains(err.Error(), "changed while it was read") || !strings.Contains(err.Error(), p) {
			t.Errorf("part %d: error %v, want the file named as changed while read", i, err)
		}
		if err := r.Next(&ev); err != io.EOF {
			t.Errorf("part %d: after the fault, %v, want io.EOF", i, err)
		}
		r.Close()
	}
}
