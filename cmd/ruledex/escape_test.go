package main

import (
	"bytes"
	"testing"
)

func TestEscapeText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text, ümlauts and 漢字\n\ttab", "plain text, ümlauts and 漢字\n\ttab"},
		{"Evil \x1b[31mred\x1b[0m", `Evil \u001b[31mred\u001b[0m`},
		{"title \x1b]0;pwned\x07", `title \u001b]0;pwned\u0007`},
		{"cr\rover", `cr\u000dover`},
		{"del\x7f", `del\u007f`},
		{"c1 \u009b31m \u0085", `c1 \u009b31m \u0085`},
		{"bad \xff\xfe utf8", `bad \xff\xfe utf8`},
		{"surrogate \xed\xa0\x80", `surrogate \xed\xa0\x80`},
		{"truncated \xc3", `truncated \xc3`},
		{"nul \x00", `nul \u0000`},
		{"bidi \u202eexe.txt\u202c", `bidi \u202eexe.txt\u202c`},
	}
	for _, tc := range tests {
		if got := escapeText(tc.in); got != tc.want {
			t.Errorf("escapeText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// A character split across writes is printed whole; an invalid byte at the end is
// escaped on Flush.
func TestEscaperSplitWrites(t *testing.T) {
	tests := []struct {
		parts []string
		want  string
	}{
		{[]string{"caf\xc3", "\xa9 ok\n"}, "café ok\n"},
		{[]string{"\xe6", "\xbc", "\xa2"}, "漢"},
		{[]string{"a\x1b", "[31m"}, `a\u001b[31m`},
		{[]string{"end \xc3"}, `end \xc3`},
		{[]string{"\xc2", "\x9b"}, `\u009b`},
	}
	for _, tc := range tests {
		var b bytes.Buffer
		e := newEscaper(&b)
		for _, p := range tc.parts {
			if n, err := e.Write([]byte(p)); n != len(p) || err != nil {
				t.Fatalf("Write(%q) = %d, %v", p, n, err)
			}
		}
		e.Flush()
		if b.String() != tc.want {
			t.Errorf("writes %q: %q, want %q", tc.parts, b.String(), tc.want)
		}
	}
}
