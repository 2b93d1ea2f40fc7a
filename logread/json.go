package logread

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/valyala/fastjson"

	"github.com/ruledex/ruledex/event"
)

// JSONReader reads JSON events: evtx_dump-style objects ({"Event": {"System": ...,
// "EventData": ...}}) concatenated, in arrays, or one per line, and flat objects
// ({"EventID": 4688, "NewProcessName": ...}, nested objects flattened with dots).
// Keys written as "Event.EventData.X" or "Event.System.Provider.#attributes.Name" are
// routed like the nested form, so they get the same names as EVTX.
//
// The input is split into top-level values (a JSON line, else by a bracket scanner)
// and each value is decoded in one pass straight into the event (jsonfast.go); the
// few values that decoder declines are parsed by a fastjson.Parser owned by the
// reader and walked (event, the reference both must agree with). Use one reader per
// goroutine.
// A syntax error is reported with its line and byte offset and reading resumes at the
// next line that starts a value no deeper than the broken one.
type JSONReader struct {
	name   string
	r      io.Reader
	closer io.Closer

	buf   []byte
	start int   // first unconsumed byte in buf
	base  int64 // file offset of buf[0]
	line  int   // line number of buf[start]
	eof   bool
	rerr  error
	array bool // inside a top-level array

	p fastjson.Parser
	s *sink

	fast   fastDec
	noFast bool // tests: decode with the tree (the reference) only
}

// NewJSONReader reads JSON events from r; name is used in errors and events.
func NewJSONReader(name string, r io.Reader) *JSONReader {
	return &JSONReader{name: name, r: r, line: 1, s: newSink(), buf: make([]byte, 0, 64<<10)}
}

// NewJSONBytesReader reads JSON events from b without copying it (a batch of JSON
// lines already in memory). b must not change while the reader is in use.
func NewJSONBytesReader(name string, b []byte) *JSONReader {
	return &JSONReader{name: name, buf: b, eof: true, line: 1, s: newSink()}
}

// Close closes the underlying file when the reader opened it.
func (j *JSONReader) Close() error {
	if j.s != nil {
		j.s.release()
		j.s = nil
	}
	if j.closer != nil {
		return j.closer.Close()
	}
	return nil
}

// fill reads more input, compacting consumed bytes; false at end of input.
func (j *JSONReader) fill() bool {
	if j.eof {
		return false
	}
	if j.start > 0 && j.start >= len(j.buf)/2 {
		n := copy(j.buf, j.buf[j.start:])
		j.base += int64(j.start)
		j.buf = j.buf[:n]
		j.start = 0
	}
	if cap(j.buf)-len(j.buf) < 32<<10 {
		nb := make([]byte, len(j.buf), 2*cap(j.buf)+64<<10)
		copy(nb, j.buf)
		j.buf = nb
	}
	n, err := j.r.Read(j.buf[len(j.buf):cap(j.buf)])
	j.buf = j.buf[:len(j.buf)+n]
	if err != nil {
		j.eof = true
		if err != io.EOF {
			j.rerr = err
		}
	}
	return n > 0 || !j.eof
}

func (j *JSONReader) errAt(off int, err error) error {
	return &Error{File: j.name, Chunk: -1, Line: j.line + bytes.Count(j.buf[j.start:off], []byte{'\n'}),
		Offset: j.base + int64(off), Err: err}
}

// advance consumes buf[start:to], keeping the line count.
func (j *JSONReader) advance(to int) {
	j.line += bytes.Count(j.buf[j.start:to], []byte{'\n'})
	j.start = to
}

// Next reads the next event.
func (j *JSONReader) Next(ev *event.Event) error {
	if j.s == nil {
		return io.EOF // closed
	}
	for {
		// Skip blanks (and separators inside a top-level array).
		i := j.start
		for ; i < len(j.buf); i++ {
			c := j.buf[i]
			if c == ' ' || c == '\t' || c == '\r' || c == '\n' || (j.array && c == ',') {
				continue
			}
			if c == 0xef && i+2 < len(j.buf) && j.buf[i+1] == 0xbb && j.buf[i+2] == 0xbf {
				i += 2
				continue
			}
			break
		}
		j.advance(i)
		if i >= len(j.buf) {
			if j.rerr != nil {
				err := j.errAt(i, j.rerr)
				j.rerr = nil
				return err
			}
			if !j.fill() {
				return io.EOF
			}
			continue
		}
		switch c := j.buf[i]; {
		case c == '[' && !j.array:
			j.array = true
			j.advance(i + 1)
			continue
		case c == ']' && j.array:
			j.array = false
			j.advance(i + 1)
			continue
		case c == '{':
		case !j.array && j.scalarLine(i) != "":
			// A whole line holding a string, null, a number or a boolean where an event
			// belongs: in JSON lines that is one bad line. Report it and go on with the
			// next line, so that every such line is reported with its number (resync
			// would skip them unseen).
			err := j.errAt(i, fmt.Errorf("%s, want a JSON object", j.scalarLine(i)))
			j.skipLine(i)
			return err
		default:
			err := j.errAt(i, fmt.Errorf("unexpected %q, want a JSON object", c))
			j.resync(i)
			return err
		}
		// JSON lines: a line that holds exactly one object is parsed without the bracket
		// scan (fastjson checks it anyway). Where the scan would find the same end, as
		// it does for every valid object filling its line; anything else (pretty-printed
		// objects, two objects on a line, a syntax error) takes the scan.
		if nl := bytes.IndexByte(j.buf[i:], '\n'); nl > 0 {
			end := i + nl
			for end > i && (j.buf[end-1] == '\r' || j.buf[end-1] == ' ' || j.buf[end-1] == '\t') {
				end--
			}
			if j.buf[end-1] == '}' {
				if j.tryFast(ev, i, end) {
					j.start = end
					return nil
				}
				if v, err := j.p.ParseBytes(j.buf[i:end]); err == nil {
					ev.Reset()
					ev.File = j.name
					ev.Offset = j.base + int64(i)
					j.start = end // the line's newline is consumed as a blank
					j.s.begin(ev)
					j.event(v)
					return nil
				}
			}
		}
		end, ok := j.scan(i)
		if !ok {
			base := j.base
			if j.fill() {
				continue
			}
			i -= int(j.base - base) // fill may have compacted the buffer
			err := j.errAt(i, errors.New("unterminated JSON value at end of input"))
			j.resync(i)
			return err
		}
		if j.tryFast(ev, i, end) {
			j.advance(end)
			return nil
		}
		v, err := j.p.ParseBytes(j.buf[i:end])
		if err != nil {
			e := j.errAt(i, err)
			j.resync(i)
			return e
		}
		ev.Reset()
		ev.File = j.name
		ev.Offset = j.base + int64(i)
		j.advance(end)
		j.s.begin(ev)
		j.event(v)
		return nil
	}
}

// tryFast decodes the object buf[i:end] with the fast decoder; false when it
// declines (ev is then refilled by the tree decoder, or the value is an error).
func (j *JSONReader) tryFast(ev *event.Event, i, end int) bool {
	if j.noFast {
		return false
	}
	ev.Reset()
	ev.File = j.name
	ev.Offset = j.base + int64(i)
	j.s.begin(ev)
	return j.fastEvent(j.buf[i:end])
}

// scan finds the end of the object starting at buf[i]; false when the buffer ends
// first.
func (j *JSONReader) scan(i int) (int, bool) {
	depth := 0
	b := j.buf
	for k := i; k < len(b); k++ {
		switch b[k] {
		case '"':
			k++
			for ; k < len(b); k++ {
				if b[k] == '\\' {
					k++
				} else if b[k] == '"' {
					break
				}
			}
			if k >= len(b) {
				return 0, false
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return k + 1, true
			}
		}
	}
	return 0, false
}

// scalarLine names the JSON scalar filling the line from buf[i] ("a JSON string",
// "null", ...), or returns "" when the line is not exactly one scalar.
func (j *JSONReader) scalarLine(i int) string {
	line := j.buf[i:]
	if nl := bytes.IndexByte(line, '\n'); nl >= 0 {
		line = line[:nl]
	} else if j.rerr == nil {
		return "" // the line may go on in input not read yet: let the object path decide
	}
	v, err := j.p.ParseBytes(bytes.TrimSpace(line))
	if err != nil {
		return ""
	}
	switch v.Type() {
	case fastjson.TypeString:
		return "a JSON string"
	case fastjson.TypeNull:
		return "null"
	case fastjson.TypeNumber:
		return "a number"
	case fastjson.TypeTrue, fastjson.TypeFalse:
		return "a boolean"
	}
	return ""
}

// skipLine consumes the rest of the line holding buf[i]. A skipped line ending a
// top-level array ("[1, 2]") ends it.
func (j *JSONReader) skipLine(i int) {
	k := i
	for {
		nl := bytes.IndexByte(j.buf[k:], '\n')
		if nl >= 0 {
			if j.array && bytes.HasSuffix(bytes.TrimRight(j.buf[k:k+nl], " \t\r,"), []byte("]")) {
				j.array = false
			}
			j.advance(k + nl + 1)
			return
		}
		base := j.base
		if !j.fill() {
			j.advance(len(j.buf))
			return
		}
		k -= int(j.base - base)
	}
}

// resync skips a broken value starting at i: to the next line whose first non-blank
// byte is '{' or '[' at an indentation no deeper than the broken value's.
func (j *JSONReader) resync(i int) {
	ls := bytes.LastIndexByte(j.buf[:i], '\n') + 1
	indent := i - ls
	if ls < j.start {
		indent = 0
	}
	k := i
	// more reads input; fill may compact the buffer, shifting k.
	more := func() bool {
		base := j.base
		ok := j.fill()
		k -= int(j.base - base)
		return ok
	}
	for {
		nl := bytes.IndexByte(j.buf[k:], '\n')
		if nl < 0 {
			if more() {
				continue
			}
			j.advance(len(j.buf))
			return
		}
		k += nl + 1
		m := k
		for m < len(j.buf) && (j.buf[m] == ' ' || j.buf[m] == '\t') {
			m++
		}
		if m >= len(j.buf) {
			k-- // re-find this newline after reading more
			if more() {
				continue
			}
			j.advance(len(j.buf))
			return
		}
		if (j.buf[m] == '{' || j.buf[m] == '[') && m-k <= indent {
			j.advance(k)
			return
		}
	}
}

// event flattens a parsed value into the sink's event.
func (j *JSONReader) event(v *fastjson.Value) {
	s := j.s
	o, err := v.Object()
	if err != nil {
		return
	}
	if e := o.Get("Event"); e != nil && e.Type() == fastjson.TypeObject {
		j.element("Event", e)
		s.end()
		return
	}
	o.Visit(func(k []byte, v *fastjson.Value) {
		if bytes.HasPrefix(k, []byte("Event.")) {
			j.dotted(k, v)
			return
		}
		j.flat(k, v)
	})
	s.end()
}

// element walks an evtx_dump node: "#attributes" first (so <Data Name=...> renames
// before its text), then "#text" and child elements; arrays repeat the element.
func (j *JSONReader) element(name string, v *fastjson.Value) {
	s := j.s
	if v.Type() == fastjson.TypeArray {
		a, _ := v.Array()
		for _, x := range a {
			j.element(name, x)
		}
		return
	}
	s.open(name)
	switch v.Type() {
	case fastjson.TypeObject:
		o, _ := v.Object()
		if at := o.Get("#attributes"); at != nil && at.Type() == fastjson.TypeObject {
			ao, _ := at.Object()
			ao.Visit(func(k []byte, x *fastjson.Value) {
				if x.Type() == fastjson.TypeNull {
					return
				}
				s.attr(s.name(k))
				j.scalar(x)
			})
		}
		s.closeStart()
		o.Visit(func(k []byte, x *fastjson.Value) {
			switch string(k) {
			case "#attributes":
			case "#text":
				if x.Type() == fastjson.TypeArray {
					a, _ := x.Array()
					for i, y := range a {
						if i > 0 {
							s.close()
							s.open(name)
						}
						j.scalar(y)
					}
					return
				}
				j.scalar(x)
			default:
				j.element(s.name(k), x)
			}
		})
	default:
		j.scalar(v)
	}
	s.close()
}

// scalar appends a scalar's text to the current attribute or element.
func (j *JSONReader) scalar(v *fastjson.Value) {
	s := j.s
	switch v.Type() {
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		if isBareGUID(b) {
			// evtx_dump writes GUID values without the braces Windows and the
			// rules use; restore them so both inputs give the same value.
			s.textString("{")
			s.arena = append(s.arena, b...)
			s.arena = append(s.arena, '}')
			return
		}
		s.text(b)
	case fastjson.TypeNumber:
		s.valueStart()
		s.arena = v.MarshalTo(s.arena)
	case fastjson.TypeTrue:
		s.textString("true")
	case fastjson.TypeFalse:
		s.textString("false")
	case fastjson.TypeNull:
		// An empty element; no text.
	default:
		// Objects or arrays where a scalar was expected: keep their JSON text so a
		// rule can still search it.
		s.valueStart()
		s.arena = v.MarshalTo(s.arena)
	}
}

// dotted routes "Event.System.Provider.#attributes.Name"-style keys through the same
// naming as the nested form.
func (j *JSONReader) dotted(k []byte, v *fastjson.Value) {
	s := j.s
	depth := 0
	for len(k) > 0 {
		part := k
		rest := []byte(nil)
		if i := bytes.IndexByte(k, '.'); i >= 0 {
			part, rest = k[:i], k[i+1:]
		}
		if string(part) == "#attributes" && len(rest) > 0 {
			s.attr(s.name(rest))
			j.scalar(v)
			s.closeStart()
			break
		}
		if len(rest) == 0 {
			j.element(s.name(part), v)
			break
		}
		s.open(s.name(part))
		depth++
		k = rest
	}
	for ; depth > 0; depth-- {
		s.close()
	}
}

// flat adds a flat object's member; nested objects become dotted names, arrays
// repeated fields.
func (j *JSONReader) flat(k []byte, v *fastjson.Value) {
	s := j.s
	switch v.Type() {
	case fastjson.TypeObject:
		o, _ := v.Object()
		o.Visit(func(k2 []byte, x *fastjson.Value) {
			n := len(k)
			key := append(append(append(make([]byte, 0, n+1+len(k2)), k...), '.'), k2...)
			j.flat(key, x)
		})
	case fastjson.TypeArray:
		a, _ := v.Array()
		for _, x := range a {
			j.flat(k, x)
		}
	case fastjson.TypeNull:
		s.ev.Add(s.name(k), "")
	default:
		start := len(s.arena)
		switch v.Type() {
		case fastjson.TypeString:
			b, _ := v.StringBytes()
			s.arena = append(s.arena, b...)
		case fastjson.TypeTrue:
			s.arena = append(s.arena, "true"...)
		case fastjson.TypeFalse:
			s.arena = append(s.arena, "false"...)
		default:
			s.arena = v.MarshalTo(s.arena)
		}
		s.ev.Add(s.name(k), s.str(start))
	}
}

// isBareGUID tells a GUID written 8-4-4-4-12 hex digits without braces.
func isBareGUID(b []byte) bool {
	if len(b) != 36 || b[8] != '-' || b[13] != '-' || b[18] != '-' || b[23] != '-' {
		return false
	}
	// Every event has a few GUIDs: a table lookup per digit, no range tests.
	var bad byte
	for i, c := range b {
		switch i {
		case 8, 13, 18, 23:
		default:
			bad |= notHex[c]
		}
	}
	return bad == 0
}

// notHex is 1 for bytes that are not hexadecimal digits.
var notHex = func() (t [256]byte) {
	for i := range t {
		c := byte(i)
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			t[i] = 1
		}
	}
	return t
}()
