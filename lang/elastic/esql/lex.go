package esql

import (
	"strings"
)

type tokKind uint8

const (
	tEOF tokKind = iota
	tIdent
	tString
	tNumber
	tOp
	tPipe
)

// tok is one token; s and e are byte offsets in the query. For strings, val holds the
// text with escapes applied (triple-quoted strings have none).
type tok struct {
	kind tokKind
	s, e int
	val  string
}

// lex splits q into tokens, dropping // and /* */ comments. It never fails: an
// unterminated string or comment runs to the end, and unknown bytes become one-byte
// operator tokens for the parser to report.
func lex(q string) []tok {
	var out []tok
	i := 0
	for i < len(q) {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '/' && i+1 < len(q) && q[i+1] == '/':
			for i < len(q) && q[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			end := strings.Index(q[i+2:], "*/")
			if end < 0 {
				i = len(q)
			} else {
				i += end + 4
			}
		case strings.HasPrefix(q[i:], `"""`):
			end := strings.Index(q[i+3:], `"""`)
			if end < 0 {
				out = append(out, tok{tString, i, len(q), q[i+3:]})
				i = len(q)
				continue
			}
			e := i + 3 + end + 3
			// A closing run of more than three quotes ends with the last three.
			for e < len(q) && q[e] == '"' {
				e++
			}
			out = append(out, tok{tString, i, e, q[i+3 : e-3]})
			i = e
		case c == '"':
			var b strings.Builder
			j := i + 1
			for j < len(q) && q[j] != '"' && q[j] != '\n' {
				if q[j] == '\\' && j+1 < len(q) {
					switch d := q[j+1]; d {
					case 'n':
						b.WriteByte('\n')
					case 't':
						b.WriteByte('\t')
					case 'r':
						b.WriteByte('\r')
					case '"', '\\':
						b.WriteByte(d)
					default:
						b.WriteByte('\\')
						b.WriteByte(d)
					}
					j += 2
					continue
				}
				b.WriteByte(q[j])
				j++
			}
			if j < len(q) && q[j] == '"' {
				j++
			}
			out = append(out, tok{tString, i, j, b.String()})
			i = j
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(q) && q[i+1] >= '0' && q[i+1] <= '9':
			j := i
			for j < len(q) && (q[j] >= '0' && q[j] <= '9' || q[j] == '.') {
				j++
			}
			if j < len(q) && (q[j] == 'e' || q[j] == 'E') && j+1 < len(q) && (q[j+1] >= '0' && q[j+1] <= '9' || q[j+1] == '-' || q[j+1] == '+') {
				j += 2
				for j < len(q) && q[j] >= '0' && q[j] <= '9' {
					j++
				}
			}
			out = append(out, tok{tNumber, i, j, q[i:j]})
			i = j
		case isIdentStart(c):
			j, name := lexIdent(q, i)
			out = append(out, tok{tIdent, i, j, name})
			i = j
		case c == '|':
			out = append(out, tok{tPipe, i, i + 1, "|"})
			i++
		default:
			n := 1
			for _, op := range []string{"==", "!=", "<=", ">=", "::"} {
				if strings.HasPrefix(q[i:], op) {
					n = 2
					break
				}
			}
			// Keep multi-byte UTF-8 characters whole.
			if c >= 0x80 {
				for i+n < len(q) && q[i+n]&0xC0 == 0x80 {
					n++
				}
			}
			out = append(out, tok{tOp, i, i + n, q[i : i+n]})
			i += n
		}
	}
	return append(out, tok{kind: tEOF, s: len(q), e: len(q)})
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '@' || c == '`'
}

func isIdentPart(c byte) bool {
	return isIdentStart(c) || c >= '0' && c <= '9'
}

// lexIdent reads a dotted name; backquoted parts (`no-wait`) are unquoted, and a `*`
// after a dot or inside a name (keep Esql.*, drop *_id) is part of it.
func lexIdent(q string, i int) (int, string) {
	var b strings.Builder
	for i < len(q) {
		c := q[i]
		switch {
		case c == '`':
			end := strings.IndexByte(q[i+1:], '`')
			if end < 0 {
				b.WriteString(q[i+1:])
				return len(q), b.String()
			}
			b.WriteString(q[i+1 : i+1+end])
			i += end + 2
		case isIdentPart(c) && c != '`':
			b.WriteByte(c)
			i++
		case c == '.' && i+1 < len(q) && (isIdentPart(q[i+1]) || q[i+1] == '*'):
			b.WriteByte(c)
			i++
		case c == '*' && b.Len() > 0 && (q[i-1] == '.' || q[i-1] == '_'):
			b.WriteByte(c)
			i++
		default:
			return i, b.String()
		}
	}
	return i, b.String()
}
