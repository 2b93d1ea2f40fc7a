package kql

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// TokKind classifies a token.
type TokKind int

const (
	TEOF      TokKind = iota
	TIdent            // name or keyword; `$left` and `Device*`-style wildcards included
	TQIdent           // quoted identifier ['x'] / ["x"]; Val holds the name
	TString           // any string form; Val holds the decoded text
	TNumber           // integer, real or hex
	TTimespan         // 1d, 30m, 1.5h, 10ms
	TOp               // punctuation and operators
	TIllegal          // a character KQL does not use; reported and skipped by the parser
)

// Token is one lexical token. Start and End are byte offsets into the lexed text.
type Token struct {
	Kind       TokKind
	Text       string // source text
	Val        string // decoded value for strings and quoted identifiers
	Start, End int
	Line, Col  int
	// LineStart is set when the token is the first on its line, AfterBlank when at
	// least one empty line separates it from the previous token: both help split
	// files that hold several queries without `;`.
	LineStart, AfterBlank bool
	// Depth is the bracket nesting ((, [, {) the token sits in; the query-boundary
	// heuristics apply only at depth 0.
	Depth int
}

func (t Token) String() string {
	if t.Kind == TEOF {
		return "end of query"
	}
	return fmt.Sprintf("%q", t.Text)
}

// LexError is a located lexical problem; lexing continues after it.
type LexError struct {
	Off       int
	Line, Col int
	Msg       string
}

// Lexer splits KQL text into tokens. It never fails: problems become LexErrors and
// the offending text is skipped or closed at the end of input.
type Lexer struct {
	src       string
	off       int
	line, col int
	// base line/col let positions refer to the enclosing file when the query is
	// embedded (YAML block, Markdown fence).
	Errors []LexError
}

// NewLexer lexes src.
func NewLexer(src string) *Lexer { return &Lexer{src: src, line: 1, col: 1} }

// Lex returns all tokens of src, ending with TEOF.
func Lex(src string) ([]Token, []LexError) {
	l := NewLexer(src)
	var toks []Token
	depth := 0
	for {
		t := l.Next()
		if t.Kind == TOp {
			switch t.Text {
			case ")", "]", "}":
				if depth > 0 {
					depth--
				}
			}
		}
		t.Depth = depth
		if t.Kind == TOp {
			switch t.Text {
			case "(", "[", "{":
				depth++
			}
		}
		toks = append(toks, t)
		if t.Kind == TEOF {
			return toks, l.Errors
		}
	}
}

func (l *Lexer) errf(t *Token, format string, a ...any) {
	l.Errors = append(l.Errors, LexError{Off: t.Start, Line: t.Line, Col: t.Col, Msg: fmt.Sprintf(format, a...)})
}

func (l *Lexer) peekRune(ahead int) rune {
	o := l.off
	for i := 0; ; i++ {
		if o >= len(l.src) {
			return -1
		}
		r, n := utf8.DecodeRuneInString(l.src[o:])
		if i == ahead {
			return r
		}
		o += n
	}
}

func (l *Lexer) advance() rune {
	r, n := utf8.DecodeRuneInString(l.src[l.off:])
	l.off += n
	if r == '\n' {
		l.line++
		l.col = 1
	} else {
		l.col++
	}
	return r
}

// isSpace covers Unicode whitespace plus the invisible characters that copy-pasted
// queries carry (BOM, zero-width space and joiners).
func isSpace(r rune) bool {
	return unicode.IsSpace(r) || r == '\uFEFF' || r == '\u200B' || r == '\u200C' || r == '\u200D' || r == '\u2060'
}

func isIdentStart(r rune) bool { return r == '_' || r == '$' || unicode.IsLetter(r) }
func isIdentPart(r rune) bool  { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }

// Next returns the next token.
func (l *Lexer) Next() Token {
	newlines := 0
	lineStart := l.off == 0
	for l.off < len(l.src) {
		r := l.peekRune(0)
		if isSpace(r) {
			if r == '\n' {
				newlines++
				lineStart = true
			}
			l.advance()
			continue
		}
		if r == '/' && l.peekRune(1) == '/' {
			for l.off < len(l.src) && l.peekRune(0) != '\n' {
				l.advance()
			}
			continue
		}
		break
	}
	t := Token{Start: l.off, Line: l.line, Col: l.col, LineStart: lineStart, AfterBlank: newlines >= 2}
	if l.off >= len(l.src) {
		t.Kind = TEOF
		t.End = l.off
		return t
	}
	r := l.peekRune(0)
	switch {
	case r == '`' && strings.HasPrefix(l.src[l.off:], "```"):
		l.multiline(&t)
	case r == '"' || r == '\'':
		l.quoted(&t, false)
	case r == '@' && (l.peekRune(1) == '"' || l.peekRune(1) == '\''):
		l.advance()
		l.quoted(&t, true)
	case (r == 'h' || r == 'H') && (l.peekRune(1) == '"' || l.peekRune(1) == '\''):
		// h"..." obfuscated strings: same value, hidden from logs.
		l.advance()
		l.quoted(&t, false)
	case (r == 'h' || r == 'H') && l.peekRune(1) == '@' && (l.peekRune(2) == '"' || l.peekRune(2) == '\''):
		l.advance()
		l.advance()
		l.quoted(&t, true)
	case r == '[' && l.quotedIdentAhead():
		l.advance()
		for isSpace(l.peekRune(0)) {
			l.advance()
		}
		var s Token
		l.quoted(&s, false)
		for isSpace(l.peekRune(0)) {
			l.advance()
		}
		l.advance() // ]
		t.Kind = TQIdent
		t.Val = s.Val
	case unicode.IsDigit(r) || (r == '.' && unicode.IsDigit(l.peekRune(1))):
		l.number(&t)
	case isIdentStart(r):
		l.advance()
		for l.off < len(l.src) && isIdentPart(l.peekRune(0)) {
			l.advance()
		}
		// Wildcard table names in union/search (Device*, *Events).
		for l.peekRune(0) == '*' && l.wildcardContext() {
			l.advance()
			for l.off < len(l.src) && isIdentPart(l.peekRune(0)) {
				l.advance()
			}
		}
		t.Kind = TIdent
	default:
		l.op(&t)
	}
	t.End = l.off
	t.Text = l.src[t.Start:t.End]
	if t.Kind == TIdent || t.Kind == TOp || t.Kind == TNumber || t.Kind == TTimespan {
		t.Val = t.Text
	}
	return t
}

// wildcardContext reports whether a `*` right after an identifier belongs to it
// (`union Device*`) rather than being multiplication (`2*x`): multiplication in rules
// is nearly always written with a number or a space on one side.
func (l *Lexer) wildcardContext() bool {
	next := l.peekRune(1)
	return next == -1 || isSpace(next) || next == ',' || next == ')' || next == '|' || next == ';' || next == '_' || unicode.IsLetter(next)
}

// quotedIdentAhead reports whether `[` starts a quoted identifier: `['x']` with a
// single string inside. `['a','b']` (a list) is not one.
func (l *Lexer) quotedIdentAhead() bool {
	i := l.off + 1
	for i < len(l.src) && (l.src[i] == ' ' || l.src[i] == '\t') {
		i++
	}
	if i >= len(l.src) || (l.src[i] != '\'' && l.src[i] != '"') {
		return false
	}
	q := l.src[i]
	i++
	for i < len(l.src) && l.src[i] != q && l.src[i] != '\n' {
		if l.src[i] == '\\' {
			i++
		}
		i++
	}
	if i >= len(l.src) || l.src[i] != q {
		return false
	}
	i++
	for i < len(l.src) && (l.src[i] == ' ' || l.src[i] == '\t') {
		i++
	}
	return i < len(l.src) && l.src[i] == ']'
}

// quoted lexes '...' or "..." (verbatim: backslashes are literal, a doubled quote is
// one quote). An unterminated string ends at the end of the line, reported.
func (l *Lexer) quoted(t *Token, verbatim bool) {
	t.Kind = TString
	q := l.advance()
	var b strings.Builder
	for {
		if l.off >= len(l.src) || l.peekRune(0) == '\n' {
			l.errf(t, "unterminated string")
			t.Val = b.String()
			return
		}
		r := l.advance()
		switch {
		case r == q && verbatim && l.peekRune(0) == q:
			l.advance()
			b.WriteRune(q)
		case r == q:
			t.Val = b.String()
			return
		case r == '\\' && !verbatim:
			if l.off >= len(l.src) {
				b.WriteRune('\\')
				continue
			}
			e := l.advance()
			switch e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case '\\', '\'', '"':
				b.WriteRune(e)
			default:
				// Kusto rejects unknown escapes; keep both characters so the value
				// still reads as the author meant (often a Windows path).
				b.WriteRune('\\')
				b.WriteRune(e)
			}
		default:
			b.WriteRune(r)
		}
	}
}

// multiline lexes a ```...``` string: verbatim, may span lines.
func (l *Lexer) multiline(t *Token) {
	t.Kind = TString
	for i := 0; i < 3; i++ {
		l.advance()
	}
	start := l.off
	end := strings.Index(l.src[l.off:], "```")
	if end < 0 {
		l.errf(t, "unterminated ``` string")
		for l.off < len(l.src) {
			l.advance()
		}
		t.Val = l.src[start:]
		return
	}
	for l.off < start+end {
		l.advance()
	}
	t.Val = l.src[start:l.off]
	for i := 0; i < 3; i++ {
		l.advance()
	}
}

// timespanUnits are the suffixes that turn a number into a timespan literal.
var timespanUnits = []string{"microseconds", "microsecond", "milliseconds", "millisecond", "seconds", "second",
	"minutes", "minute", "hours", "hour", "days", "day", "ticks", "tick", "micros", "micro", "millis", "milli",
	"ms", "min", "sec", "d", "h", "m", "s"}

func (l *Lexer) number(t *Token) {
	t.Kind = TNumber
	if l.peekRune(0) == '0' && (l.peekRune(1) == 'x' || l.peekRune(1) == 'X') {
		l.advance()
		l.advance()
		for isHex(l.peekRune(0)) {
			l.advance()
		}
		return
	}
	for unicode.IsDigit(l.peekRune(0)) {
		l.advance()
	}
	if l.peekRune(0) == '.' && unicode.IsDigit(l.peekRune(1)) {
		l.advance()
		for unicode.IsDigit(l.peekRune(0)) {
			l.advance()
		}
	}
	if (l.peekRune(0) == 'e' || l.peekRune(0) == 'E') && (unicode.IsDigit(l.peekRune(1)) ||
		((l.peekRune(1) == '-' || l.peekRune(1) == '+') && unicode.IsDigit(l.peekRune(2)))) {
		l.advance()
		l.advance()
		for unicode.IsDigit(l.peekRune(0)) {
			l.advance()
		}
		return
	}
	rest := l.src[l.off:]
	for _, u := range timespanUnits {
		if len(rest) >= len(u) && strings.EqualFold(rest[:len(u)], u) {
			after, _ := utf8.DecodeRuneInString(rest[len(u):])
			if len(rest) == len(u) || !isIdentPart(after) {
				for range u {
					l.advance()
				}
				t.Kind = TTimespan
				return
			}
		}
	}
	// A number glued to letters (`2x`) is not KQL; swallow them so the parser
	// sees one odd token instead of two.
	for isIdentPart(l.peekRune(0)) {
		l.advance()
	}
}

func isHex(r rune) bool {
	return unicode.IsDigit(r) || (r >= 'a' && r <= 'f') || (r >= 'A' && r <= 'F')
}

// ops lists multi-character operators, longest first.
var ops = []string{"..", "==", "!=", "=~", "!~", "<=", ">=", "<>", "=>", "->"}

func (l *Lexer) op(t *Token) {
	rest := l.src[l.off:]
	for _, o := range ops {
		if strings.HasPrefix(rest, o) {
			for range o {
				l.advance()
			}
			t.Kind = TOp
			return
		}
	}
	r := l.advance()
	switch r {
	case '|', '(', ')', '[', ']', '{', '}', ',', ';', '.', '=', '<', '>', '+', '-', '*', '/', '%', ':', '!', '~', '?', '@', '#':
		t.Kind = TOp
	case '\u201C', '\u201D', '\u2018', '\u2019':
		// Typographic quotes from blog copy-paste: read as a string so the value survives.
		l.typographic(t, r)
	default:
		t.Kind = TIllegal
		l.errf(t, "unexpected character %q", r)
	}
}

func (l *Lexer) typographic(t *Token, open rune) {
	t.Kind = TString
	closeR := map[rune]rune{'\u201C': '\u201D', '\u201D': '\u201D', '\u2018': '\u2019', '\u2019': '\u2019'}[open]
	start := l.off
	for l.off < len(l.src) && l.peekRune(0) != closeR && l.peekRune(0) != '\n' {
		l.advance()
	}
	t.Val = l.src[start:l.off]
	if l.peekRune(0) == closeR {
		l.advance()
	} else {
		l.errf(t, "unterminated string")
	}
}
