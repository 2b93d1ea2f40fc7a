package engine

import (
	"slices"
	"unicode"
	"unicode/utf8"
	"unsafe"
)

// foldAppend appends the case-folded form of s to dst. Rule literals and event values
// go through this one function, so both sides always fold the same way; ASCII (nearly
// every Windows field) takes the fast path without decoding runes.
func foldAppend(dst []byte, s string) []byte {
	n := len(dst)
	dst = slices.Grow(dst, len(s))[:n+len(s)]
	out := dst[n:]
	for i := 0; i < len(s); i++ {
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
