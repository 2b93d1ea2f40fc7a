package web

import (
	"html/template"
	"regexp"
	"strings"
)

// Rule prose (Elastic investigation guides, ESCU how_to_implement, Sentinel
// descriptions) is Markdown written by strangers. markdownHTML renders the part of
// Markdown such prose uses — headings, paragraphs, nested lists, fenced code, block
// quotes, emphasis, inline code and links — and nothing else: every character of the
// input reaches the page escaped, raw HTML included, and only absolute http(s) links
// become anchors. Anything it does not understand stays visible as text.

// maxMarkdown bounds the input rendered as Markdown; beyond it the text is shown as a
// plain preformatted block (no legitimate rule has a guide that long).
const maxMarkdown = 64 << 10

// maxInlineDepth bounds nested emphasis and link text, so hostile input cannot recurse deeply.
const maxInlineDepth = 6

var (
	mdHeading = regexp.MustCompile(`^(#{1,6})[ \t]+(.*?)[ \t#]*$`)
	mdItem    = regexp.MustCompile(`^([ \t]*)([-*+]|\d{1,9}[.)])[ \t]+(.*)$`)
	mdFence   = regexp.MustCompile("^[ \t]*(```|~~~)")
	mdRule    = regexp.MustCompile(`^[ \t]*([-*_])([ \t]*([-*_])){2,}[ \t]*$`)
)

// markdownHTML renders src (see above). Headings start at h3: the prose sits in a
// section whose title is an h2.
func markdownHTML(src string) template.HTML {
	if len(src) > maxMarkdown {
		return template.HTML("<pre>" + template.HTMLEscapeString(src) + "</pre>")
	}
	var r mdRenderer
	r.render(strings.Split(strings.ReplaceAll(src, "\r\n", "\n"), "\n"))
	return template.HTML(r.b.String())
}

// markdownInline renders one line of prose (a description) with inline Markdown only.
func markdownInline(src string) template.HTML {
	if len(src) > maxMarkdown {
		return template.HTML(template.HTMLEscapeString(src))
	}
	var b strings.Builder
	inline(&b, src, 0)
	return template.HTML(b.String())
}

type mdList struct {
	indent  int
	ordered bool
}

type mdRenderer struct {
	b     strings.Builder
	para  []string
	lists []mdList // open lists, outermost first; an <li> is open in each
}

func (r *mdRenderer) flushPara() {
	if len(r.para) == 0 {
		return
	}
	text := strings.Join(r.para, " ")
	r.para = r.para[:0]
	if len(r.lists) > 0 {
		// Text continuing a list item belongs to the item.
		inline(&r.b, text, 0)
		return
	}
	r.b.WriteString("<p>")
	inline(&r.b, text, 0)
	r.b.WriteString("</p>\n")
}

func (r *mdRenderer) closeLists(toDepth int) {
	for len(r.lists) > toDepth {
		l := r.lists[len(r.lists)-1]
		r.lists = r.lists[:len(r.lists)-1]
		if l.ordered {
			r.b.WriteString("</li></ol>\n")
		} else {
			r.b.WriteString("</li></ul>\n")
		}
	}
}

func (r *mdRenderer) closeAll() {
	r.flushPara()
	r.closeLists(0)
}

func indentWidth(s string) int {
	n := 0
	for _, c := range s {
		if c == '\t' {
			n += 4
		} else {
			n++
		}
	}
	return n
}

func (r *mdRenderer) render(lines []string) {
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "":
			r.flushPara()
			// A blank line ends a list unless the next line continues it (indented or another item).
			if len(r.lists) > 0 {
				next := ""
				if i+1 < len(lines) {
					next = lines[i+1]
				}
				if !mdItem.MatchString(next) && indentWidth(leading(next)) <= r.lists[0].indent {
					r.closeLists(0)
				}
			}
		case mdFence.MatchString(line):
			r.closeAll()
			fence := mdFence.FindStringSubmatch(line)[1]
			r.b.WriteString("<pre><code>")
			for i++; i < len(lines); i++ {
				if strings.HasPrefix(strings.TrimSpace(lines[i]), fence) {
					break
				}
				r.b.WriteString(template.HTMLEscapeString(lines[i]))
				r.b.WriteByte('\n')
			}
			r.b.WriteString("</code></pre>\n")
		case mdRule.MatchString(line) && !mdItem.MatchString(line):
			r.closeAll()
			r.b.WriteString("<hr>\n")
		case mdHeading.MatchString(trimmed):
			r.closeAll()
			m := mdHeading.FindStringSubmatch(trimmed)
			level := min(len(m[1])+2, 6)
			tag := "h" + string(rune('0'+level))
			r.b.WriteString("<" + tag + ">")
			inline(&r.b, m[2], 0)
			r.b.WriteString("</" + tag + ">\n")
		case strings.HasPrefix(trimmed, ">"):
			r.closeAll()
			var quote []string
			for ; i < len(lines); i++ {
				t := strings.TrimSpace(lines[i])
				if !strings.HasPrefix(t, ">") {
					i--
					break
				}
				quote = append(quote, strings.TrimSpace(strings.TrimPrefix(t, ">")))
			}
			r.b.WriteString("<blockquote><p>")
			inline(&r.b, strings.Join(quote, " "), 0)
			r.b.WriteString("</p></blockquote>\n")
		case mdItem.MatchString(line):
			m := mdItem.FindStringSubmatch(line)
			r.flushPara()
			ind := indentWidth(m[1])
			ordered := m[2] != "-" && m[2] != "*" && m[2] != "+"
			// Close lists nested deeper than this item.
			for len(r.lists) > 0 && r.lists[len(r.lists)-1].indent > ind {
				r.closeLists(len(r.lists) - 1)
			}
			if n := len(r.lists); n > 0 && r.lists[n-1].indent == ind && r.lists[n-1].ordered == ordered {
				r.b.WriteString("</li>\n<li>")
			} else {
				if n > 0 && r.lists[n-1].indent == ind {
					r.closeLists(n - 1) // the other kind of list at the same depth
				}
				r.lists = append(r.lists, mdList{indent: ind, ordered: ordered})
				if ordered {
					r.b.WriteString("<ol>\n<li>")
				} else {
					r.b.WriteString("<ul>\n<li>")
				}
			}
			r.para = append(r.para, m[3])
		default:
			if len(r.lists) > 0 && indentWidth(leading(line)) == 0 && len(r.para) == 0 {
				// An unindented line after a finished item starts a paragraph.
				r.closeLists(0)
			}
			r.para = append(r.para, trimmed)
		}
	}
	r.closeAll()
}

func leading(s string) string { return s[:len(s)-len(strings.TrimLeft(s, " \t"))] }

// inline renders emphasis, code spans, links and bare URLs of s into b, escaping
// everything else.
func inline(b *strings.Builder, s string, depth int) {
	last := map[string]int{}
	lastOf := func(d string) int {
		if v, ok := last[d]; ok {
			return v
		}
		v := strings.LastIndex(s, d)
		last[d] = v
		return v
	}
	text := 0 // start of pending plain text
	flush := func(to int) {
		if to > text {
			b.WriteString(template.HTMLEscapeString(s[text:to]))
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && strings.IndexByte("\\`*_[]()#+-.!<>", s[i+1]) >= 0:
			flush(i)
			b.WriteString(template.HTMLEscapeString(s[i+1 : i+2]))
			i += 2
			text = i
			continue
		case c == '`':
			n := 1
			for i+n < len(s) && s[i+n] == '`' {
				n++
			}
			delim := s[i : i+n]
			if end := strings.Index(s[i+n:], delim); lastOf(delim) > i && end >= 0 {
				flush(i)
				b.WriteString("<code>")
				b.WriteString(string(softBreaks(strings.TrimSpace(s[i+n : i+n+end]))))
				b.WriteString("</code>")
				i += n + end + n
				text = i
				continue
			}
			i += n
			continue
		case (c == '*' || c == '_') && depth < maxInlineDepth:
			if c == '_' && i > 0 && isWordByte(s[i-1]) {
				break // snake_case, not emphasis
			}
			n := 1
			if i+1 < len(s) && s[i+1] == c {
				n = 2
			}
			delim := s[i : i+n]
			if i+n < len(s) && s[i+n] != ' ' && lastOf(delim) > i+n {
				if end := strings.Index(s[i+n:], delim); end > 0 && s[i+n+end-1] != ' ' &&
					(c != '_' || i+n+end+n >= len(s) || !isWordByte(s[i+n+end+n])) {
					flush(i)
					tag := "em"
					if n == 2 {
						tag = "strong"
					}
					b.WriteString("<" + tag + ">")
					inline(b, s[i+n:i+n+end], depth+1)
					b.WriteString("</" + tag + ">")
					i += n + end + n
					text = i
					continue
				}
			}
			i += n
			continue
		case c == '[' && depth < maxInlineDepth:
			if lastOf("](") < i {
				break
			}
			if close := strings.Index(s[i:], "]("); close > 0 && lastOf(")") > i+close {
				label := s[i+1 : i+close]
				if end := strings.IndexByte(s[i+close+2:], ')'); end >= 0 && !strings.Contains(label, "[") {
					target := strings.TrimSpace(s[i+close+2 : i+close+2+end])
					if sp := strings.IndexAny(target, " \t"); sp >= 0 {
						target = target[:sp] // drop a "title"
					}
					target = strings.Trim(target, "<>")
					flush(i)
					if u := safeURL(target); u != "" {
						b.WriteString(`<a href="` + template.HTMLEscapeString(u) + `" rel="nofollow noopener noreferrer">`)
						inline(b, label, depth+1)
						b.WriteString("</a>")
					} else {
						// Not a web link (javascript:, relative): show both parts as text.
						inline(b, label, depth+1)
						if target != "" {
							b.WriteString(" (" + template.HTMLEscapeString(target) + ")")
						}
					}
					i += close + 2 + end + 1
					text = i
					continue
				}
			}
		case c == 'h' && (strings.HasPrefix(s[i:], "https://") || strings.HasPrefix(s[i:], "http://")) &&
			(i == 0 || !isWordByte(s[i-1])):
			end := i
			for end < len(s) && s[end] > ' ' && s[end] != '<' && s[end] != '>' && s[end] != '"' {
				end++
			}
			u := strings.TrimRight(s[i:end], ".,;:!?)'")
			if safeURL(u) != "" {
				flush(i)
				b.WriteString(`<a href="` + template.HTMLEscapeString(safeURL(u)) + `" rel="nofollow noopener noreferrer">`)
				b.WriteString(template.HTMLEscapeString(u))
				b.WriteString("</a>")
				i += len(u)
				text = i
				continue
			}
		}
		i++
	}
	flush(len(s))
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
