package catalog

import (
	"strings"
	"unicode"
)

// Snippets are built here rather than with FTS5's snippet(): that function needs the
// full-text query evaluated again for the shown rows, which costs a third of a search.
// The document columns are read by rowid (a plain lookup) and marked in Go the way
// the unicode61 tokenizer sees words: runs of letters and digits, compared folded.

// snippetTerm is one searched token; prefix matches any token it starts.
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

func tokenize(s string) []token {
	var out []token
	start := -1
	for i, r := range s {
		word := unicode.IsLetter(r) || unicode.IsDigit(r)
		switch {
		case word && start < 0:
			start = i
		case !word && start >= 0:
			out = append(out, token{s[start:i], start, i})
			start = -1
		}
	}
	if start >= 0 {
		out = append(out, token{s[start:], start, len(s)})
	}
	return out
}

func (t snippetTerm) matches(tok string) bool {
	tok = strings.ToLower(tok)
	if t.prefix {
		return strings.HasPrefix(tok, t.tok)
	}
	return tok == t.tok
}

// snippetWindow is how many tokens a snippet shows.
const snippetWindow = 12

// buildSnippet picks the column with the most matching tokens (the first on a tie) and
// returns about snippetWindow tokens around its first match, each match between
// SnippetMark and SnippetEnd, "…" where the text was cut; "" when no column matches.
func buildSnippet(cols []string, terms []snippetTerm) string {
	best, bestHits := -1, 0
	var bestToks []token
	for c, text := range cols {
		toks := tokenize(text)
		hits := 0
		for _, tk := range toks {
			for _, t := range terms {
				if t.matches(tk.s) {
					hits++
					break
				}
			}
		}
		if hits > bestHits {
			best, bestHits, bestToks = c, hits, toks
		}
	}
	if best < 0 {
		return ""
	}
	text, toks := cols[best], bestToks
	first := 0
	for i, tk := range toks {
		if matchesAny(terms, tk.s) {
			first = i
			break
		}
	}
	from := max(0, first-2)
	to := min(len(toks), from+snippetWindow)
	from = max(0, min(from, to-snippetWindow))
	var b strings.Builder
	if from > 0 {
		b.WriteString("…")
	}
	pos := toks[from].start
	if from == 0 {
		pos = 0
	}
	for i := from; i < to; i++ {
		tk := toks[i]
		b.WriteString(text[pos:tk.start])
		if matchesAny(terms, tk.s) {
			b.WriteString(SnippetMark + tk.s + SnippetEnd)
		} else {
			b.WriteString(tk.s)
		}
		pos = tk.end
	}
	if to == len(toks) {
		b.WriteString(text[pos:])
	} else {
		b.WriteString("…")
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

func matchesAny(terms []snippetTerm, tok string) bool {
	for _, t := range terms {
		if t.matches(tok) {
			return true
		}
	}
	return false
}
