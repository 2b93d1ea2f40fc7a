package spl

import (
	"strconv"
	"strings"
)

type tokKind int

const (
	tEOF       tokKind = iota
	tWord              // unquoted run: a field, value, keyword or command word
	tString            // "double quoted"
	tQField            // 'single quoted' (an eval field name)
	tLParen            // (
	tRParen            // )
	tComma             // ,
	tOp                // = == != < <= > >= and, in eval mode, + - * / % . !
	tMacro             // `an unexpanded macro call`
	tSubsearch         // [ ... ]
)

// token is one lexeme of a command. Off and End are offsets in the expanded search.
type token struct {
	kind     tokKind
	text     string // as written (quotes included)
	off, end int
}

// val is the token's value: strings unquoted and unescaped, words unescaped.
func (t token) val() string {
	switch t.kind {
	case tString:
		s := t.text
		if len(s) >= 2 && strings.HasSuffix(s, `"`) && !strings.HasSuffix(s, `\"`) {
			s = s[1 : len(s)-1]
		} else {
			s = s[1:]
		}
		return unescape(s)
	case tQField:
		return strings.Trim(t.text, "'")
	case tWord:
		return unescape(t.text)
	}
	return t.text
}

// is reports whether t is the word w (case-insensitive), as SPL keywords are matched.
func (t token) is(w string) bool { return t.kind == tWord && strings.EqualFold(t.text, w) }

// isUpper reports whether t is exactly w: the search command's Boolean operators must
// be capitalized (a lower-case "or" is a search term).
func (t token) isUpper(w string) bool { return t.kind == tWord && t.text == w }

type lexMode int

const (
	searchMode lexMode = iota // the search command and tstats/stats arguments
	evalMode                  // where/eval expressions
)

// lex splits s (a command's text; base is its offset in the expanded search) into
// tokens. It never fails: unterminated constructs run to the end of s.
func lex(s string, base int, mode lexMode) []token {
	var toks []token
	emit := func(k tokKind, i, j int) {
		toks = append(toks, token{kind: k, text: s[i:j], off: base + i, end: base + j})
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '"':
			j := skipString(s, i)
			emit(tString, i, j)
			i = j
		case c == '`':
			if isComment(s, i) {
				i = skipComment(s, i)
				continue
			}
			j := skipMacro(s, i)
			emit(tMacro, i, j)
			i = j
		case c == '[':
			j := skipSubsearch(s, i)
			emit(tSubsearch, i, j)
			i = j
		case c == '(':
			emit(tLParen, i, i+1)
			i++
		case c == ')':
			emit(tRParen, i, i+1)
			i++
		case c == ',':
			emit(tComma, i, i+1)
			i++
		case c == '=' || c == '<' || c == '>' || (c == '!' && i+1 < len(s) && s[i+1] == '='):
			j := i + 1
			if j < len(s) && s[j] == '=' {
				j++
			}
			emit(tOp, i, j)
			i = j
		case mode == evalMode && c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				j = len(s)
			} else {
				j = i + 1 + j + 1
			}
			emit(tQField, i, j)
			i = j
		case mode == evalMode && !isEvalWordByte(c):
			emit(tOp, i, i+1)
			i++
		default:
			j := i
			if mode == evalMode {
				for j < len(s) && isEvalWordByte(s[j]) {
					j++
				}
			} else {
				for j < len(s) && isSearchWordByte(s, j) {
					if s[j] == '\\' && j+1 < len(s) {
						j++ // an escaped character never ends the word
					}
					j++
				}
			}
			if j == i { // cannot happen, but never loop forever
				j = i + 1
			}
			emit(tWord, i, j)
			i = j
		}
	}
	return toks
}

func isSearchWordByte(s string, j int) bool {
	switch s[j] {
	case ' ', '\t', '\n', '\r', '\f', '\v', '"', '(', ')', ',', '=', '<', '>', '`':
		return false
	case '!':
		return !(j+1 < len(s) && s[j+1] == '=')
	}
	return true
}

// isEvalWordByte: eval field names and numbers. A dot is kept inside words so data-model
// fields (Processes.process) stay whole; concatenation is written with spaces around it.
func isEvalWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '.' || c == '{' || c == '}' || c == '@' || c == '$' || c == ':' || c >= 0x80
}

func isNumber(s string) bool {
	if s == "" {
		return false
	}
	_, err := strconv.ParseFloat(s, 64)
	return err == nil && !strings.ContainsAny(s, "xXnN") // no hex floats, Inf or NaN
}
