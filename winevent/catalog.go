// Package winevent is ruledex's Windows event encyclopedia: providers, channels,
// events and their fields (from the derived data in shared/corpus/events), the Sigma
// log source map with its native-audit alternates, and the two questions built on
// them: which events a rule needs (Coverage) and where a hunting engine should route
// a rule (Route, RouteRule).
package winevent

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Field is one field of an event's payload (EventData).
type Field struct {
	Name string `json:"name"`
	// ManifestType is the type as the manifest writes it ("UnicodeString", "UInt32",
	// "HexInt64", "SID"); OutType the manifest's output type when known ("win:PID").
	ManifestType string `json:"manifest_type,omitempty"`
	OutType      string `json:"out_type,omitempty"`
	// Type is the normalized type: string, int, uint, float, guid, sid, datetime, hex,
	// bool, binary, or "" when the manifest type is unknown.
	Type        string `json:"type"`
	Description string `json:"description,omitempty"`
	// TypeInferred marks types the data derived from samples rather than a manifest.
	TypeInferred bool `json:"type_inferred,omitempty"`
}

// Event is one event ID of a provider.
type Event struct {
	Provider string `json:"provider"`
	Channel  string `json:"channel"`
	ID       int    `json:"event_id"`
	Version  int    `json:"version"`
	// Versions lists every manifest version the data knows, when more than one.
	Versions    []int  `json:"versions,omitempty"`
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	// Message is the message template with %1..%n inserts, as the provider renders it.
	Message string   `json:"message_template,omitempty"`
	Level   string   `json:"level,omitempty"`
	Fields  []Field  `json:"fields"`
	Note    string   `json:"note,omitempty"`
	Sources []string `json:"sources,omitempty"`

	fieldIdx map[string]int // lower(name) -> index in Fields
}

// Field returns the field called name, compared case-insensitively.
func (e *Event) Field(name string) (*Field, bool) {
	i, ok := e.fieldIdx[strings.ToLower(name)]
	if !ok {
		return nil, false
	}
	return &e.Fields[i], true
}

// HasField reports whether the event carries name, counting the System properties
// every event has (EventID, Channel, Computer, ...) and Sysmon's hash sub-fields.
func (e *Event) HasField(name string) bool {
	l := strings.ToLower(name)
	if systemFields[l] {
		return true
	}
	if _, ok := e.fieldIdx[l]; ok {
		return true
	}
	// Sigma and the Sysmon pipelines address Hashes="SHA256=..,IMPHASH=.." by part.
	if hashParts[l] {
		_, h1 := e.fieldIdx["hashes"]
		_, h2 := e.fieldIdx["hash"]
		return h1 || h2
	}
	return false
}

// systemFields are the <System> properties every Windows event carries, under the
// names Sigma, Sentinel and Splunk use for them.
var systemFields = map[string]bool{
	"eventid": true, "eventcode": true, "channel": true, "provider_name": true, "provider": true,
	"computer": true, "computername": true, "hostname": true, "level": true, "task": true,
	"opcode": true, "keywords": true, "eventrecordid": true, "version": true, "timecreated": true,
	"systemtime": true, "correlation": true, "security": true, "execution": true,
}

var hashParts = map[string]bool{"md5": true, "sha1": true, "sha256": true, "imphash": true, "sha384": true, "sha512": true}

// Provider is an event provider and the events the catalog knows for it.
type Provider struct {
	Name string `json:"name"`
	// Slug is URL-safe and stable: the name with every run of characters other than
	// letters, digits, '-' and '.' replaced by '-' ("Service-Control-Manager").
	Slug     string   `json:"slug"`
	Channels []string `json:"channels"`
	Events   []*Event `json:"events"`

	byID map[int]*Event
}

// Event returns the provider's event id.
func (p *Provider) Event(id int) (*Event, bool) {
	e, ok := p.byID[id]
	return e, ok
}

// Catalog is the loaded event data.
type Catalog struct {
	providers []*Provider
	byKey     map[string]*Provider // lower(name) and lower(slug)
	byChannel map[string][]*Provider

	categories map[string]*Mapping // Sigma category -> mapping
	services   map[string]*Mapping // Sigma service -> mapping
	alternates map[string]*Alternate

	fingerprint string
}

// CoverageVersion changes whenever Coverage's logic changes, so stored coverage
// (catalog.SyncRuleEvents) is recomputed.
const CoverageVersion = "4"

// Fingerprint identifies the loaded data and the coverage logic: a hash of the data
// files' contents plus CoverageVersion.
func (c *Catalog) Fingerprint() string { return c.fingerprint }

// Dir is the events folder of a data folder laid out like the shared corpus.
func Dir(dataDir string) string { return filepath.Join(dataDir, "events") }

// rawEvent mirrors the events_*.json records.
type rawEvent struct {
	Provider    string  `json:"provider"`
	Channel     string  `json:"channel"`
	EventID     int     `json:"event_id"`
	Version     int     `json:"version"`
	Versions    []int   `json:"versions"`
	Title       string  `json:"title"`
	Description *string `json:"description"`
	Message     *string `json:"message_template"`
	Level       string  `json:"level"`
	Note        string  `json:"note"`
	Sources     []string
	Fields      []struct {
		Name         string  `json:"name"`
		Type         *string `json:"type"`
		OutType      *string `json:"outType"`
		Description  *string `json:"description"`
		TypeInferred bool    `json:"type_inferred"`
	} `json:"fields"`
}

// Load reads every events_*.json and logsource_map.json from dir (see Dir).
func Load(dir string) (*Catalog, error) {
	files, err := filepath.Glob(filepath.Join(dir, "events_*.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("winevent %s: no events_*.json files", dir)
	}
	sort.Strings(files)
	c := &Catalog{byKey: map[string]*Provider{}, byChannel: map[string][]*Provider{}}
	h := sha256.New()
	for _, f := range files {
		if err := c.loadEvents(f, h); err != nil {
			return nil, err
		}
	}
	c.finish()
	if err := c.loadLogSources(filepath.Join(dir, "logsource_map.json"), h); err != nil {
		return nil, err
	}
	c.fingerprint = "v" + CoverageVersion + ":" + hex.EncodeToString(h.Sum(nil)[:12])
	// Recorded examples live beside the event data in the corpus layout (../regression).
	c.loadSamples(filepath.Join(dir, "..", "regression"))
	return c, nil
}

func (c *Catalog) loadEvents(path string, h hash.Hash) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("winevent: %w", err)
	}
	h.Write(data)
	var raws []rawEvent
	if err := json.Unmarshal(data, &raws); err != nil {
		return fmt.Errorf("winevent %s: %w", path, locate(data, err))
	}
	for i, r := range raws {
		if r.Provider == "" {
			return fmt.Errorf("winevent %s: record %d (event %d): no provider", path, i, r.EventID)
		}
		e := &Event{
			Provider: r.Provider, Channel: r.Channel, ID: r.EventID, Version: r.Version,
			Description: deref(r.Description), Message: deref(r.Message), Level: r.Level,
			Note: r.Note, Sources: r.Sources, fieldIdx: map[string]int{},
		}
		if len(r.Versions) > 1 {
			e.Versions = r.Versions
		}
		e.Title = title(r.Title, e.Message)
		for _, rf := range r.Fields {
			f := Field{Name: rf.Name, ManifestType: deref(rf.Type), OutType: deref(rf.OutType),
				Description: deref(rf.Description), TypeInferred: rf.TypeInferred}
			f.Type = NormalizeType(f.ManifestType)
			if _, dup := e.fieldIdx[strings.ToLower(f.Name)]; !dup {
				e.fieldIdx[strings.ToLower(f.Name)] = len(e.Fields)
			}
			e.Fields = append(e.Fields, f)
		}
		p := c.byKey[strings.ToLower(r.Provider)]
		if p == nil {
			p = &Provider{Name: r.Provider, Slug: Slug(r.Provider), byID: map[int]*Event{}}
			c.byKey[strings.ToLower(p.Name)] = p
			c.providers = append(c.providers, p)
		}
		// One record per (provider, ID) is expected; keep the newest version if not.
		if old, ok := p.byID[e.ID]; ok && old.Version >= e.Version {
			continue
		}
		p.byID[e.ID] = e
	}
	return nil
}

// title prefers the official message's first line when the data's title is that line
// cut short or without its final period ("A new process has been created." for 4688),
// so titles read as Windows writes them.
func title(t, msg string) string {
	first, _, _ := strings.Cut(msg, "\n")
	first = strings.TrimSpace(first)
	if t == "" {
		return first
	}
	if strings.HasSuffix(first, ".") && !strings.Contains(first, "%") && strings.HasPrefix(first, t) {
		return first
	}
	return t
}

func (c *Catalog) finish() {
	sort.Slice(c.providers, func(i, j int) bool { return c.providers[i].Name < c.providers[j].Name })
	for _, p := range c.providers {
		p.Events = p.Events[:0]
		chans := map[string]bool{}
		for _, e := range p.byID {
			p.Events = append(p.Events, e)
			if e.Channel != "" && !chans[e.Channel] {
				chans[e.Channel] = true
				p.Channels = append(p.Channels, e.Channel)
			}
		}
		sort.Slice(p.Events, func(i, j int) bool { return p.Events[i].ID < p.Events[j].ID })
		sort.Strings(p.Channels)
		for _, ch := range p.Channels {
			c.byChannel[strings.ToLower(ch)] = append(c.byChannel[strings.ToLower(ch)], p)
		}
		c.byKey[strings.ToLower(p.Slug)] = p
	}
}

// Providers returns every provider, sorted by name.
func (c *Catalog) Providers() []*Provider { return c.providers }

// Provider finds a provider by name or slug, case-insensitively.
func (c *Catalog) Provider(name string) (*Provider, bool) {
	p, ok := c.byKey[strings.ToLower(strings.TrimSpace(name))]
	return p, ok
}

// Event finds an event by provider (name or slug) and ID.
func (c *Catalog) Event(provider string, id int) (*Event, bool) {
	p, ok := c.Provider(provider)
	if !ok {
		return nil, false
	}
	return p.Event(id)
}

// ProvidersOnChannel returns the providers whose known events are written to channel.
func (c *Catalog) ProvidersOnChannel(channel string) []*Provider {
	return c.byChannel[strings.ToLower(channel)]
}

// Slug makes a provider name URL-safe; see Provider.Slug.
func Slug(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range name {
		if r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			b.WriteRune(r)
			dash = false
			continue
		}
		if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimRight(b.String(), "-")
}

// NormalizeType maps a manifest input type to ruledex's small type vocabulary.
func NormalizeType(manifest string) string {
	t := strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(manifest, "win:"), "xs:"))
	switch t {
	case "":
		return ""
	case "unicodestring", "ansistring", "string", "countedstring", "countedansistring":
		return "string"
	case "int8", "int16", "int32", "int64", "int", "long", "short", "byte":
		return "int"
	case "uint8", "uint16", "uint32", "uint64", "unsignedint", "unsignedlong", "unsignedshort", "unsignedbyte":
		return "uint"
	case "float", "double":
		return "float"
	case "guid":
		return "guid"
	case "sid":
		return "sid"
	case "filetime", "systemtime", "datetime":
		return "datetime"
	case "hexint8", "hexint16", "hexint32", "hexint64", "pointer", "hexbinary":
		return "hex"
	case "boolean", "bool":
		return "bool"
	case "binary", "base64binary":
		return "binary"
	}
	return "other"
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// locate adds line:column to a JSON syntax or type error.
func locate(data []byte, err error) error {
	var off int64
	switch e := err.(type) {
	case *json.SyntaxError:
		off = e.Offset
	case *json.UnmarshalTypeError:
		off = e.Offset
	default:
		return err
	}
	line, col := 1, 1
	for i := int64(0); i < off && i < int64(len(data)); i++ {
		if data[i] == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return fmt.Errorf("%d:%d: %w", line, col, err)
}
