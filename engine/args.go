package engine

import "strings"

// argsFields are array fields holding a process's arguments (ECS process.args). A
// Windows event has no such array, only the command line: there the arguments are the
// command line split as CommandLineToArgvW splits it, so an EQL
// `process.args : "-enc"` runs on Sysmon 1 and Security 4688 events too.
var argsFields = map[string]bool{"process.args": true}

// commandLineFields are where the command line to split is looked for, in order
// (Sysmon and 4688 CommandLine, ECS process.command_line).
var commandLineFields = []string{"CommandLine", "process.command_line"}

// splitArgs splits a Windows command line into arguments the way CommandLineToArgvW
// does: the program name ends at the first whitespace, or is the quoted text when it
// starts with a quote; after it, whitespace outside quotes separates arguments, 2n
// backslashes before a quote give n backslashes and toggle quoting, 2n+1 give n and a
// literal quote, a doubled quote inside quotes is a literal quote, and other
// backslashes are literal.
func splitArgs(s string) []string {
	var out []string
	i := 0
	// Program name: no escapes.
	if i < len(s) && s[i] == '"' {
		j := strings.IndexByte(s[i+1:], '"')
		if j < 0 {
			return append(out, s[i+1:])
		}
		out = append(out, s[i+1:i+1+j])
		i += j + 2
	} else {
		j := strings.IndexAny(s, " \t")
		if j < 0 {
			return append(out, s)
		}
		out = append(out, s[:j])
		i = j
	}
	var b strings.Builder
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i >= len(s) {
			return out
		}
		b.Reset()
		quoted := false
		for i < len(s) {
			c := s[i]
			switch {
			case c == '\\':
				n := 0
				for i < len(s) && s[i] == '\\' {
					n++
					i++
				}
				if i < len(s) && s[i] == '"' {
					b.WriteString(strings.Repeat(`\`, n/2))
					if n%2 == 1 {
						b.WriteByte('"')
						i++
					}
				} else {
					b.WriteString(strings.Repeat(`\`, n))
				}
				continue
			case c == '"':
				if quoted && i+1 < len(s) && s[i+1] == '"' {
					b.WriteByte('"')
					i += 2
					continue
				}
				quoted = !quoted
				i++
				continue
			case (c == ' ' || c == '\t') && !quoted:
			default:
				b.WriteByte(c)
				i++
				continue
			}
			break
		}
		out = append(out, b.String())
	}
}
