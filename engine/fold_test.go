package engine

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// refFold is the definition foldAppend implements: every rune lowered by Unicode simple
// lowering; an invalid byte reads as U+FFFD, as ranging over a string decodes it.
func refFold(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// foldCases put every byte value at every offset of an 8-byte word, so that the
// word-at-a-time paths of foldAppend and firstToFold meet each one.
func foldCases() []string {
	cases := []string{"", "a", "Z", "@[`{", "C:\\Windows\\System32\\CMD.EXE", "ÀÉÎ", "İstanbul",
		"\u212a\u212b", "abcdefgh\xff", "ABCDEFGHIJKLMNOPQRSTUVWXYZ@[`{", "\xc3"}
	for c := 0; c < 256; c++ {
		for off := 0; off < 9; off++ {
			cases = append(cases, strings.Repeat("a", off)+string([]byte{byte(c)})+"bcdefghij")
		}
	}
	return cases
}

func TestFoldMatchesReference(t *testing.T) {
	for _, s := range foldCases() {
		checkFold(t, s)
	}
}

func FuzzFold(f *testing.F) {
	for _, s := range foldCases() {
		f.Add(s)
	}
	f.Fuzz(checkFold)
}

func checkFold(t *testing.T, s string) {
	want := refFold(s)
	if got := string(foldAppend([]byte("prefix"), s)); got != "prefix"+want {
		t.Fatalf("foldAppend(%q) = %q, want %q", s, got[len("prefix"):], want)
	}
	j := firstToFold(s)
	if s[:j] != want[:min(j, len(want))] {
		t.Fatalf("firstToFold(%q) = %d, but the prefix changes when folded", s, j)
	}
	if j < len(s) && s[j] < utf8.RuneSelf && lowerASCII[s[j]] == s[j] {
		t.Fatalf("firstToFold(%q) = %d, but byte %q needs no folding", s, j, s[j])
	}
	ascii := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < utf8.RuneSelf && lowerASCII[c] != byte(unicode.ToLower(rune(c))) {
			t.Fatalf("lowerASCII[%q] = %q", c, lowerASCII[c])
		}
		ascii = ascii && s[i] < utf8.RuneSelf
	}
	if isASCII(s) != ascii {
		t.Fatalf("isASCII(%q) = %v", s, !ascii)
	}
	if !ascii {
		return
	}
	if !eqFoldASCII(s, want) {
		t.Fatalf("eqFoldASCII(%q, %q) = false", s, want)
	}
	// Each changed position costs a copy and a comparison: on the fuzzer's long inputs,
	// every position made one input quadratic and stalled the fuzzer, so only the
	// positions near both ends are changed there (where the 8-byte loop and its tail are).
	for i := 0; i < len(want); i++ {
		if i == 64 && len(want) > 128 {
			i = len(want) - 64
		}
		// Another byte at i (the other case of a letter, a neighbour, a non-ASCII byte) fails.
		for _, c := range []byte{want[i] ^ 0x20, want[i] + 1, 0x80} {
			other := want[:i] + string([]byte{c}) + want[i+1:]
			if eqFoldASCII(s, other) {
				t.Fatalf("eqFoldASCII(%q, %q) = true", s, other)
			}
		}
	}
}
