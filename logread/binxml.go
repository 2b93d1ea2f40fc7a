package logread

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// BinXML decoding. A chunk's records are template instances: the template (an element
// tree with substitution slots) is defined once per chunk and compiled here into a flat
// op list; each record then only supplies typed values, which are formatted straight
// into the sink's arena. Nothing is allocated per record once a chunk's templates and
// names are known.

// BinXML value types (MS-EVEN6 2.2.19 / libevtx).
const (
	vtNull     = 0x00
	vtString   = 0x01
	vtAnsi     = 0x02
	vtInt8     = 0x03
	vtUint8    = 0x04
	vtInt16    = 0x05
	vtUint16   = 0x06
	vtInt32    = 0x07
	vtUint32   = 0x08
	vtInt64    = 0x09
	vtUint64   = 0x0a
	vtReal32   = 0x0b
	vtReal64   = 0x0c
	vtBool     = 0x0d
	vtBinary   = 0x0e
	vtGUID     = 0x0f
	vtSizeT    = 0x10
	vtFileTime = 0x11
	vtSysTime  = 0x12
	vtSID      = 0x13
	vtHex32    = 0x14
	vtHex64    = 0x15
	vtBinXML   = 0x21
	vtArray    = 0x80
)

type opKind uint8

const (
	opOpen opKind = iota
	opAttr
	opCloseStart
	opClose
	opText     // literal text in name
	opSubst    // normal substitution
	opOptSubst // optional substitution: a null value drops the attribute
)

type op struct {
	kind  opKind
	name  string
	sub   uint16
	vtype uint8
}

type template struct {
	ops []op
}

type value struct {
	typ  uint8
	off  int
	size int
}

var errShort = errors.New("unexpected end of data")

// maxDepth bounds nesting of BinXML values inside values (fuzzed input can nest freely).
const maxDepth = 8

// chunkDec decodes the records of one chunk at a time.
type chunkDec struct {
	b         []byte
	templates map[uint32]*template
	names     map[uint32]string
	scratch   []op
	vals      []value
	s         *sink
	depth     int
	budget    int // ops left for the current record
}

// recordBudget bounds the ops one record may execute: a template's slots can each
// hold BinXML that instantiates templates again, so crafted input could otherwise
// fan out exponentially within maxDepth.
const recordBudget = 1 << 16

func newChunkDec(s *sink) *chunkDec {
	return &chunkDec{templates: make(map[uint32]*template), names: make(map[uint32]string), s: s}
}

func (d *chunkDec) reset(b []byte) {
	d.b = b
	clear(d.templates)
	clear(d.names)
}

func (d *chunkDec) u8(off int) (uint8, error) {
	if off < 0 || off >= len(d.b) {
		return 0, errShort
	}
	return d.b[off], nil
}

func (d *chunkDec) u16(off int) (uint16, error) {
	if off < 0 || off+2 > len(d.b) {
		return 0, errShort
	}
	return binary.LittleEndian.Uint16(d.b[off:]), nil
}

func (d *chunkDec) u32(off int) (uint32, error) {
	if off < 0 || off+4 > len(d.b) {
		return 0, errShort
	}
	return binary.LittleEndian.Uint32(d.b[off:]), nil
}

// readName reads a name reference at off and returns the name and the offset after
// the reference (after the inline string when the name is defined right there).
func (d *chunkDec) readName(off int) (string, int, error) {
	ref, err := d.u32(off)
	if err != nil {
		return "", 0, err
	}
	off += 4
	name, ok := d.names[ref]
	if !ok {
		var size int
		name, size, err = d.nameAt(int(ref))
		if err != nil {
			return "", 0, fmt.Errorf("name at %#x: %w", ref, err)
		}
		d.names[ref] = name
		if int(ref) == off {
			return name, off + size, nil
		}
	} else if int(ref) == off {
		_, size, err := d.nameAt(int(ref))
		if err != nil {
			return "", 0, err
		}
		return name, off + size, nil
	}
	return name, off, nil
}

// nameAt decodes a chunk string (next offset u32, hash u16, length u16, UTF-16, NUL).
func (d *chunkDec) nameAt(off int) (string, int, error) {
	n, err := d.u16(off + 6)
	if err != nil {
		return "", 0, err
	}
	start := off + 8
	end := start + int(n)*2
	if end+2 > len(d.b) {
		return "", 0, errShort
	}
	d.s.scratch = appendUTF16(d.s.scratch[:0], d.b[start:end])
	return d.s.name(d.s.scratch), 8 + int(n)*2 + 2, nil
}

// compile turns the BinXML at off (up to end) into ops, appending to ops. It stops at
// EOF, at end, or at a template instance (errNested, at its token).
//
// inTemplate tells whether the BinXML is a template definition's body: only there does
// an OpenStartElement carry a 2-byte dependency id. Template-less records (forwarded
// events as Windows Event Collector stores them) and BinXML nested in a value (type
// 0x21, e.g. CAPI2's UserData) go straight to the data size.
func (d *chunkDec) compile(ops []op, off, end int, inTemplate bool) ([]op, int, error) {
	for off < end {
		tok := d.b[off]
		off++
		var err error
		switch tok {
		case 0x00:
			// Left for the caller: after EOF a record may hold padding, not tokens.
			return ops, off - 1, nil
		case 0x01, 0x41:
			// [dependency id u16], data size u32, name, [attribute list size u32]
			if inTemplate {
				off += 2
			}
			var name string
			name, off, err = d.readName(off + 4)
			if err != nil {
				return ops, off, err
			}
			if tok == 0x41 {
				off += 4
			}
			ops = append(ops, op{kind: opOpen, name: name})
		case 0x02:
			ops = append(ops, op{kind: opCloseStart})
		case 0x03, 0x04:
			ops = append(ops, op{kind: opClose})
		case 0x05, 0x45:
			var vt uint8
			if vt, err = d.u8(off); err != nil {
				return ops, off, err
			}
			if vt != vtString {
				return ops, off, fmt.Errorf("value token of type %#x at %#x", vt, off)
			}
			var text string
			text, off, err = d.prefixedText(off + 1)
			if err != nil {
				return ops, off, err
			}
			ops = append(ops, op{kind: opText, name: text})
		case 0x06, 0x46:
			var name string
			name, off, err = d.readName(off)
			if err != nil {
				return ops, off, err
			}
			ops = append(ops, op{kind: opAttr, name: name})
		case 0x07, 0x47:
			var text string
			text, off, err = d.prefixedText(off)
			if err != nil {
				return ops, off, err
			}
			ops = append(ops, op{kind: opText, name: text})
		case 0x08, 0x48:
			var c uint16
			if c, err = d.u16(off); err != nil {
				return ops, off, err
			}
			off += 2
			ops = append(ops, op{kind: opText, name: string(rune(c))})
		case 0x09, 0x49:
			var name string
			name, off, err = d.readName(off)
			if err != nil {
				return ops, off, err
			}
			ops = append(ops, op{kind: opText, name: entity(name)})
		case 0x0a:
			if _, off, err = d.readName(off); err != nil {
				return ops, off, err
			}
		case 0x0b:
			if _, off, err = d.prefixedText(off); err != nil {
				return ops, off, err
			}
		case 0x0c:
			return ops, off - 1, errNested
		case 0x0d, 0x0e:
			var id uint16
			if id, err = d.u16(off); err != nil {
				return ops, off, err
			}
			var vt uint8
			if vt, err = d.u8(off + 2); err != nil {
				return ops, off, err
			}
			off += 3
			k := opSubst
			if tok == 0x0e {
				k = opOptSubst
			}
			ops = append(ops, op{kind: k, sub: id, vtype: vt})
		case 0x0f:
			off += 3
		default:
			return ops, off - 1, fmt.Errorf("unknown BinXML token %#x at %#x", tok, off-1)
		}
	}
	return ops, off, nil
}

// errNested marks a template instance met while compiling a plain fragment.
var errNested = errors.New("template instance")

func entity(name string) string {
	switch name {
	case "amp":
		return "&"
	case "lt":
		return "<"
	case "gt":
		return ">"
	case "quot":
		return `"`
	case "apos":
		return "'"
	}
	return "&" + name + ";"
}

func (d *chunkDec) prefixedText(off int) (string, int, error) {
	n, err := d.u16(off)
	if err != nil {
		return "", 0, err
	}
	start := off + 2
	end := start + int(n)*2
	if end > len(d.b) {
		return "", 0, errShort
	}
	return string(appendUTF16(nil, d.b[start:end])), end, nil
}

// fragment decodes a BinXML fragment at off..end into the sink.
func (d *chunkDec) fragment(off, end int) error {
	if d.depth >= maxDepth {
		return fmt.Errorf("BinXML nested deeper than %d at %#x", maxDepth, off)
	}
	d.depth++
	defer func() { d.depth-- }()
	for off < end {
		tok := d.b[off]
		switch tok {
		case 0x0f:
			off += 4
			continue
		case 0x00:
			return nil
		case 0x0c:
			var err error
			off, err = d.instance(off + 1)
			if err != nil {
				return err
			}
			continue
		}
		// Plain elements outside a template (rare): compile into scratch and run.
		start := len(d.scratch)
		ops, next, err := d.compile(d.scratch, off, end, false)
		d.scratch = ops
		if err != nil && err != errNested {
			d.scratch = d.scratch[:start]
			return err
		}
		// Execution may recurse into fragment, which appends to scratch beyond ops.
		err2 := d.exec(ops[start:], nil)
		d.scratch = d.scratch[:start]
		if err2 != nil {
			return err2
		}
		if next <= off {
			return fmt.Errorf("BinXML made no progress at %#x", off)
		}
		off = next
	}
	return nil
}

// instance decodes a template instance whose header starts at off (after the token).
func (d *chunkDec) instance(off int) (int, error) {
	// unknown u8, template id u32, definition offset u32
	defOff32, err := d.u32(off + 5)
	if err != nil {
		return off, fmt.Errorf("template instance at %#x: %w", off-1, err)
	}
	defOff := int(defOff32)
	off += 9
	t, ok := d.templates[defOff32]
	if !ok {
		// Definition: next offset u32, GUID, data size u32, body.
		size, err := d.u32(defOff + 20)
		if err != nil {
			return off, fmt.Errorf("template definition at %#x: %w", defOff, err)
		}
		body := defOff + 24
		bodyEnd := body + int(size)
		if bodyEnd > len(d.b) || bodyEnd < body {
			return off, fmt.Errorf("template definition at %#x: body of %d bytes beyond chunk", defOff, size)
		}
		ops, _, err := d.compile(make([]op, 0, 96), body, bodyEnd, true)
		if err != nil {
			return off, fmt.Errorf("template definition at %#x: %w", defOff, err)
		}
		t = &template{ops: ops}
		d.templates[defOff32] = t
	}
	if defOff == off {
		size, _ := d.u32(defOff + 20)
		off = defOff + 24 + int(size)
	}
	n32, err := d.u32(off)
	if err != nil {
		return off, fmt.Errorf("template values at %#x: %w", off, err)
	}
	n := int(n32)
	off += 4
	if n > (len(d.b)-off)/4 {
		return off, fmt.Errorf("template instance at %#x: %d values cannot fit in the chunk", off-4, n)
	}
	base := len(d.vals)
	data := off + 4*n
	for i := 0; i < n; i++ {
		size, _ := d.u16(off + 4*i)
		typ, _ := d.u8(off + 4*i + 2)
		d.vals = append(d.vals, value{typ: typ, off: data, size: int(size)})
		data += int(size)
	}
	if data > len(d.b) {
		d.vals = d.vals[:base]
		return off, fmt.Errorf("template values at %#x run past the chunk end", off)
	}
	err = d.exec(t.ops, d.vals[base:])
	d.vals = d.vals[:base]
	return data, err
}

// exec runs ops against vals into the sink.
func (d *chunkDec) exec(ops []op, vals []value) error {
	s := d.s
	d.budget -= len(ops)
	if d.budget < 0 {
		return errors.New("record expands to too many elements")
	}
	for i := range ops {
		o := &ops[i]
		switch o.kind {
		case opOpen:
			s.open(o.name)
		case opAttr:
			s.attr(o.name)
		case opCloseStart:
			s.closeStart()
		case opClose:
			s.close()
		case opText:
			s.textString(o.name)
		case opSubst, opOptSubst:
			if int(o.sub) >= len(vals) {
				continue
			}
			v := vals[o.sub]
			if v.typ == vtNull || (v.size == 0 && v.typ != vtString) {
				if s.inAttr {
					s.inAttr = false // a null attribute is not rendered
				}
				continue
			}
			if err := d.value(v); err != nil {
				return err
			}
		}
	}
	return nil
}

// value formats one substitution value into the sink.
func (d *chunkDec) value(v value) error {
	s := d.s
	b := d.b[v.off : v.off+v.size]
	if v.typ == vtBinXML {
		return d.fragment(v.off, v.off+v.size)
	}
	if v.typ&vtArray != 0 {
		return d.array(v.typ&^vtArray, b)
	}
	s.valueStart()
	var ok bool
	s.arena, ok = appendValue(s.arena, v.typ, b)
	if !ok {
		return fmt.Errorf("value of type %#x has bad size %d at %#x", v.typ, v.size, v.off)
	}
	return nil
}

// array renders array values as repeated elements (evtx_dump renders a JSON array,
// which the JSON reader turns into repeated fields too).
func (d *chunkDec) array(typ uint8, b []byte) error {
	s := d.s
	first := true
	next := func() {
		if !first && !s.inAttr && len(s.stack) > 0 {
			name := s.stack[len(s.stack)-1].name
			s.close()
			s.open(name)
		}
		first = false
		s.valueStart()
	}
	switch typ {
	case vtString:
		for i := 0; i+1 < len(b); {
			j := i
			for j+1 < len(b) && (b[j] != 0 || b[j+1] != 0) {
				j += 2
			}
			next()
			s.arena = appendUTF16(s.arena, b[i:j])
			i = j + 2
		}
		return nil
	case vtSID:
		for len(b) >= 8 {
			n := 8 + 4*int(b[1])
			if n > len(b) {
				return errShort
			}
			next()
			s.arena, _ = appendValue(s.arena, vtSID, b[:n])
			b = b[n:]
		}
		return nil
	}
	w := fixedSize(typ)
	if w == 0 {
		return fmt.Errorf("array of type %#x", typ)
	}
	for ; len(b) >= w; b = b[w:] {
		next()
		s.arena, _ = appendValue(s.arena, typ, b[:w])
	}
	return nil
}

func fixedSize(typ uint8) int {
	switch typ {
	case vtInt8, vtUint8:
		return 1
	case vtInt16, vtUint16:
		return 2
	case vtInt32, vtUint32, vtHex32, vtReal32, vtBool:
		return 4
	case vtInt64, vtUint64, vtHex64, vtReal64, vtFileTime:
		return 8
	case vtGUID, vtSysTime:
		return 16
	}
	return 0
}

const hexUpper = "0123456789ABCDEF"

// timeLayout matches evtx_dump's rendering (microseconds, Z), so EVTX and the JSON
// export of the same record give the same TimeCreated.
const timeLayout = "2006-01-02T15:04:05.000000Z"

// appendValue formats a scalar value the way evtx_dump does: integers in decimal,
// HexInt32/64 as 0x-prefixed lower-case hex, GUIDs upper-case in braces (Windows'
// spelling; evtx_dump drops the braces, see JSONReader), binary as
// upper-case hex, times in RFC 3339 UTC with microseconds.
func appendValue(dst []byte, typ uint8, b []byte) ([]byte, bool) {
	le := binary.LittleEndian
	need := fixedSize(typ)
	if need != 0 && len(b) < need {
		return dst, false
	}
	switch typ {
	case vtString:
		// evtx_dump (and so chainsaw, hayabusa and SigmaHQ's regression data) trims
		// trailing whitespace from string values; do the same so EVTX and its JSON
		// export agree and `endswith` rules behave alike on both.
		n := len(dst)
		dst = appendUTF16(dst, b)
		for len(dst) > n && isSpace(dst[len(dst)-1]) {
			dst = dst[:len(dst)-1]
		}
		return dst, true
	case vtAnsi:
		for len(b) > 0 && b[len(b)-1] == 0 {
			b = b[:len(b)-1]
		}
		return append(dst, b...), true
	case vtInt8:
		return strconv.AppendInt(dst, int64(int8(b[0])), 10), true
	case vtUint8:
		return strconv.AppendUint(dst, uint64(b[0]), 10), true
	case vtInt16:
		return strconv.AppendInt(dst, int64(int16(le.Uint16(b))), 10), true
	case vtUint16:
		return strconv.AppendUint(dst, uint64(le.Uint16(b)), 10), true
	case vtInt32:
		return strconv.AppendInt(dst, int64(int32(le.Uint32(b))), 10), true
	case vtUint32:
		return strconv.AppendUint(dst, uint64(le.Uint32(b)), 10), true
	case vtInt64:
		return strconv.AppendInt(dst, int64(le.Uint64(b)), 10), true
	case vtUint64:
		return strconv.AppendUint(dst, le.Uint64(b), 10), true
	case vtReal32:
		return strconv.AppendFloat(dst, float64(math.Float32frombits(le.Uint32(b))), 'g', -1, 32), true
	case vtReal64:
		return strconv.AppendFloat(dst, math.Float64frombits(le.Uint64(b)), 'g', -1, 64), true
	case vtBool:
		return strconv.AppendBool(dst, le.Uint32(b) != 0), true
	case vtBinary:
		for _, c := range b {
			dst = append(dst, hexUpper[c>>4], hexUpper[c&15])
		}
		return dst, true
	case vtGUID:
		// Braced, as Windows renders GUIDs and as rules write them (4719
		// SubcategoryGuid '{0CCE9210-...}').
		dst = append(dst, '{')
		dst = appendHex(dst, uint64(le.Uint32(b)), 8)
		dst = append(dst, '-')
		dst = appendHex(dst, uint64(le.Uint16(b[4:])), 4)
		dst = append(dst, '-')
		dst = appendHex(dst, uint64(le.Uint16(b[6:])), 4)
		dst = append(dst, '-')
		for i, c := range b[8:16] {
			if i == 2 {
				dst = append(dst, '-')
			}
			dst = append(dst, hexUpper[c>>4], hexUpper[c&15])
		}
		return append(dst, '}'), true
	case vtSizeT:
		switch len(b) {
		case 4:
			return strconv.AppendUint(append(dst, "0x"...), uint64(le.Uint32(b)), 16), true
		case 8:
			return strconv.AppendUint(append(dst, "0x"...), le.Uint64(b), 16), true
		}
		return dst, false
	case vtFileTime:
		return appendFileTime(dst, le.Uint64(b)), true
	case vtSysTime:
		t := time.Date(int(le.Uint16(b)), time.Month(le.Uint16(b[2:])), int(le.Uint16(b[6:])),
			int(le.Uint16(b[8:])), int(le.Uint16(b[10:])), int(le.Uint16(b[12:])),
			int(le.Uint16(b[14:]))*int(time.Millisecond), time.UTC)
		return t.AppendFormat(dst, timeLayout), true
	case vtSID:
		if len(b) < 8 || len(b) < 8+4*int(b[1]) {
			return dst, false
		}
		dst = append(dst, "S-"...)
		dst = strconv.AppendUint(dst, uint64(b[0]), 10)
		var auth uint64
		for _, c := range b[2:8] {
			auth = auth<<8 | uint64(c)
		}
		dst = append(dst, '-')
		dst = strconv.AppendUint(dst, auth, 10)
		for i := 0; i < int(b[1]); i++ {
			dst = append(dst, '-')
			dst = strconv.AppendUint(dst, uint64(le.Uint32(b[8+4*i:])), 10)
		}
		return dst, true
	case vtHex32:
		return strconv.AppendUint(append(dst, "0x"...), uint64(le.Uint32(b)), 16), true
	case vtHex64:
		return strconv.AppendUint(append(dst, "0x"...), le.Uint64(b), 16), true
	}
	// Unknown types (EvtHandle, EvtXml, ...): keep printable bytes, as velocidex does.
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return append(dst, b...), true
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func appendHex(dst []byte, v uint64, digits int) []byte {
	for i := digits - 1; i >= 0; i-- {
		dst = append(dst, hexUpper[(v>>(4*uint(i)))&15])
	}
	return dst
}

// appendFileTime formats a FILETIME (100 ns since 1601) in UTC.
func appendFileTime(dst []byte, ft uint64) []byte {
	const epochDelta = 116444736000000000 // 1601-01-01 to 1970-01-01 in 100 ns
	t := time.Unix(0, 0).UTC()
	if ft >= epochDelta {
		d := ft - epochDelta
		t = time.Unix(int64(d/1e7), int64(d%1e7)*100).UTC()
	} else {
		d := epochDelta - ft
		t = time.Unix(-int64(d/1e7), -int64(d%1e7)*100).UTC()
	}
	return t.AppendFormat(dst, timeLayout)
}

// appendUTF16 decodes UTF-16LE, dropping trailing NULs (strings are often stored with
// their terminator).
func appendUTF16(dst []byte, b []byte) []byte {
	n := len(b) &^ 1
	for n >= 2 && b[n-1] == 0 && b[n-2] == 0 {
		n -= 2
	}
	// ASCII fast path: most event text is ASCII; write into grown capacity directly.
	dst = slices.Grow(dst, n/2)
	j := len(dst)
	dst = dst[:j+n/2]
	i := 0
	for ; i < n; i += 2 {
		if b[i+1] != 0 || b[i] >= utf8.RuneSelf {
			break
		}
		dst[j] = b[i]
		j++
	}
	dst = dst[:j]
	for ; i < n; i += 2 {
		c := uint16(b[i]) | uint16(b[i+1])<<8
		switch {
		case c < utf8.RuneSelf:
			dst = append(dst, byte(c))
		case utf16.IsSurrogate(rune(c)):
			r := utf8.RuneError
			if i+3 < n {
				c2 := uint16(b[i+2]) | uint16(b[i+3])<<8
				if r2 := utf16.DecodeRune(rune(c), rune(c2)); r2 != utf8.RuneError {
					r = r2
					i += 2
				}
			}
			dst = utf8.AppendRune(dst, r)
		default:
			dst = utf8.AppendRune(dst, rune(c))
		}
	}
	return dst
}
