package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"
)

// Rule files and event logs are untrusted: a title holding "\e]0;pwned\a" must not
// retitle the user's terminal, nor "\e[2J" clear it. Every human-readable byte the CLI
// prints passes through escapeText: C0 controls other than newline and tab, DEL and
// C1 controls become \u00XX, invalid UTF-8 bytes \xXX. The \u form of a control is
// also a valid JSON escape of the same character, so text that happens to be JSON
// keeps its meaning. Bidirectional overrides are escaped too. Machine-readable output
// (--json, --csv) is written unescaped.

// escapeText returns s with every control character but \n and \t made visible.
func escapeText(s string) string {
	if clean(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case isControl(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func isControl(r rune) bool {
	switch {
	case r < 0x20:
		return r != '\n' && r != '\t'
	case r >= 0x7f && r < 0xa0:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		// Bidirectional overrides and isolates reorder the rest of the line on screen,
		// so a title could show other text than it holds.
		return true
	}
	return false
}

// clean reports whether s needs no escaping (the common case, checked cheaply).
func clean(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 {
			return utf8.ValidString(s[i:]) && !strings.ContainsFunc(s[i:], isControl)
		}
		if isControl(rune(c)) {
			return false
		}
	}
	return true
}

// escaper is an io.Writer that escapes what passes through it. A multi-byte character
// split across two writes is held back until its end arrives (or Flush).
type escaper struct {
	w       io.Writer
	raw     bool
	pending []byte
}

func newEscaper(w io.Writer) *escaper { return &escaper{w: w} }

func (e *escaper) Write(p []byte) (int, error) {
	if e.raw {
		return e.w.Write(p)
	}
	buf := append(e.pending, p...)
	e.pending = nil
	// Hold back an incomplete character at the end (at most 3 bytes).
	cut := len(buf)
	for i := len(buf) - 1; i >= 0 && i >= len(buf)-3; i-- {
		if utf8.RuneStart(buf[i]) {
			if buf[i] >= 0x80 && !utf8.FullRune(buf[i:]) {
				cut = i
			}
			break
		}
	}
	e.pending = append(e.pending, buf[cut:]...)
	if _, err := io.WriteString(e.w, escapeText(string(buf[:cut]))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes a held-back partial character (escaped: it is invalid).
func (e *escaper) Flush() error {
	if len(e.pending) == 0 {
		return nil
	}
	_, err := io.WriteString(e.w, escapeText(string(e.pending)))
	e.pending = nil
	return err
}

func init() {
	// Machine-readable output stays exact: JSON encoders already escape C0 controls, and
	// CSV is data.
	root.PersistentPreRun = func(cmd *cobra.Command, args []string) {
		for _, name := range []string{"json", "csv"} {
			if f := cmd.Flags().Lookup(name); f != nil && f.Value.String() == "true" {
				if e, ok := root.OutOrStdout().(*escaper); ok {
					e.raw = true
				} else {
					cmd.SetOut(os.Stdout)
				}
			}
		}
	}
}
