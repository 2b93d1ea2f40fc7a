package winevent

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Sample is a real recorded event (from the regression logs beside the event data, as
// exported to JSON from EVTX): the event page's "Example event", and the level, task and
// opcode the provider actually wrote. Only what a record shows is known; nothing is
// inferred for events without one.
type Sample struct {
	Provider string `json:"provider"`
	EventID  int    `json:"event_id"`
	Level    int    `json:"level"`
	Task     int    `json:"task"`
	Opcode   int    `json:"opcode"`
	// JSON is the whole record, indented, as exported (anonymized as upstream left it).
	JSON string `json:"json"`
	// Path is the file it came from, relative to the regression folder.
	Path string `json:"path"`
}

// LevelName names a level number as Windows does.
func LevelName(n int) string {
	switch n {
	case 0:
		return "LogAlways"
	case 1:
		return "Critical"
	case 2:
		return "Error"
	case 3:
		return "Warning"
	case 4:
		return "Information"
	case 5:
		return "Verbose"
	}
	return strconv.Itoa(n)
}

// maxSampleFile bounds a record file read for samples; exports of whole logs are skipped.
const maxSampleFile = 64 << 10

// samples are kept beside the Catalog (keyed by it) so the struct stays as it is.
var samples sync.Map // *Catalog -> map[string]*Sample

func sampleKey(provider string, id int) string {
	return strings.ToLower(provider) + "\x00" + strconv.Itoa(id)
}

// Sample returns a recorded example of the event, if the regression logs have one.
func (c *Catalog) Sample(provider string, id int) (*Sample, bool) {
	m, ok := samples.Load(c)
	if !ok {
		return nil, false
	}
	s, ok := m.(map[string]*Sample)[sampleKey(provider, id)]
	return s, ok
}

// loadSamples reads every single-record JSON export under root, keeping per event the
// smallest record (the easiest to read). A missing folder or an unreadable file only
// means fewer examples.
func (c *Catalog) loadSamples(root string) {
	m := map[string]*Sample{}
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
			return nil
		}
		if info, err := d.Info(); err != nil || info.Size() > maxSampleFile {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		s, ok := parseSample(data)
		if !ok {
			return nil
		}
		if rel, err := filepath.Rel(root, path); err == nil {
			s.Path = filepath.ToSlash(rel)
		}
		k := sampleKey(s.Provider, s.EventID)
		if old := m[k]; old == nil || len(s.JSON) < len(old.JSON) || len(s.JSON) == len(old.JSON) && s.Path < old.Path {
			m[k] = s
		}
		return nil
	})
	samples.Store(c, m)
}

// parseSample reads one exported record: {"Event": {"System": {...}, "EventData": {...}}}.
func parseSample(data []byte) (*Sample, bool) {
	var rec struct {
		Event struct {
			System struct {
				Provider struct {
					Attr struct {
						Name string `json:"Name"`
					} `json:"#attributes"`
				} `json:"Provider"`
				EventID json.RawMessage `json:"EventID"`
				Level   json.RawMessage `json:"Level"`
				Task    json.RawMessage `json:"Task"`
				Opcode  json.RawMessage `json:"Opcode"`
			} `json:"System"`
		} `json:"Event"`
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, false
	}
	sys := rec.Event.System
	id, ok := number(sys.EventID)
	if !ok || sys.Provider.Attr.Name == "" {
		return nil, false
	}
	s := &Sample{Provider: sys.Provider.Attr.Name, EventID: id}
	s.Level, _ = number(sys.Level)
	s.Task, _ = number(sys.Task)
	s.Opcode, _ = number(sys.Opcode)
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(data), "", "  "); err != nil {
		return nil, false
	}
	s.JSON = buf.String()
	return s, true
}

// number reads 4688, "4688" or {"#text": 4688} (EVTX exports write all three).
func number(raw json.RawMessage) (int, bool) {
	var n int
	if json.Unmarshal(raw, &n) == nil {
		return n, true
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		return n, err == nil
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) == nil {
		if v, ok := obj["#text"]; ok {
			return number(v)
		}
	}
	return 0, false
}
