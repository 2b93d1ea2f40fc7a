// Package event is the flat log-record view the hunting engine evaluates: readers
// (EVTX, JSON, JSON lines) fill it, the engine reads it. It imports nothing of ours.
package event

// Field is one name/value pair of an event. Names are as users write them in rules:
// System fields by their Sigma names (EventID, Channel, Provider_Name, Computer, Level,
// TimeCreated, ...), EventData/UserData values by their own name (Image, CommandLine).
// Values are strings exactly as logged (numbers in decimal).
type Field struct {
	Name  string
	Value string
}

// Event is one log record. Readers reuse Events between records, so the engine must
// not keep references to Fields or their strings after Match returns unless it copies.
type Event struct {
	Fields []Field
	// File and Offset locate the record for error messages and output (Offset is a
	// record number for EVTX, a byte offset for JSON).
	File   string
	Offset int64
}

// Get returns the value of the first field called name (exact, case-sensitive).
func (e *Event) Get(name string) (string, bool) {
	for i := range e.Fields {
		if e.Fields[i].Name == name {
			return e.Fields[i].Value, true
		}
	}
	return "", false
}

// Reset empties e for reuse, keeping its storage.
func (e *Event) Reset() {
	e.Fields = e.Fields[:0]
	e.File = ""
	e.Offset = 0
}

// Add appends a field.
func (e *Event) Add(name, value string) {
	e.Fields = append(e.Fields, Field{Name: name, Value: value})
}
