package catalog

import (
	"slices"
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
	var d [5]string
	copy(d[:], cols)
	return buildDocSnippet(newFTSDoc(d), newTermScanner(terms))
}

// buildDocSnippet is buildSnippet over a document read for snippets, with the scanner
// of the search's terms (one for all its hits).
func buildDocSnippet(d *ftsDoc, sc *termScanner) string {
	if len(sc.terms) == 0 {
		return ""
	}
	return snippetFrom(d, sc.terms, sc.colHits(d))
}

// colHits is where the search terms match in each column of a document: how many words,
// and where the first one starts.
type colHits [5]struct{ n, first int32 }

// colHits scans every column of d.
func (sc *termScanner) colHits(d *ftsDoc) colHits {
	var h colHits
	for c, text := range d.cols {
		var hits, at int
		if sc.ascii && (d.lower[c] != "" || text == "") {
			hits, at = sc.countLower(d.lower[c])
		} else {
			hits, at = sc.count(text)
		}
		h[c].n, h[c].first = int32(hits), int32(at)
	}
	return h
}

// separable reports whether the terms' hits in a column are the sums of each term's
// own (and the first the earliest of theirs): with whole-word terms only, all ASCII
// and all different, no word matches two terms, so none is counted twice. The hits of
// one term in one document can then be kept and reused by every search that has it.
func separable(terms []snippetTerm) bool {
	for i, t := range terms {
		if t.prefix || t.tok == "" || !isASCII(t.tok) {
			return false
		}
		for _, u := range terms[:i] {
			if u.tok == t.tok {
				return false
			}
		}
	}
	return true
}

// addHits adds one term's hits to those of the others.
func (h *colHits) add(o colHits) {
	for c := range h {
		if o[c].n == 0 {
			continue
		}
		if h[c].n == 0 || o[c].first < h[c].first {
			h[c].first = o[c].first
		}
		h[c].n += o[c].n
	}
}

// snippetFrom builds the snippet of d from its terms' hits: buildSnippet's choice of
// column and window.
func snippetFrom(d *ftsDoc, terms []snippetTerm, h colHits) string {
	best, bestHits, first := -1, 0, 0
	for c := range d.cols {
		if hits := int(h[c].n); hits > bestHits {
			best, bestHits, first = c, hits, int(h[c].first)
		}
	}
	if best < 0 {
		return ""
	}
	text := d.cols[best]
	// Up to a window of words on each side of the first match (one more, to know
	// whether the text goes on), then two before it and the rest after, more before
	// when the text ends early.
	// Words before the match are read only as far as needed: the window takes two
	// (three tell whether there are more), unless the text ends early after it.
	var back, fwd [snippetWindow + 1]token
	nb, nf := 0, 0
	backTo := func(limit int) {
		end := first
		if nb > 0 {
			end = back[nb-1].start
		}
		for nb < limit {
			start, e := prevWord(text, end)
			if start < 0 {
				break
			}
			back[nb] = token{text[start:e], start, e}
			nb++
			end = start
		}
	}
	backTo(3)
	for start, end := nextWord(text, first); start >= 0 && nf < len(fwd); start, end = nextWord(text, end) {
		fwd[nf] = token{text[start:end], start, end}
		nf++
	}
	takeF := min(nf, snippetWindow-min(2, nb))
	if nb == 3 {
		backTo(snippetWindow - takeF + 1)
	}
	takeB := min(nb, snippetWindow-takeF)
	var win [snippetWindow]token
	n := 0
	for i := takeB - 1; i >= 0; i-- {
		win[n] = back[i]
		n++
	}
	n += copy(win[n:], fwd[:takeF])
	var b strings.Builder
	b.Grow(128)
	pos := 0
	if nb > takeB {
		b.WriteString("…")
		pos = win[0].start
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
	if nf > takeF {
		b.WriteString("…")
	} else {
		writeSpaced(&b, text[pos:])
	}
	return strings.TrimSpace(b.String())
}

// prevWord returns the bounds of the last word of s ending at or before byte end;
// start is -1 when there is none.
func prevWord(s string, end int) (start, e int) {
	i := end
	for i > 0 {
		ok, n := isWordBefore(s, i)
		if ok {
			break
		}
		i -= n
	}
	if i == 0 {
		return -1, 0
	}
	e = i
	for i > 0 {
		ok, n := isWordBefore(s, i)
		if !ok {
			break
		}
		i -= n
	}
	return i, e
}

// isWordBefore reports whether the character ending at s[i-1] is a letter or digit, and
// its size in bytes (isWordAt backwards).
func isWordBefore(s string, i int) (bool, int) {
	if c := s[i-1]; c < utf8.RuneSelf {
		return wordByte[c], 1
	}
	r, n := utf8.DecodeLastRuneInString(s[:i])
	return unicode.IsLetter(r) || unicode.IsDigit(r), n
}

// termScanner counts the matches of the search terms in a text. With ASCII terms
// (nearly every search) it jumps from one possible first letter to the next and checks
// word boundaries around a candidate, instead of cutting the whole text into words.
type termScanner struct {
	terms []snippetTerm
	ascii bool
	start [256]bool // first bytes of the terms, both cases
}

func newTermScanner(terms []snippetTerm) *termScanner {
	sc := &termScanner{terms: terms, ascii: true}
	for _, t := range terms {
		if t.tok == "" || !isASCII(t.tok) {
			sc.ascii = false
			continue
		}
		c := t.tok[0]
		sc.start[c] = true
		if 'a' <= c && c <= 'z' {
			sc.start[c-'a'+'A'] = true
		}
	}
	return sc
}

// countLower is count over ASCII text already lower-cased: each term is found with
// strings.Index (vectorized) and kept where it starts a word and, unless a prefix,
// ends one. A word matching two terms counts once.
func (sc *termScanner) countLower(lower string) (hits, first int) {
	first = -1
	var at []int // match starts, with several terms
	for _, t := range sc.terms {
		for i := 0; ; {
			j := strings.Index(lower[i:], t.tok)
			if j < 0 {
				break
			}
			p, end := i+j, i+j+len(t.tok)
			i = p + 1
			if p > 0 && wordByte[lower[p-1]] || !t.prefix && end < len(lower) && wordByte[lower[end]] {
				continue
			}
			if len(sc.terms) > 1 {
				at = append(at, p)
				continue
			}
			if first < 0 {
				first = p
			}
			hits++
		}
	}
	if len(at) > 0 {
		slices.Sort(at)
		at = slices.Compact(at)
		hits, first = len(at), at[0]
	}
	return hits, first
}

// count returns how many words of text match a term and where the first one starts.
func (sc *termScanner) count(text string) (hits, first int) {
	first = -1
	if !sc.ascii {
		for start, end := nextWord(text, 0); start >= 0; start, end = nextWord(text, end) {
			if matchesAny(sc.terms, text[start:end]) {
				if first < 0 {
					first = start
				}
				hits++
			}
		}
		return hits, first
	}
	for i := 0; i < len(text); {
		if !sc.start[text[i]] {
			i++
			continue
		}
		if i > 0 {
			if r, _ := utf8.DecodeLastRuneInString(text[:i]); unicode.IsLetter(r) || unicode.IsDigit(r) {
				_, i = nextWord(text, i) // inside a word: no term starts here
				continue
			}
		}
		_, end := nextWord(text, i)
		if matchesAny(sc.terms, text[i:end]) {
			if first < 0 {
				first = i
			}
			hits++
		}
		i = end
	}
	return hits, first
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
