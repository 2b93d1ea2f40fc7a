package logread

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"
)

// The fast JSON decoder walks an event's bytes once, feeding the sink as it goes,
// instead of building a fastjson tree and visiting it (which cost twice the time:
// every value parsed into the tree, keys unescaped in a second pass, a closure per
// member). It accepts a strict subset of what fastjson accepts and, on that subset,
// must give exactly the events of JSONReader.event (the reference): same fields, same
// order, same values. Anything outside the subset makes it decline (return false),
// and the caller decodes the value with the tree decoder, which then decides between
// an event and a located error. FuzzJSONFastSameAsTree holds it to that.
//
// Declined, all rare in real logs: keys with escapes (fastjson's Get compares raw
// keys before unescaped ones), objects or arrays where a scalar is expected (the tree
// re-marshals them), "#attributes" after another member of an element (the tree
// applies it first), numbers that are not a digit run (inf, nan, a lone sign), depth
// beyond maxFastDepth, and any syntax error.

// maxFastDepth bounds nesting well below fastjson's MaxDepth (300), so that the tree
// decoder, not this one, reports too-deep values.
const maxFastDepth = 100

type fastDec struct {
	b     []byte
	i     int
	depth int
	s     *sink
	// keys holds the dotted names of nested flat members ("winlog.event_data.X"): one
	// buffer reused across events, a prefix per nesting level.
	keys []byte
}

// fastEvent decodes the object b (trailing blanks allowed) into ev; false when the
// fast decoder declines, leaving ev to the tree decoder.
func (j *JSONReader) fastEvent(b []byte) bool {
	d := &j.fast
	d.b, d.i, d.depth, d.s, d.keys = b, 0, 0, j.s, d.keys[:0]
	ok := d.event()
	d.b = nil
	return ok
}

func (d *fastDec) ws() {
	if d.i < len(d.b) && d.b[d.i] > ' ' {
		return // compact JSON lines have no blanks
	}
	d.wsSlow()
}

func (d *fastDec) wsSlow() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\r', '\n':
			d.i++
		default:
			return
		}
	}
}

// event decodes the top-level object: the evtx_dump shape when its first "Event"
// member is an object (the other members are then ignored, as the tree's Get/Visit
// do), else a flat object. Flat members before "Event" are dropped again when it
// turns out to be the evtx_dump shape.
func (d *fastDec) event() bool {
	s := d.s
	d.ws()
	if d.i >= len(d.b) || d.b[d.i] != '{' {
		return false
	}
	d.i++
	d.depth = 1
	seenEvent, nested := false, false
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++
	} else {
		for {
			k, ok := d.key()
			if !ok {
				return false
			}
			d.ws()
			if d.i >= len(d.b) {
				return false
			}
			switch {
			case nested:
				if !d.skip() {
					return false
				}
			case !seenEvent && string(k) == "Event":
				seenEvent = true
				if d.b[d.i] == '{' {
					nested = true
					ev := s.ev
					ev.Fields = ev.Fields[:0]
					s.begin(ev)
					if !d.element("Event") {
						return false
					}
					break
				}
				if !d.flat(k, -1) {
					return false
				}
			case bytes.HasPrefix(k, []byte("Event.")):
				if !d.dotted(k) {
					return false
				}
			default:
				if !d.flat(k, -1) {
					return false
				}
			}
			if !d.sep('}') {
				return false
			}
			if d.b[d.i-1] == '}' {
				break
			}
		}
	}
	d.ws()
	if d.i != len(d.b) {
		return false
	}
	s.end()
	return true
}

// sep consumes blanks and then ',' or the closing byte; false on anything else.
func (d *fastDec) sep(close byte) bool {
	d.ws()
	if d.i >= len(d.b) {
		return false
	}
	c := d.b[d.i]
	if c != ',' && c != close {
		return false
	}
	d.i++
	if c == ',' {
		d.ws()
	}
	return true
}

// key reads a member name and its colon, leaving d.i at the value.
func (d *fastDec) key() ([]byte, bool) {
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return nil, false
	}
	raw, esc, ok := d.rawString()
	if !ok || esc {
		return nil, false
	}
	d.ws()
	if d.i >= len(d.b) || d.b[d.i] != ':' {
		return nil, false
	}
	d.i++
	d.ws()
	return raw, true
}

// rawString reads the string at d.i (on its quote) as fastjson delimits it: up to the
// first quote preceded by an even number of backslashes. esc tells whether the text
// holds a backslash (to unescape).
func (d *fastDec) rawString() (raw []byte, esc bool, ok bool) {
	start := d.i + 1
	// Names and values are mostly short: special's eight-bytes-at-a-time scan beats
	// IndexByte's set-up. A backslash sends the string to the slow path, which knows
	// escapes.
	k := d.special(start)
	if k >= len(d.b) {
		return nil, false, false
	}
	if d.b[k] == '\\' {
		return d.rawStringSlow(start)
	}
	d.i = k + 1
	return d.b[start:k], false, true
}

// special returns the index of the first quote or backslash in d.b at or after k,
// len(d.b) when there is none. Eight bytes at a time (SWAR): the lowest flagged byte
// is exact, borrows only flag bytes above it.
func (d *fastDec) special(k int) int {
	b := d.b
	for ; k+8 <= len(b); k += 8 {
		x := binary.LittleEndian.Uint64(b[k:])
		q := x ^ 0x2222222222222222
		e := x ^ 0x5c5c5c5c5c5c5c5c
		t := ((q - 0x0101010101010101) &^ q) | ((e - 0x0101010101010101) &^ e)
		if t &= 0x8080808080808080; t != 0 {
			return k + bits.TrailingZeros64(t)>>3
		}
	}
	for ; k < len(b); k++ {
		if c := b[k]; c == '"' || c == '\\' {
			return k
		}
	}
	return k
}

// appendString appends the string at d.i (on its quote) to dst, unescaped, in one
// pass: the same text as fastjson's delimiting (the first quote not escaped) followed
// by unescapeStringBestEffort (appendUnescaped), since escapes pair up the backslashes
// the delimiting counts, and a \u escape never reaches past the closing quote (a
// quote is not a hex digit, so such an escape stays as written in both).
func (d *fastDec) appendString(dst []byte) ([]byte, bool) {
	b := d.b
	run := d.i + 1
	for {
		k := d.special(run)
		if k >= len(b) {
			return dst, false
		}
		dst = append(dst, b[run:k]...)
		if b[k] == '"' {
			d.i = k + 1
			return dst, true
		}
		if k+1 >= len(b) {
			return dst, false
		}
		ch := b[k+1]
		k += 2
		switch ch {
		case '"', '\\', '/':
			dst = append(dst, ch)
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			x, ok := uint16(0), false
			if k+4 <= len(b) {
				x, ok = hex4(b[k : k+4])
			}
			if !ok {
				dst = append(dst, `\u`...)
				break
			}
			xs := b[k : k+4]
			k += 4
			if !utf16.IsSurrogate(rune(x)) {
				dst = utf8.AppendRune(dst, rune(x))
				break
			}
			x1, ok := uint16(0), false
			if k+6 <= len(b) && b[k] == '\\' && b[k+1] == 'u' {
				x1, ok = hex4(b[k+2 : k+6])
			}
			if !ok {
				dst = append(append(dst, `\u`...), xs...)
				break
			}
			dst = utf8.AppendRune(dst, utf16.DecodeRune(rune(x), rune(x1)))
			k += 6
		default:
			dst = append(dst, '\\', ch)
		}
		run = k
	}
}

func (d *fastDec) rawStringSlow(start int) (raw []byte, esc bool, ok bool) {
	k := start
	for {
		q := bytes.IndexByte(d.b[k:], '"')
		if q < 0 {
			return nil, false, false
		}
		q += k
		n := 0
		for p := q - 1; p >= start && d.b[p] == '\\'; p-- {
			n++
		}
		if n > 0 {
			esc = true
		}
		if n%2 == 0 {
			raw = d.b[start:q]
			d.i = q + 1
			if !esc {
				esc = bytes.IndexByte(raw, '\\') >= 0
			}
			return raw, esc, true
		}
		k = q + 1
	}
}

// number reads a number as fastjson delimits it (a run of digits, signs, dots and
// exponents), declining inf, nan and runs that do not start like a number.
func (d *fastDec) number() ([]byte, bool) {
	start := d.i
	k := start
	for k < len(d.b) {
		c := d.b[k]
		if (c >= '0' && c <= '9') || c == '.' || c == '-' || c == 'e' || c == 'E' || c == '+' {
			k++
			continue
		}
		break
	}
	if k == start {
		return nil, false
	}
	c := d.b[start]
	if !(c >= '0' && c <= '9') && !(c == '-' && k-start >= 2 && d.b[start+1] >= '0' && d.b[start+1] <= '9') {
		return nil, false
	}
	d.i = k
	return d.b[start:k], true
}

// literal consumes true, false or null at d.i; 0 when none is there.
func (d *fastDec) literal() byte {
	r := d.b[d.i:]
	switch {
	case len(r) >= 4 && string(r[:4]) == "true":
		d.i += 4
		return 't'
	case len(r) >= 5 && string(r[:5]) == "false":
		d.i += 5
		return 'f'
	case len(r) >= 4 && string(r[:4]) == "null":
		d.i += 4
		return 'n'
	}
	return 0
}

// skip consumes a value without using it, checking its syntax.
func (d *fastDec) skip() bool {
	if d.i >= len(d.b) {
		return false
	}
	switch c := d.b[d.i]; {
	case c == '{' || c == '[':
		close := byte('}')
		if c == '[' {
			close = ']'
		}
		if more, ok := d.enter(close); !more {
			return ok
		}
		for {
			if c == '{' {
				if _, ok := d.key(); !ok {
					return false
				}
			}
			if !d.skip() || !d.sep(close) {
				return false
			}
			if d.b[d.i-1] == close {
				d.depth--
				return true
			}
		}
	case c == '"':
		_, _, ok := d.rawString()
		return ok
	case c == 't' || c == 'f' || c == 'n':
		return d.literal() != 0
	default:
		_, ok := d.number()
		return ok
	}
}

// scalar is JSONReader.scalar over the value at d.i.
func (d *fastDec) scalar() bool {
	s := d.s
	switch c := d.b[d.i]; {
	case c == '"':
		start := s.valueStart()
		var ok bool
		if s.arena, ok = d.appendString(s.arena); !ok {
			return false
		}
		if isBareGUID(s.arena[start:]) {
			// evtx_dump writes GUIDs without the braces Windows and the rules use.
			s.arena = append(s.arena, 0)
			copy(s.arena[start+1:], s.arena[start:])
			s.arena[start] = '{'
			s.arena = append(s.arena, '}')
		}
		return true
	case c == 't' || c == 'f' || c == 'n':
		switch d.literal() {
		case 't':
			s.textString("true")
		case 'f':
			s.textString("false")
		case 'n':
		default:
			return false
		}
		return true
	case c == '{' || c == '[':
		return false // the tree re-marshals these
	default:
		num, ok := d.number()
		if !ok {
			return false
		}
		s.valueStart()
		s.arena = append(s.arena, num...)
		return true
	}
}

// isNull consumes null at d.i.
func (d *fastDec) isNull() bool {
	r := d.b[d.i:]
	if len(r) >= 4 && string(r[:4]) == "null" {
		d.i += 4
		return true
	}
	return false
}

// element is JSONReader.element over the value at d.i.
func (d *fastDec) element(name string) bool {
	s := d.s
	if d.i >= len(d.b) {
		return false
	}
	c := d.b[d.i]
	if c == '[' {
		if more, ok := d.enter(']'); !more {
			return ok
		}
		for {
			if !d.element(name) || !d.sep(']') {
				return false
			}
			if d.b[d.i-1] == ']' {
				d.depth--
				return true
			}
		}
	}
	s.open(name)
	if c != '{' {
		if !d.scalar() {
			return false
		}
		s.close()
		return true
	}
	if more, ok := d.enter('}'); !more {
		if !ok {
			return false
		}
		s.closeStart()
		s.close()
		return true
	}
	first, attrs := true, false
	for {
		k, ok := d.key()
		if !ok || d.i >= len(d.b) {
			return false
		}
		switch string(k) {
		case "#attributes":
			if !first && !attrs {
				return false // the tree applies it before the members before it
			}
			if attrs || d.b[d.i] != '{' {
				if !d.skip() {
					return false
				}
			} else if !d.attributes() {
				return false
			}
			attrs = true
		case "#text":
			if first {
				s.closeStart()
			}
			if d.b[d.i] == '[' {
				if !d.textArray(name) {
					return false
				}
			} else if !d.scalar() {
				return false
			}
		default:
			if first {
				s.closeStart()
			}
			if !d.element(s.name(k)) {
				return false
			}
		}
		first = false
		if !d.sep('}') {
			return false
		}
		if d.b[d.i-1] == '}' {
			break
		}
	}
	if first || attrs {
		s.closeStart() // harmless when already closed: nothing pending
	}
	d.depth--
	s.close()
	return true
}

// attributes reads an "#attributes" object: members in order, nulls left out.
func (d *fastDec) attributes() bool {
	s := d.s
	if more, ok := d.enter('}'); !more {
		if !ok {
			return false
		}
		s.closeStart()
		return true
	}
	for {
		k, ok := d.key()
		if !ok || d.i >= len(d.b) {
			return false
		}
		if !d.isNull() {
			s.attr(s.name(k))
			if !d.scalar() {
				return false
			}
		}
		if !d.sep('}') {
			return false
		}
		if d.b[d.i-1] == '}' {
			d.depth--
			s.closeStart()
			return true
		}
	}
}

// textArray is a "#text" array: each value after the first repeats the element.
func (d *fastDec) textArray(name string) bool {
	s := d.s
	if more, ok := d.enter(']'); !more {
		return ok
	}
	for n := 0; ; n++ {
		if d.i >= len(d.b) {
			return false
		}
		if n > 0 {
			s.close()
			s.open(name)
		}
		if !d.scalar() || !d.sep(']') {
			return false
		}
		if d.b[d.i-1] == ']' {
			d.depth--
			return true
		}
	}
}

// dotted is JSONReader.dotted over the value at d.i.
func (d *fastDec) dotted(k []byte) bool {
	s := d.s
	depth := 0
	for len(k) > 0 {
		part := k
		rest := []byte(nil)
		if i := bytes.IndexByte(k, '.'); i >= 0 {
			part, rest = k[:i], k[i+1:]
		}
		if string(part) == "#attributes" && len(rest) > 0 {
			s.attr(s.name(rest))
			if !d.scalar() {
				return false
			}
			s.closeStart()
			break
		}
		if len(rest) == 0 {
			if !d.element(s.name(part)) {
				return false
			}
			break
		}
		s.open(s.name(part))
		depth++
		k = rest
	}
	for ; depth > 0; depth-- {
		s.close()
	}
	return true
}

// flat is JSONReader.flat over the value at d.i. k may live in d.keys from keyAt on
// (the prefix of nested members).
func (d *fastDec) flat(k []byte, keyAt int) bool {
	s := d.s
	if d.i >= len(d.b) {
		return false
	}
	switch c := d.b[d.i]; {
	case c == '{':
		if more, ok := d.enter('}'); !more {
			return ok
		}
		// The members' names are k + "." + name, built in d.keys after the prefix
		// already there (k itself may be that prefix).
		base := len(d.keys)
		if keyAt < 0 || keyAt+len(k) != base {
			d.keys = append(d.keys, k...)
		}
		pre := len(d.keys)
		kstart := pre - len(k)
		for {
			k2, ok := d.key()
			if !ok || d.i >= len(d.b) {
				return false
			}
			d.keys = append(append(d.keys[:pre], '.'), k2...)
			if !d.flat(d.keys[kstart:], kstart) {
				return false
			}
			if !d.sep('}') {
				return false
			}
			if d.b[d.i-1] == '}' {
				break
			}
		}
		d.keys = d.keys[:base]
		d.depth--
		return true
	case c == '[':
		if more, ok := d.enter(']'); !more {
			return ok
		}
		for {
			if !d.flat(k, keyAt) || !d.sep(']') {
				return false
			}
			if d.b[d.i-1] == ']' {
				d.depth--
				return true
			}
		}
	case c == '"':
		start := len(s.arena)
		var ok bool
		if s.arena, ok = d.appendString(s.arena); !ok {
			return false
		}
		s.ev.Add(s.name(k), s.str(start))
		return true
	case c == 't' || c == 'f' || c == 'n':
		start := len(s.arena)
		switch d.literal() {
		case 't':
			s.arena = append(s.arena, "true"...)
		case 'f':
			s.arena = append(s.arena, "false"...)
		case 'n':
			s.ev.Add(s.name(k), "")
			return true
		default:
			return false
		}
		s.ev.Add(s.name(k), s.str(start))
		return true
	default:
		num, ok := d.number()
		if !ok {
			return false
		}
		start := len(s.arena)
		s.arena = append(s.arena, num...)
		s.ev.Add(s.name(k), s.str(start))
		return true
	}
}

// hex4 parses four hex digits, as strconv.ParseUint(s, 16, 16) does.
func hex4(s []byte) (uint16, bool) {
	var x uint16
	for _, c := range s[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		x = x<<4 | uint16(c)
	}
	return x, true
}

// enter steps into the array or object at d.i, whose closing byte is close: more is
// false when it is empty (then stepped over) or nested too deep (ok false).
func (d *fastDec) enter(close byte) (more, ok bool) {
	if d.depth++; d.depth > maxFastDepth {
		return false, false
	}
	d.i++
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == close {
		d.i++
		d.depth--
		return false, true
	}
	return true, true
}
