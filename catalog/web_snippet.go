package catalog

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Snippets are built here rather than with FTS5's snippet(): that function needs the
// full-text query evaluated again for the shown rows, which costs a third of a search.
// The document columns are read by rowid (a plain lookup) and marked in Go the way
// the unicode61 tokenizer sees words: runs of letters and digits, compared folded.
//
// A page of results scans about fifty documents, some of them hundreds of KB of values,
// so the scan allocates nothing per token: words are found in place and compared
// folded byte by byte (ASCII; other text falls back to strings.ToLower).

// snippetTerm is one searched token, lower-cased; prefix matches any token it starts.
type snippetTerm struct {
	tok    string
	prefix bool
}

// snippetTerms lists the positive search tokens of text (exclusions are not shown).
func snippetTerms(text string) []snippetTerm {
	var out []snippetTerm
	for _, it := range lexSearch(text) {
		if it.op != "" || it.neg {
			continue
		}
		toks := tokenize(it.words)
		for i, t := range toks {
			out = append(out, snippetTerm{tok: strings.ToLower(t.s), prefix: it.prefix && i == len(toks)-1})
		}
	}
	return out
}

type token struct {
	s          string
	start, end int // byte offsets in the text
}

// tokenize lists the words of a short text (a query).
func tokenize(s string) []token {
	var out []token
	for start, end := nextWord(s, 0); start >= 0; start, end = nextWord(s, end) {
		out = append(out, token{s[start:end], start, end})
	}
	return out
}

// wordByte marks the ASCII bytes that are letters or digits.
var wordByte = func() (t [utf8.RuneSelf]bool) {
	for c := range utf8.RuneSelf {
		t[c] = unicode.IsLetter(rune(c)) || unicode.IsDigit(rune(c))
	}
	return t
}()

// isWordAt reports whether a letter or digit starts at s[i], and its size in bytes.
func isWordAt(s string, i int) (bool, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return wordByte[c], 1
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	return unicode.IsLetter(r) || unicode.IsDigit(r), n
}

// nextWord returns the bounds of the first word of s at or after byte from; start is
// -1 when there is none.
func nextWord(s string, from int) (start, end int) {
	i := from
	for i < len(s) {
		ok, n := isWordAt(s, i)
		if ok {
			break
		}
		i += n
	}
	if i >= len(s) {
		return -1, len(s)
	}
	start = i
	for i < len(s) {
		ok, n := isWordAt(s, i)
		if !ok {
			break
		}
		i += n
	}
	return start, i
}

// matches reports whether the word tok is t, compared folded.
func (t snippetTerm) matches(tok string) bool {
	if !t.prefix && len(tok) != len(t.tok) || len(tok) < len(t.tok) {
		// Lower-casing keeps the length of ASCII text; other text is compared below.
		if isASCII(tok) {
			return false
		}
		return t.matchesSlow(tok)
	}
	for i := 0; i < len(t.tok); i++ {
		c := tok[i]
		if c >= utf8.RuneSelf || t.tok[i] >= utf8.RuneSelf {
			return t.matchesSlow(tok)
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != t.tok[i] {
			return false
		}
	}
	return t.prefix || len(tok) == len(t.tok)
}

func (t snippetTerm) matchesSlow(tok string) bool {
	tok = strings.ToLower(tok)
	if t.prefix {
		return strings.HasPrefix(tok, t.tok)
	}
	return tok == t.tok
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// snippetWindow is how many tokens a snippet shows.
const snippetWindow = 12

// buildSnippet picks the column with the most matching tokens (the first on a tie) and
// returns about snippetWindow tokens around its first match, each match between
// SnippetMark and SnippetEnd, "…" where the text was cut; "" when no column matches.
func buildSnippet(cols []string, terms []snippetTerm) string {
	if len(terms) == 0 {
		return ""
	}
	best, bestHits, bestToks, bestFirst := -1, 0, 0, 0
	for c, text := range cols {
		hits, ntoks, first := 0, 0, -1
		for start, end := nextWord(text, 0); start >= 0; start, end = nextWord(text, end) {
			if matchesAny(terms, text[start:end]) {
				if first < 0 {
					first = ntoks
				}
				hits++
			}
			ntoks++
		}
		if hits > bestHits {
			best, bestHits, bestToks, bestFirst = c, hits, ntoks, first
		}
	}
	if best < 0 {
		return ""
	}
	text := cols[best]
	from := max(0, bestFirst-2)
	to := min(bestToks, from+snippetWindow)
	from = max(0, min(from, to-snippetWindow))
	var win [snippetWindow]token
	n := 0
	for i, start, end := 0, 0, 0; n < to-from; i++ {
		start, end = nextWord(text, end)
		if i >= from {
			win[n] = token{text[start:end], start, end}
			n++
		}
	}
	var b strings.Builder
	b.Grow(128)
	if from > 0 {
		b.WriteString("…")
	}
	pos := win[0].start
	if from == 0 {
		pos = 0
	}
	for _, tk := range win[:n] {
		writeSpaced(&b, text[pos:tk.start])
		if matchesAny(terms, tk.s) {
			b.WriteString(SnippetMark)
			b.WriteString(tk.s)
			b.WriteString(SnippetEnd)
		} else {
			b.WriteString(tk.s)
		}
		pos = tk.end
	}
	if to == bestToks {
		writeSpaced(&b, text[pos:])
	} else {
		b.WriteString("…")
	}
	return strings.TrimSpace(b.String())
}

// writeSpaced writes s with each run of white space as one space (snippets are one line).
func writeSpaced(b *strings.Builder, s string) {
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) {
			space = true
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	if space {
		b.WriteByte(' ')
	}
}

func matchesAny(terms []snippetTerm, tok string) bool {
	for _, t := range terms {
		if t.matches(tok) {
			return true
		}
	}
	return false
}
