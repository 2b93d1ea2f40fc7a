package rule

import (
	"encoding/base64"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Encoding transforms turn one written value into the values an event is really
// compared with. They follow pySigma's modifiers, the reference implementation:
//
//   - windash: every `-` or `/` that starts a word (the character before it is not a
//     word character, the one after it is) is tried as -, /, – (en dash), — (em dash)
//     and ― (horizontal bar); several such dashes give every combination.
//   - utf16le / wide, utf16be, utf16 (byte order mark FF FE, then little endian): the
//     value's text as UTF-16 bytes, usually followed by base64 or base64offset.
//   - base64: the standard base64 (with padding) of the value's bytes.
//   - base64offset: the three strings that appear in the base64 of any text containing
//     the value, for the value starting at byte offset 0, 1 and 2 of a 3-byte group
//     (`foobar` gives `Zm9vYmFy`, `Zvb2Jhc`, `mb29iYX`).
//
// Other transforms (cased, expand, regex flags, date parts) do not change the value and
// are left to the comparison.

// maxExpansion bounds windash's combinations (5^n for n dashes).
const maxExpansion = 5 * 5 * 5 * 5 * 5 * 5

// IsEncoding reports whether transform t rewrites values (see ExpandValue).
func IsEncoding(t string) bool {
	switch t {
	case TWindash, TBase64, TBase64Offset, TUTF16LE, TUTF16BE, TUTF16, TWide:
		return true
	}
	return false
}

// ExpandValue applies p's encoding transforms, in the order written, to v and returns
// the values to compare with p.Kind (for Match, each is a substring to find; the
// predicate holds if any of them does). A value without encoding transforms comes back
// alone and unchanged. Wild values keep their wildcards: windash rewrites only their
// literal dashes; encoding a value with wildcards is an error, as in Sigma. Results of
// UTF-16 encodings without a following base64 hold the raw bytes in S.
func ExpandValue(p *Pred, v Value) ([]Value, error) {
	enc := false
	for _, t := range p.Transforms {
		if IsEncoding(t) {
			enc = true
			break
		}
	}
	if !enc {
		return []Value{v}, nil
	}
	cur := []Value{v}
	for _, t := range p.Transforms {
		if !IsEncoding(t) {
			continue
		}
		var next []Value
		for _, x := range cur {
			switch t {
			case TWindash:
				vs := windashPattern(x.S, x.Wild)
				if vs == nil {
					return nil, fmt.Errorf("windash of %q: more than %d variants", x.S, maxExpansion)
				}
				for _, s := range vs {
					next = append(next, Value{S: s, Type: x.Type, Wild: x.Wild})
				}
			case TUTF16LE, TWide, TUTF16BE, TUTF16:
				s, err := mapLiterals(x, func(lit string) string { return string(EncodeUTF16(lit, t)) })
				if err != nil {
					return nil, err
				}
				next = append(next, Value{S: s, Wild: x.Wild})
			case TBase64, TBase64Offset:
				if x.Wild && hasWildcard(x.S) {
					return nil, fmt.Errorf("%s of %q: cannot encode a value with wildcards", t, x.S)
				}
				lit := x.S
				if x.Wild {
					lit = unescapeGlob(x.S)
				}
				if t == TBase64 {
					next = append(next, Value{S: base64.StdEncoding.EncodeToString([]byte(lit))})
				} else {
					for _, s := range Base64Offset([]byte(lit)) {
						next = append(next, Value{S: s})
					}
				}
			}
			if len(next) > maxExpansion {
				return nil, fmt.Errorf("%s of %q: more than %d variants", t, v.S, maxExpansion)
			}
		}
		cur = next
	}
	return cur, nil
}

// Windash returns the windash variants of a literal string, the original first; a
// string with too many dashes to expand is returned alone.
func Windash(s string) []string {
	if vs := windashPattern(s, false); vs != nil {
		return vs
	}
	return []string{s}
}

var dashes = []string{"-", "/", "\u2013", "\u2014", "\u2015"}

func isWordRune(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsNumber(r) || unicode.Is(unicode.Mn, r)
}

// windashPattern expands s; in a pattern, wildcards and escapes count as non-word
// characters, which is what they are next to a dash in pySigma's split strings.
func windashPattern(s string, wild bool) []string {
	type seg struct {
		text string
		dash bool
	}
	var segs []seg
	start := 0
	prevWord := false
	n := 0
	for i, r := range s {
		isDash := r == '-' || r == '/'
		if isDash && !prevWord {
			nr, _ := utf8.DecodeRuneInString(s[i+1:])
			nextWord := i+1 < len(s) && isWordRune(nr)
			if wild && nr == '\\' {
				nextWord = false
			}
			if nextWord {
				segs = append(segs, seg{text: s[start:i]}, seg{dash: true})
				start = i + 1
				n++
			}
		}
		prevWord = isWordRune(r)
		if wild && (r == '*' || r == '?' || r == '\\') {
			prevWord = false
		}
	}
	if n == 0 {
		return []string{s}
	}
	segs = append(segs, seg{text: s[start:]})
	out := []string{""}
	for _, sg := range segs {
		if !sg.dash {
			for i := range out {
				out[i] += sg.text
			}
			continue
		}
		if len(out)*len(dashes) > maxExpansion {
			return nil
		}
		next := make([]string, 0, len(out)*len(dashes))
		for _, o := range out {
			for _, d := range dashes {
				next = append(next, o+d)
			}
		}
		out = next
	}
	return out
}

// EncodeUTF16 encodes s as UTF-16: transform is TUTF16LE or TWide (little endian),
// TUTF16BE (big endian) or TUTF16 (byte order mark FF FE, then little endian).
func EncodeUTF16(s, transform string) []byte {
	units := utf16.Encode([]rune(s))
	out := make([]byte, 0, 2*len(units)+2)
	if transform == TUTF16 {
		out = append(out, 0xFF, 0xFE)
	}
	for _, u := range units {
		if transform == TUTF16BE {
			out = append(out, byte(u>>8), byte(u))
		} else {
			out = append(out, byte(u), byte(u>>8))
		}
	}
	return out
}

// Base64Offset returns the base64 forms of b at offsets 0, 1 and 2 of a 3-byte group,
// cut to the characters that do not depend on the surrounding bytes.
func Base64Offset(b []byte) []string {
	start := [3]int{0, 2, 3}
	endTrim := [3]int{0, 3, 2} // characters dropped at the end, by (len+offset)%3
	out := make([]string, 0, 3)
	for i := 0; i < 3; i++ {
		buf := make([]byte, i+len(b))
		for j := 0; j < i; j++ {
			buf[j] = ' '
		}
		copy(buf[i:], b)
		enc := base64.StdEncoding.EncodeToString(buf)
		end := len(enc) - endTrim[(len(b)+i)%3]
		if start[i] > end {
			out = append(out, "")
			continue
		}
		out = append(out, enc[start[i]:end])
	}
	return out
}

// hasWildcard reports whether a glob pattern (see Value) has an unescaped * or ?.
func hasWildcard(p string) bool {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\':
			if i+1 < len(p) && (p[i+1] == '*' || p[i+1] == '?' || p[i+1] == '\\') {
				i++
			}
		case '*', '?':
			return true
		}
	}
	return false
}

// unescapeGlob returns the literal text of a wildcard-free glob pattern.
func unescapeGlob(p string) string {
	if !strings.Contains(p, `\`) {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '\\' && i+1 < len(p) && (p[i+1] == '*' || p[i+1] == '?' || p[i+1] == '\\') {
			i++
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

// mapLiterals applies f to the literal runs of a value, keeping a pattern's wildcards.
func mapLiterals(v Value, f func(string) string) (string, error) {
	if !v.Wild {
		return f(v.S), nil
	}
	var b strings.Builder
	for _, g := range GlobParts(v.S) {
		if g.Wild != 0 {
			b.WriteByte(g.Wild)
			continue
		}
		b.WriteString(escapeGlob(f(g.Lit)))
	}
	return b.String(), nil
}

// escapeGlob escapes every glob metacharacter of a literal.
func escapeGlob(s string) string {
	if !strings.ContainsAny(s, `*?\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '*' || s[i] == '?' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// GlobPart is one piece of a glob pattern: a literal run, or a wildcard ('*' any run,
// '?' one character) when Wild is not 0.
type GlobPart struct {
	Lit  string
	Wild byte
}

// GlobParts splits a pattern in ruledex glob syntax (see Value) into literal runs and
// wildcards, so writers for other languages can escape each literal their own way.
func GlobParts(p string) []GlobPart {
	var out []GlobPart
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			out = append(out, GlobPart{Lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\' && i+1 < len(p) && (p[i+1] == '*' || p[i+1] == '?' || p[i+1] == '\\'):
			lit.WriteByte(p[i+1])
			i++
		case c == '*' || c == '?':
			flush()
			out = append(out, GlobPart{Wild: c})
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	return out
}

// NormalizeGlob spells a glob pattern one way: every literal backslash, `*` and `?` is
// escaped, so `a\b*` and `a\\b*` (the same pattern) compare equal.
func NormalizeGlob(p string) string {
	var b strings.Builder
	for _, g := range GlobParts(p) {
		if g.Wild != 0 {
			b.WriteByte(g.Wild)
			continue
		}
		b.WriteString(escapeGlob(g.Lit))
	}
	return b.String()
}
