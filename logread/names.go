package logread

import (
	"sync"
	"unsafe"

	"github.com/ruledex/ruledex/event"
)

// Field naming, shared by the EVTX decoder and the evtx_dump-style JSON walker so that
// both produce the same field set for the same record by construction. Both describe a
// record as an XML-like tree (Event > System|EventData|UserData > ...) through the
// sink's open/attr/text/close calls; the sink decides the Sigma names:
//
//   - System children by their element name (EventID, Version, Level, Task, Opcode,
//     Keywords, EventRecordID, Channel, Computer), and System attributes as
//     Element_Attribute (Provider_Name, Provider_Guid, Provider_EventSourceName,
//     Security_UserID, Correlation_ActivityID, EventID_Qualifiers), except
//     TimeCreated/@SystemTime -> TimeCreated and Execution/@ProcessID|ThreadID ->
//     ProcessID, ThreadID (the names chainsaw, hayabusa and Zircolite users write).
//   - EventData: <Data Name="X"> (evtx_dump: key X) -> X; unnamed <Data> -> Data
//     (repeated); other children (Binary) by their name. An empty Data element gives
//     X = "" so `X: ''` and `X: null` rules can tell "present but empty".
//   - UserData and anything below it: leaf elements by their own name, the wrapper
//     element (LogFileCleared, ...) dropped; attributes of its elements by their own
//     name too (CAPI2 70: <EventAuxInfo ProcessName="mimikatz.exe"/> -> ProcessName),
//     xmlns declarations left out.
//   - A data field (EventData/UserData) named like a System field keeps the name, and
//     the System copy becomes System_<name> (Eventlog 104: Channel is the cleared log,
//     System_Channel the log the event is in). Sigma rules mean the data field where
//     one exists, as SigmaHQ's "Important Windows Eventlog Cleared" and chainsaw's
//     mappings (Event.UserData.*) read it; the engine routes on System_Channel and
//     System_EventID when present.
//   - Other sections (RenderingInfo, ProcessingErrorData, DebugData): Section_Leaf.
//
// Names are interned so that repeated records produce identical string headers and
// no allocation; values live in the per-record arena.

type level struct {
	name      string
	textStart int  // arena offset of this element's text, -1 if none yet
	hasChild  bool // mixed content: text of elements with children is ignored
	isData    bool // a <Data> element under EventData (renamed by its Name attribute)
}

type sink struct {
	ev    *event.Event
	arena []byte
	stack []level

	attrName  string
	attrStart int // -1 when no attribute value is pending
	inAttr    bool

	intern  map[string]string
	seq     []string // the names of the previous record, in order (see name)
	pos     int      // the number of names looked up in this record
	scratch []byte
	// sysEnd is the number of fields the System section added (it comes first).
	sysEnd int
	// sec is the kind of stack[1], the section (set when it opens: comparing its
	// name on every element cost a tenth of JSON decoding).
	sec section
}

type section uint8

const (
	secOther section = iota
	secSystem
	secEventData
	secUserData
)

const maxIntern = 1 << 14

func newSink() *sink {
	if n, ok := namePool.Get().(*names); ok {
		return &sink{intern: n.intern, seq: n.seq, attrStart: -1}
	}
	return &sink{intern: make(map[string]string, 256), attrStart: -1}
}

// names are a closed reader's interned names, for the next reader: hunt opens a
// reader per part (a 1 MiB batch, an EVTX chunk), and interning the same names again
// for each was most of the allocations of decoding. Names are immutable strings, safe
// to share; the arena, which the last record's values may still point into, is not
// passed on.
type names struct {
	intern map[string]string
	seq    []string
}

var namePool sync.Pool

// release hands the sink's names to the next reader; the sink must not be used after.
func (s *sink) release() {
	if s.intern != nil {
		namePool.Put(&names{intern: s.intern, seq: s.seq})
		s.intern, s.seq = nil, nil
	}
}

// begin starts a record.
func (s *sink) begin(ev *event.Event) {
	s.ev = ev
	s.arena = s.arena[:0]
	s.stack = s.stack[:0]
	s.inAttr = false
	s.attrStart = -1
	s.sysEnd = 0
	s.pos = 0
}

// str returns a string over arena[start:]; valid until the next record (event.Event's
// contract: the engine copies what it keeps).
func (s *sink) str(start int) string {
	if start >= len(s.arena) {
		return ""
	}
	return unsafe.String(&s.arena[start], len(s.arena)-start)
}

func (s *sink) strRange(start, end int) string {
	if start >= end {
		return ""
	}
	return unsafe.String(&s.arena[start], end-start)
}

// name interns b. Records of one kind name their fields in the same order, so the
// name at the same position in the previous record is tried first: comparing bytes is
// much cheaper than hashing them for the map (a fifth of JSON decoding time).
func (s *sink) name(b []byte) string {
	i := s.pos
	s.pos++
	if i < len(s.seq) && s.seq[i] == string(b) {
		return s.seq[i]
	}
	v, ok := s.intern[string(b)]
	if !ok {
		v = string(b)
		if len(s.intern) < maxIntern {
			s.intern[v] = v
		}
	}
	if i < len(s.seq) {
		s.seq[i] = v
	} else if i < maxIntern {
		s.seq = append(s.seq, v)
	}
	return v
}

func (s *sink) join(a, b string) string {
	s.scratch = append(append(append(s.scratch[:0], a...), '_'), b...)
	return s.name(s.scratch)
}

func (s *sink) open(name string) {
	s.flushAttr()
	if n := len(s.stack); n > 0 {
		s.stack[n-1].hasChild = true
	}
	switch len(s.stack) {
	case 1:
		switch name {
		case "System":
			s.sec = secSystem
		case "EventData":
			s.sec = secEventData
		case "UserData":
			s.sec = secUserData
		default:
			s.sec = secOther
		}
	}
	isData := len(s.stack) == 2 && s.sec == secEventData && name == "Data"
	s.stack = append(s.stack, level{name: name, textStart: -1, isData: isData})
}

// attr starts an attribute; its value follows through value calls.
func (s *sink) attr(name string) {
	s.flushAttr()
	s.attrName = name
	s.inAttr = true
	s.attrStart = len(s.arena)
}

// closeStart ends the attribute list of the current element.
func (s *sink) closeStart() { s.flushAttr() }

// textStart returns where the caller should append a value's text in the arena, after
// which it calls textEnd. Keeping values in the arena avoids an allocation per value.
func (s *sink) valueStart() int {
	if !s.inAttr && len(s.stack) > 0 {
		top := &s.stack[len(s.stack)-1]
		if top.textStart < 0 && !top.hasChild {
			top.textStart = len(s.arena)
		}
	}
	return len(s.arena)
}

// text appends a literal text value to the current attribute or element.
func (s *sink) text(b []byte) {
	s.valueStart()
	s.arena = append(s.arena, b...)
}

func (s *sink) textString(b string) {
	s.valueStart()
	s.arena = append(s.arena, b...)
}

// flushAttr ends a pending attribute; inlined, so that the calls with none pending
// (most: every open and close) cost a test.
func (s *sink) flushAttr() {
	if s.inAttr {
		s.flushAttrSlow()
	}
}

func (s *sink) flushAttrSlow() {
	s.inAttr = false
	v := s.str(s.attrStart)
	n := len(s.stack)
	if n == 0 {
		return
	}
	top := &s.stack[n-1]
	if top.isData && s.attrName == "Name" {
		top.name = s.name(s.arena[s.attrStart:])
		top.isData = false
		// The name is interned; the value bytes can be dropped from the arena.
		s.arena = s.arena[:s.attrStart]
		return
	}
	if n == 3 && s.sec == secSystem {
		s.ev.Add(s.systemAttr(top.name, s.attrName), v)
		s.sysEnd = len(s.ev.Fields)
		return
	}
	// UserData elements often carry their values as attributes only (CAPI2 70:
	// <EventAuxInfo ProcessName="mimikatz.exe"/>); they are data like leaf text.
	if n >= 3 && s.sec == secUserData && !isXMLNS(s.attrName) {
		s.addData(s.attrName, v)
	}
}

// addData adds an EventData/UserData field. A data field named like a header field
// (UserData/LogFileCleared/Channel on Eventlog 104) is what rules mean by that name
// (SigmaHQ's "Important Windows Eventlog Cleared" lists the cleared logs under
// Channel), so the header copy is renamed System_<name>: the two never mix, and a
// rule cannot match the header value by accident. Routing reads System_Channel and
// System_EventID first (engine).
func (s *sink) addData(name, val string) {
	if isSystemName(name) {
		for i := range s.ev.Fields[:s.sysEnd] {
			if f := &s.ev.Fields[i]; f.Name == name {
				f.Name = s.join("System", name)
			}
		}
	}
	s.ev.Add(name, val)
}

// isSystemName tells the names the System section produces (see systemAttr).
func isSystemName(n string) bool {
	switch n {
	case "EventID", "Version", "Level", "Task", "Opcode", "Keywords", "EventRecordID",
		"Channel", "Computer", "TimeCreated", "ProcessID", "ThreadID", "Provider_Name":
		return true
	}
	return false
}

func (s *sink) systemAttr(elem, attr string) string {
	switch elem {
	case "TimeCreated":
		if attr == "SystemTime" {
			return "TimeCreated"
		}
	case "Execution":
		if attr == "ProcessID" || attr == "ThreadID" {
			return attr
		}
	case "Provider":
		if attr == "Name" {
			return "Provider_Name"
		}
	}
	return s.join(elem, attr)
}

// close ends the current element, emitting its text as a field when it is a leaf.
func (s *sink) close() {
	s.flushAttr()
	n := len(s.stack)
	if n == 0 {
		return
	}
	top := &s.stack[n-1]
	s.stack = s.stack[:n-1]
	if n < 3 || top.hasChild {
		return
	}
	var val string
	if top.textStart >= 0 {
		val = s.str(top.textStart)
	}
	switch s.sec {
	case secSystem:
		if n == 3 && top.textStart >= 0 {
			s.ev.Add(top.name, val)
			s.sysEnd = len(s.ev.Fields)
		}
	case secEventData, secUserData:
		s.addData(top.name, val)
	default:
		if top.textStart >= 0 {
			s.ev.Add(s.join(s.stack[1].name, top.name), val)
		}
	}
	// Later siblings' text starts a new range; nothing to reset in the arena.
}

// end finishes a record, closing any elements a truncated record left open.
func (s *sink) end() {
	for len(s.stack) > 0 {
		s.close()
	}
}

func isXMLNS(name string) bool {
	return name == "xmlns" || len(name) > 6 && name[:6] == "xmlns:"
}
