package engine

import (
	"encoding/binary"
	"slices"
	"unicode"
	"unicode/utf8"
	"unsafe"
)

// SWAR constants: eight ASCII bytes are tested and folded at once. For a byte b < 0x80,
// b+0x3f has its high bit set when b >= 'A', b+0x25 when b > 'Z'; neither sum carries
// into the next byte.
const (
	swarHigh  = 0x8080808080808080
	swarGeA   = 0x3f3f3f3f3f3f3f3f
	swarGtZ   = 0x2525252525252525
	swarBytes = 8
)

// swarUpper returns 0x80 in each byte of x (all ASCII) that is an upper-case letter.
func swarUpper(x uint64) uint64 { return (x + swarGeA) &^ (x + swarGtZ) & swarHigh }

// lowerASCII folds one byte as foldAppend folds ASCII; bytes >= 0x80 are left as they
// are (callers that meet one fold the whole value instead).
var lowerASCII = func() (t [256]byte) {
	for i := range t {
		t[i] = byte(i)
		if 'A' <= i && i <= 'Z' {
			t[i] = byte(i) + 'a' - 'A'
		}
	}
	return t
}()

// firstToFold returns the index of the first byte of s that folding changes or that
// starts a multi-byte rune, or len(s).
func firstToFold(s string) int {
	i := 0
	if len(s) >= swarBytes {
		b := unsafe.Slice(unsafe.StringData(s), len(s))
		for ; i+swarBytes <= len(s); i += swarBytes {
			x := binary.LittleEndian.Uint64(b[i:])
			if x&swarHigh != 0 || swarUpper(x) != 0 {
				break
			}
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || 'A' <= c && c <= 'Z' {
			return i
		}
	}
	return len(s)
}

// foldAppend appends the case-folded form of s to dst. Rule literals and event values
// go through this one function, so both sides always fold the same way; ASCII (nearly
// every Windows field) takes the fast path without decoding runes.
func foldAppend(dst []byte, s string) []byte {
	n := len(dst)
	dst = slices.Grow(dst, len(s))[:n+len(s)]
	out := dst[n:]
	i := 0
	if len(s) >= swarBytes {
		b := unsafe.Slice(unsafe.StringData(s), len(s))
		for ; i+swarBytes <= len(s); i += swarBytes {
			x := binary.LittleEndian.Uint64(b[i:])
			if x&swarHigh != 0 {
				break // the byte loop finds the rune and folds from there
			}
			binary.LittleEndian.PutUint64(out[i:], x|swarUpper(x)>>2)
		}
	}
	for ; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return foldSlow(dst[:n+i], s[i:])
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return dst
}

func foldSlow(dst []byte, s string) []byte {
	for _, r := range s {
		if r < utf8.RuneSelf {
			c := byte(r)
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
			continue
		}
		dst = utf8.AppendRune(dst, unicode.ToLower(r))
	}
	return dst
}

// fold returns the case-folded s (compile-time helper; allocates only when s changes).
func fold(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf || ('A' <= c && c <= 'Z') {
			return string(foldAppend(make([]byte, 0, len(s)), s))
		}
	}
	return s
}

// needsFold reports whether fold(s) would differ from s.
func needsFold(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf || ('A' <= c && c <= 'Z') {
			return true
		}
	}
	return false
}

// bstr views b as a string without copying. The caller guarantees b is not modified
// while the string is in use (per-event scratch buffers are only rewritten by the
// next event).
func bstr(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
