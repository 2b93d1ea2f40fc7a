package spl

import "strings"

// The text-level scanner knows only the constructs that hide a pipe or a backtick from
// the rest of SPL: double-quoted strings, ```comments```, `macro calls` and
// [subsearches]. Everything finer is left to the per-command lexer, which runs after
// macro expansion.

// skipString returns the index just past the double-quoted string starting at s[i]
// (s[i] == '"'). Backslash escapes the next character. An unterminated string runs to
// the end of s.
func skipString(s string, i int) int {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(s)
}

// isComment reports whether s[i:] opens an SPL comment (three backticks).
func isComment(s string, i int) bool {
	return strings.HasPrefix(s[i:], "```")
}

// skipComment returns the index just past the comment opening at s[i].
func skipComment(s string, i int) int {
	if j := strings.Index(s[i+3:], "```"); j >= 0 {
		return i + 3 + j + 3
	}
	return len(s)
}

// skipMacro returns the index just past the macro call opening at s[i] (a single
// backtick). Quoted strings inside the arguments may hold backticks.
func skipMacro(s string, i int) int {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '"':
			j = skipString(s, j) - 1
		case '`':
			return j + 1
		}
	}
	return len(s)
}

// skipSubsearch returns the index just past the bracketed subsearch opening at s[i].
func skipSubsearch(s string, i int) int {
	depth := 0
	for j := i; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case '"':
			j = skipString(s, j) - 1
		case '`':
			if isComment(s, j) {
				j = skipComment(s, j) - 1
			} else {
				j = skipMacro(s, j) - 1
			}
		case '[':
			depth++
		case ']':
			depth--
			if depth == 0 {
				return j + 1
			}
		}
	}
	return len(s)
}

// segment is one pipeline command: s[Start:End] of the expanded search, pipes excluded.
type segment struct{ Start, End int }

// splitPipes cuts s at the pipes that are outside strings, comments, macro calls and
// subsearches.
func splitPipes(s string) []segment {
	var out []segment
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++ // an escaped character outside quotes (`\"`) opens nothing
		case '"':
			i = skipString(s, i) - 1
		case '`':
			if isComment(s, i) {
				i = skipComment(s, i) - 1
			} else {
				i = skipMacro(s, i) - 1
			}
		case '[':
			i = skipSubsearch(s, i) - 1
		case '|':
			out = append(out, segment{start, i})
			start = i + 1
		}
	}
	return append(out, segment{start, len(s)})
}

// unescape removes SPL's backslash escapes for a backslash and a double quote; any other
// backslash is literal (Windows paths are written `C:\\Windows` or `C:\Windows`).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '\\' || s[i+1] == '"') {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
