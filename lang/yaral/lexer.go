package yaral

import (
	"strings"
)

// tkind is a token kind.
type tkind int

const (
	tEOF    tkind = iota
	tIdent        // rule, meta, and, over, strings, PROCESS_LAUNCH, 5m
	tVar          // $name (text without $)
	tCount        // #name (text without #)
	tList         // %name (text without %)
	tString       // "..." (text decoded)
	tRaw          // `...` (text verbatim)
	tRegex        // /.../ (text is the pattern)
	tNumber       // 12, 1.5, -3 is '-' then 12
	tPunct        // ( ) { } [ ] , : = != < <= > >= . + - * / ! and anything else
)

type token struct {
	kind       tkind
	text       string
	start, end int // byte offsets in the source
	line, col  int
	nl         bool // first token on its line
	bad        string
}

// lex splits src into tokens, skipping // and /* */ comments. It never fails: an
// unterminated string or regex runs to the end of its line and is marked bad, so the
// parser reports it at its position and the rest of the file still reads.
func lex(src string) []token {
	toks := make([]token, 0, len(src)/8+8) // about 10 bytes a token in the corpus
	line, lineStart := 1, 0
	newline := true
	i := 0
	emit := func(k tkind, text string, start int, bad string) {
		toks = append(toks, token{kind: k, text: text, start: start, end: i, line: line, col: start - lineStart + 1, nl: newline, bad: bad})
		newline = false
	}
	// regexOK: a '/' starts a regex literal only where a value is expected; elsewhere
	// (after an operand) it is division in an outcome expression.
	regexOK := func() bool {
		if len(toks) == 0 {
			return false
		}
		t := toks[len(toks)-1]
		switch t.kind {
		case tPunct:
			return t.text == "=" || t.text == "!=" || t.text == "(" || t.text == ","
		case tIdent:
			l := strings.ToLower(t.text)
			return l == "and" || l == "or" || l == "not"
		}
		return false
	}
	for i < len(src) {
		c := src[i]
		switch {
		case c == '\n':
			i++
			line, lineStart = line+1, i
			newline = true
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '/' && i+1 < len(src) && src[i+1] == '/':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(src) && src[i+1] == '*':
			start := i
			i += 2
			for i < len(src) && !(src[i] == '*' && i+1 < len(src) && src[i+1] == '/') {
				if src[i] == '\n' {
					line, lineStart = line+1, i+1
				}
				i++
			}
			if i >= len(src) {
				emit(tPunct, "/*", start, "unterminated comment")
				break
			}
			i += 2
		case c == '/' && regexOK():
			start := i
			startLine, startCol := line, i-lineStart+1
			i++
			var b strings.Builder
			closed := false
			for i < len(src) && src[i] != '\n' {
				if src[i] == '\\' && i+1 < len(src) && src[i+1] == '/' {
					b.WriteByte('/')
					i += 2
					continue
				}
				if src[i] == '\\' && i+1 < len(src) && src[i+1] != '\n' {
					b.WriteString(src[i : i+2])
					i += 2
					continue
				}
				if src[i] == '/' {
					closed = true
					i++
					break
				}
				b.WriteByte(src[i])
				i++
			}
			bad := ""
			if !closed {
				bad = "unterminated regular expression"
			}
			toks = append(toks, token{kind: tRegex, text: b.String(), start: start, end: i, line: startLine, col: startCol, nl: newline, bad: bad})
			newline = false
		case c == '"' || c == '\'':
			start := i
			startLine, startCol := line, i-lineStart+1
			text, bad := lexString(src, &i, c)
			// Strings may span lines in meta values; keep line numbers right.
			for _, ch := range src[start:i] {
				if ch == '\n' {
					line++
				}
			}
			if n := strings.LastIndexByte(src[start:i], '\n'); n >= 0 {
				lineStart = start + n + 1
			}
			toks = append(toks, token{kind: tString, text: text, start: start, end: i, line: startLine, col: startCol, nl: newline, bad: bad})
			newline = false
		case c == '`':
			start := i
			startLine, startCol := line, i-lineStart+1
			i++
			j := strings.IndexByte(src[i:], '`')
			bad := ""
			var text string
			if j < 0 {
				text, i, bad = src[i:], len(src), "unterminated raw string"
			} else {
				text = src[i : i+j]
				i += j + 1
			}
			for _, ch := range src[start:i] {
				if ch == '\n' {
					line++
				}
			}
			if n := strings.LastIndexByte(src[start:i], '\n'); n >= 0 {
				lineStart = start + n + 1
			}
			toks = append(toks, token{kind: tRaw, text: text, start: start, end: i, line: startLine, col: startCol, nl: newline, bad: bad})
			newline = false
		case c == '$' || c == '#' || c == '%':
			start := i
			i++
			for i < len(src) && isIdent(src[i]) {
				i++
			}
			k := map[byte]tkind{'$': tVar, '#': tCount, '%': tList}[c]
			if i == start+1 {
				emit(tPunct, src[start:i], start, "")
				break
			}
			emit(k, src[start+1:i], start, "")
		case c >= '0' && c <= '9':
			start := i
			for i < len(src) && (isIdent(src[i]) || (src[i] == '.' && i+1 < len(src) && src[i+1] >= '0' && src[i+1] <= '9')) {
				i++
			}
			emit(tNumber, src[start:i], start, "")
		case isIdent(c) || c >= 0x80:
			start := i
			for i < len(src) && (isIdent(src[i]) || src[i] >= 0x80) {
				i++
			}
			emit(tIdent, src[start:i], start, "")
		default:
			start := i
			i++
			if i < len(src) && src[i] == '=' && (c == '!' || c == '<' || c == '>' || c == '=') {
				i++
			}
			emit(tPunct, src[start:i], start, "")
		}
	}
	return padEOF(toks, token{kind: tEOF, start: len(src), end: len(src), line: line, col: len(src) - lineStart + 1, nl: true})
}

// padEOF ends a token list with several EOF tokens, so look-ahead of a few tokens
// never needs a bounds check.
func padEOF(toks []token, eof token) []token {
	for range 4 {
		toks = append(toks, eof)
	}
	return toks
}

func isIdent(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// lexString reads a quoted string at src[*i] and decodes its escapes. YARA-L strings
// escape `\\`, `\"` and the usual control characters; an unknown escape is kept as
// written (backslash included), since converted rules often leave Windows paths with
// single backslashes.
func lexString(src string, i *int, q byte) (string, string) {
	// Most strings have no escapes: return them without copying.
	for k := *i + 1; k < len(src); k++ {
		if src[k] == q {
			s := src[*i+1 : k]
			*i = k + 1
			return s, ""
		}
		if src[k] == '\\' || src[k] == '\n' {
			break
		}
	}
	var b strings.Builder
	j := *i + 1
	for j < len(src) {
		c := src[j]
		if c == q {
			*i = j + 1
			return b.String(), ""
		}
		if c == '\\' && j+1 < len(src) {
			switch n := src[j+1]; n {
			case '\\', '"', '\'':
				b.WriteByte(n)
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			default:
				b.WriteByte('\\')
				b.WriteByte(n)
			}
			j += 2
			continue
		}
		if c == '\n' && q == '\'' {
			break
		}
		b.WriteByte(c)
		j++
	}
	*i = j
	return b.String(), "unterminated string"
}
