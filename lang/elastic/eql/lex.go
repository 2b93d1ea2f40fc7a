package eql

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tString
	tNumber
	tPunct
	tBad
)

type token struct {
	kind tokKind
	// text is the token as written; for strings, val is the decoded value.
	text string
	val  string
	off  int
	// escErr is set on strings holding an escape EQL does not define; the value keeps
	// the escape as written.
	escErr bool
}

// lex splits q into tokens. It never fails: a character it does not know becomes a
// tBad token that the parser reports where it stands.
func lex(q string) []token {
	// Rule queries average a token per 5 to 6 bytes.
	out := make([]token, 0, len(q)/5+4)
	i := 0
	for i < len(q) {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
			continue
		case c == '/' && i+1 < len(q) && q[i+1] == '/':
			for i < len(q) && q[i] != '\n' {
				i++
			}
			continue
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			end := strings.Index(q[i+2:], "*/")
			if end < 0 {
				i = len(q)
			} else {
				i += 2 + end + 2
			}
			continue
		case c == '"' && strings.HasPrefix(q[i:], `"""`):
			// Triple-quoted strings are raw: no escapes.
			end := strings.Index(q[i+3:], `"""`)
			if end < 0 {
				out = append(out, token{kind: tBad, text: q[i:], off: i})
				return append(out, token{kind: tEOF, off: len(q)})
			}
			s := q[i+3 : i+3+end]
			out = append(out, token{kind: tString, text: q[i : i+6+end], val: s, off: i})
			i += 6 + end
			continue
		case c == '?' && i+1 < len(q) && (q[i+1] == '"' || q[i+1] == '\''):
			// Legacy raw string ?"...".
			j := strings.IndexByte(q[i+2:], q[i+1])
			if j < 0 {
				out = append(out, token{kind: tBad, text: q[i:], off: i})
				return append(out, token{kind: tEOF, off: len(q)})
			}
			out = append(out, token{kind: tString, text: q[i : i+3+j], val: q[i+2 : i+2+j], off: i})
			i += 3 + j
			continue
		case c == '"' || c == '\'':
			t, n := lexString(q, i)
			out = append(out, t)
			i += n
			continue
		case c == '`':
			j := strings.IndexByte(q[i+1:], '`')
			if j < 0 {
				out = append(out, token{kind: tBad, text: q[i:], off: i})
				return append(out, token{kind: tEOF, off: len(q)})
			}
			if j == 0 {
				// `` names no field: a predicate on it would test nothing (found by FuzzEQL).
				out = append(out, token{kind: tBad, text: "``", off: i})
				i += 2
				continue
			}
			out = append(out, token{kind: tIdent, text: q[i : i+2+j], val: q[i+1 : i+1+j], off: i})
			i += 2 + j
			continue
		case isDigit(c):
			j := i
			for j < len(q) && (isDigit(q[j]) || q[j] == '.' || isLetter(q[j])) {
				j++
			}
			out = append(out, token{kind: tNumber, text: q[i:j], val: q[i:j], off: i})
			i = j
			continue
		case isLetter(c) || c == '_' || c == '@' || (c == '?' && i+1 < len(q) && (isLetter(q[i+1]) || q[i+1] == '_' || q[i+1] == '@')):
			// `?field` marks an optional field; the mark does not change the test.
			j := i + 1
			for j < len(q) {
				if isLetter(q[j]) || isDigit(q[j]) || q[j] == '_' || q[j] == '.' || q[j] == '@' {
					j++
					continue
				}
				// A backquoted segment inside a dotted name (target_resources.`0`.display_name).
				if q[j] == '`' && q[j-1] == '.' {
					if k := strings.IndexByte(q[j+1:], '`'); k >= 0 {
						j += k + 2
						continue
					}
				}
				break
			}
			if j < len(q) && q[j] == '~' {
				j++
			}
			name := strings.TrimPrefix(q[i:j], "?")
			out = append(out, token{kind: tIdent, text: q[i:j], val: name, off: i})
			i = j
			continue
		}
		for _, p := range puncts {
			if strings.HasPrefix(q[i:], p) {
				out = append(out, token{kind: tPunct, text: p, off: i})
				i += len(p)
				goto next
			}
		}
		{
			_, n := utf8.DecodeRuneInString(q[i:])
			out = append(out, token{kind: tBad, text: q[i : i+n], off: i})
			i += n
		}
	next:
	}
	// The end of the query is where its last token ends, so "unexpected end of query"
	// points at the line that is incomplete rather than at trailing blank lines.
	end := 0
	if n := len(out); n > 0 {
		end = out[n-1].off + len(out[n-1].text)
	}
	return append(out, token{kind: tEOF, off: end})
}

var puncts = []string{"==", "!=", "<=", ">=", "(", ")", "[", "]", ",", "|", ":", "<", ">", "=", "~", "!", "+", "-", "*", "/", "%"}

func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80 }

// lexString reads a quoted string with EQL's escapes (\" \' \\ \n \r \t \u{hex}) at q[i].
func lexString(q string, i int) (token, int) {
	quote := q[i]
	var b strings.Builder
	bad := false
	j := i + 1
	for j < len(q) {
		c := q[j]
		if c == quote {
			return token{kind: tString, text: q[i : j+1], val: b.String(), off: i, escErr: bad}, j + 1 - i
		}
		if c == '\\' && j+1 < len(q) {
			e := q[j+1]
			switch e {
			case '"', '\'', '\\':
				b.WriteByte(e)
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u':
				if j+2 < len(q) && q[j+2] == '{' {
					if k := strings.IndexByte(q[j+3:], '}'); k >= 0 {
						if n, err := strconv.ParseUint(q[j+3:j+3+k], 16, 32); err == nil {
							b.WriteRune(rune(n))
							j += 3 + k + 1
							continue
						}
					}
				}
				bad = true
				b.WriteString(q[j : j+2])
			default:
				bad = true
				b.WriteString(q[j : j+2])
			}
			j += 2
			continue
		}
		b.WriteByte(c)
		j++
	}
	return token{kind: tBad, text: q[i:], off: i}, len(q) - i
}
