package sigma

import (
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxRender bounds a stage text, so YAML aliases cannot blow it up.
const maxRender = 1 << 20

// render writes a selection back as Sigma YAML for a stage's Text: keys and values in
// the order written, strings single-quoted, numbers and booleans bare, lists at their
// key's indentation, two-space indents. It is a normal form, so the same selection reads
// the same on every page whatever quoting its author used.
func (d *docCtx) render(s *selection) string {
	if s == nil {
		return ""
	}
	var b strings.Builder
	b.WriteString(s.name)
	b.WriteByte(':')
	renderValue(&b, s.val, "", 0)
	return b.String()
}

// renderValue writes v after a "key:" already written, with the key at indent.
func renderValue(b *strings.Builder, v *yaml.Node, indent string, depth int) {
	if v = resolve(v); cutShort(b, v, depth) {
		return
	}
	switch v.Kind {
	case yaml.ScalarNode:
		b.WriteByte(' ')
		b.WriteString(scalarText(v))
	case yaml.SequenceNode:
		if len(v.Content) == 0 {
			b.WriteString(" []")
			return
		}
		for _, c := range v.Content {
			b.WriteByte('\n')
			b.WriteString(indent)
			b.WriteString("-")
			renderItem(b, c, indent+"  ", depth+1)
		}
	case yaml.MappingNode:
		if len(v.Content) == 0 {
			b.WriteString(" {}")
			return
		}
		inner := indent + "  "
		for i := 0; i+1 < len(v.Content); i += 2 {
			b.WriteByte('\n')
			b.WriteString(inner)
			b.WriteString(keyText(v.Content[i]))
			b.WriteByte(':')
			renderValue(b, v.Content[i+1], inner, depth+1)
		}
	}
}

// renderItem writes one list item after its "-"; indent is where a mapping item's
// further keys go.
func renderItem(b *strings.Builder, v *yaml.Node, indent string, depth int) {
	if v = resolve(v); cutShort(b, v, depth) {
		return
	}
	switch v.Kind {
	case yaml.MappingNode:
		if len(v.Content) == 0 {
			b.WriteString(" {}")
			return
		}
		for i := 0; i+1 < len(v.Content); i += 2 {
			if i == 0 {
				b.WriteByte(' ')
			} else {
				b.WriteByte('\n')
				b.WriteString(indent)
			}
			b.WriteString(keyText(v.Content[i]))
			b.WriteByte(':')
			renderValue(b, v.Content[i+1], indent, depth+1)
		}
	case yaml.SequenceNode:
		if len(v.Content) == 0 {
			b.WriteString(" []")
			return
		}
		for i, c := range v.Content {
			if i == 0 {
				b.WriteByte(' ')
			} else {
				b.WriteByte('\n')
				b.WriteString(indent)
			}
			b.WriteString("-")
			renderItem(b, c, indent+"  ", depth+1)
		}
	default:
		b.WriteByte(' ')
		b.WriteString(scalarText(v))
	}
}

// keyText writes a mapping key plainly when YAML allows it, else quoted.
func keyText(k *yaml.Node) string {
	if k.Kind != yaml.ScalarNode {
		return "?"
	}
	if plainSafe(k.Value) {
		return k.Value
	}
	return singleQuote(k.Value)
}

func plainSafe(s string) bool {
	if s == "" || s != strings.TrimSpace(s) || strings.ContainsAny(s[:1], "-?:,[]{}#&*!|>'\"%@`") {
		return false
	}
	return !strings.Contains(s, ": ") && !strings.Contains(s, " #") && !strings.ContainsAny(s, "\n\t") && !strings.HasSuffix(s, ":")
}

// scalarText renders a value: strings single-quoted (double-quoted when they hold
// characters single quotes cannot carry), other types as written.
func scalarText(v *yaml.Node) string {
	switch v.Tag {
	case "!!null":
		return "null"
	case "!!int", "!!float", "!!bool":
		return v.Value
	}
	for _, r := range v.Value {
		if r == '\n' || r == '\r' || r == '\t' || r < 0x20 || r == 0x7f {
			return doubleQuote(v.Value)
		}
	}
	return singleQuote(v.Value)
}

func singleQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

func doubleQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 || r == 0x7f {
				b.WriteString(`\x`)
				b.WriteByte("0123456789abcdef"[r>>4])
				b.WriteByte("0123456789abcdef"[r&15])
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// cutShort writes the stand-in for a missing node or for output past the depth and size
// bounds (alias bombs), and reports whether it did.
func cutShort(b *strings.Builder, v *yaml.Node, depth int) bool {
	switch {
	case v == nil:
		b.WriteString(" null")
	case depth > 20 || b.Len() > maxRender:
		b.WriteString(" ...")
	default:
		return false
	}
	return true
}
