package winevent

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"os"
	"sort"
	"strings"

	"github.com/ruledex/ruledex/rule"
)

// Mapping is what one Sigma category or service means on Windows.
type Mapping struct {
	Kind     string   `json:"kind"` // "category" or "service"
	Name     string   `json:"name"`
	EventIDs []int    `json:"event_ids,omitempty"` // empty: any event of the channels
	Channels []string `json:"channels"`
	// Providers are the providers writing the events; empty when the channel holds many
	// and the rule must name one (System, Application).
	Providers []string `json:"providers,omitempty"`
	Source    string   `json:"source,omitempty"`
}

// Alternate is a native-audit event that can stand in for a Sysmon category
// (Security 4688 for process_creation) when the rule's fields exist there after renaming.
type Alternate struct {
	Category string `json:"category"`
	Provider string `json:"provider"`
	Channel  string `json:"channel"`
	EventIDs []int  `json:"event_ids"`
	// Renames maps Sigma (Sysmon) field names to the alternate event's names
	// (Image → NewProcessName). Fields not listed keep their name.
	Renames map[string]string `json:"renames"`
	// Where holds field values the alternate event must also have (registry_set is
	// 4657 with OperationType "Existing registry value modified"), in the event's names.
	Where   map[string]string `json:"where,omitempty"`
	Sources []string          `json:"sources,omitempty"`

	renameLower map[string]string
}

// Rename returns the alternate event's name for a rule field, case-insensitively.
func (a *Alternate) Rename(field string) string {
	if n, ok := a.renameLower[strings.ToLower(field)]; ok {
		return n
	}
	return field
}

type rawMapping struct {
	EventIDs  []int    `json:"event_ids"`
	Channels  []string `json:"channels"`
	Providers []string `json:"providers"`
	Source    string   `json:"source"`
}

type rawAlternate struct {
	Provider  string            `json:"provider"`
	Channel   string            `json:"channel"`
	EventIDs  []int             `json:"event_ids"`
	FieldMap  map[string]string `json:"field_map"`
	Sources   []string          `json:"sources"`
	SameAs    string            `json:"same_as"`
	Condition map[string]string `json:"condition"`
}

func (c *Catalog) loadLogSources(path string, h hash.Hash) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("winevent: %w", err)
	}
	return c.parseLogSources(path, data, h)
}

// embeddedLogSources is shared/corpus/events/logsource_map.json (23 KB) built into
// the binary, so that hunting routes rules without a --data folder. It is the only
// part of the catalog routing needs; the event and field tables (1 MB) are not
// embedded. Sources and licenses: the category and service mappings come from the
// Sigma taxonomy appendix (public domain); the native-audit alternates' field renames
// are cross-checked facts from pySigma-pipeline-windows (LGPL-2.1), SigmaHQ's
// thor.yml (DRL 1.1) and sigma-to-hayabusa-converter (GPL-3.0), see
// shared/corpus/events/SOURCES.md.
//
//go:embed data/logsource_map.json
var embeddedLogSources []byte

// Routing returns a catalog holding only the embedded log-source map: enough for
// Route and RouteRule's log-source part, with no events or fields. A catalog loaded
// from a --data folder (Load) supersedes it.
func Routing() (*Catalog, error) {
	c := &Catalog{byKey: map[string]*Provider{}, byChannel: map[string][]*Provider{}}
	h := sha256.New()
	c.finish()
	if err := c.parseLogSources("embedded logsource_map.json", embeddedLogSources, h); err != nil {
		return nil, err
	}
	c.fingerprint = "v" + CoverageVersion + ":embedded:" + hex.EncodeToString(h.Sum(nil)[:12])
	return c, nil
}

func (c *Catalog) parseLogSources(path string, data []byte, h hash.Hash) error {
	h.Write(data)
	var raw struct {
		Category   map[string]rawMapping   `json:"category"`
		Service    map[string]rawMapping   `json:"service"`
		Alternates map[string]rawAlternate `json:"category_alternates_native_audit"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return fmt.Errorf("winevent %s: %w", path, locate(data, err))
	}
	conv := func(kind, name string, r rawMapping) *Mapping {
		m := &Mapping{Kind: kind, Name: name, Channels: r.Channels, Source: r.Source}
		if len(r.EventIDs) > 0 {
			m.EventIDs = r.EventIDs
		}
		for _, p := range r.Providers {
			// "(many; take Provider_Name from the rule)" is advice, not a provider.
			if !strings.HasPrefix(strings.TrimSpace(p), "(") {
				m.Providers = append(m.Providers, p)
			}
		}
		return m
	}
	c.categories, c.services, c.alternates = map[string]*Mapping{}, map[string]*Mapping{}, map[string]*Alternate{}
	for k, v := range raw.Category {
		c.categories[strings.ToLower(k)] = conv("category", k, v)
	}
	for k, v := range raw.Service {
		c.services[strings.ToLower(k)] = conv("service", k, v)
	}
	for k, v := range raw.Alternates {
		base := v
		if v.SameAs != "" {
			b, ok := raw.Alternates[v.SameAs]
			if !ok {
				return fmt.Errorf("winevent %s: alternate %s: same_as %q is not defined", path, k, v.SameAs)
			}
			base = b
		}
		a := &Alternate{Category: k, Provider: base.Provider, Channel: base.Channel, EventIDs: base.EventIDs,
			Renames: base.FieldMap, Where: v.Condition, Sources: base.Sources, renameLower: map[string]string{}}
		for from, to := range a.Renames {
			a.renameLower[strings.ToLower(from)] = to
		}
		c.alternates[strings.ToLower(k)] = a
	}
	return nil
}

// Category returns the mapping of a Sigma category.
func (c *Catalog) Category(name string) (*Mapping, bool) {
	m, ok := c.categories[strings.ToLower(name)]
	return m, ok
}

// Service returns the mapping of a Sigma service.
func (c *Catalog) Service(name string) (*Mapping, bool) {
	m, ok := c.services[strings.ToLower(name)]
	return m, ok
}

// Alternate returns the native-audit alternate of a Sigma category.
func (c *Catalog) Alternate(category string) (*Alternate, bool) {
	a, ok := c.alternates[strings.ToLower(category)]
	return a, ok
}

// Target is one place a rule's events come from: a channel, optionally narrowed to a
// provider and event IDs, with the field renames that apply there.
type Target struct {
	Channel string `json:"channel"`
	// Provider is "" when the channel holds many providers and the rule names none.
	Provider string `json:"provider,omitempty"`
	// EventIDs is empty when every event of the channel (and provider) qualifies.
	EventIDs []int `json:"event_ids,omitempty"`
	// Native marks a native-audit alternate (Security 4688 for process_creation).
	Native bool `json:"native,omitempty"`
	// Renames maps the rule's field names to this target's event field names
	// (Image → NewProcessName); nil when the rule's names apply as written.
	Renames map[string]string `json:"renames,omitempty"`
	// Where lists field values (in the event's names) an event must have as well.
	Where map[string]string `json:"where,omitempty"`
	// Via says why the target applies (ViaLogSource, ViaNative, ViaPinned, ...).
	Via string `json:"via,omitempty"`

	// canon maps a KQL/SPL column to its Sysmon-named equivalent before Renames apply;
	// nil for Sigma, whose names are Sysmon's or the native event's already.
	canon func(string) (string, bool)
}

// Field returns the name under which this target's events carry the rule's field.
func (t *Target) Field(ruleField string) string {
	for from, to := range t.Renames {
		if strings.EqualFold(from, ruleField) {
			return to
		}
	}
	return ruleField
}

// Route returns every target a Sigma Windows log source can read: the logsource map's
// channels, providers and event IDs for the category (or, without one, the service),
// then the native-audit alternates with their renames. It looks only at the log
// source; RouteRule also weighs the fields the rule tests and the EventID/Channel/
// Provider_Name values it pins. Nil means the log source names no Windows channel
// (another product, or product-only rules), so the caller decides.
func (c *Catalog) Route(ls rule.LogSource) []Target {
	if p := strings.ToLower(ls.Product); p != "" && p != "windows" {
		return nil
	}
	var out []Target
	if ls.Category != "" {
		if m, ok := c.Category(ls.Category); ok {
			out = append(out, c.mappingTargets(m)...)
		}
		if a, ok := c.Alternate(ls.Category); ok {
			out = append(out, a.target())
		}
		if len(out) > 0 {
			return out
		}
	}
	if ls.Service != "" {
		if m, ok := c.Service(ls.Service); ok {
			out = append(out, c.mappingTargets(m)...)
		}
	}
	return out
}

func (a *Alternate) target() Target {
	return Target{Channel: a.Channel, Provider: a.Provider, EventIDs: a.EventIDs, Native: true, Renames: a.Renames, Where: a.Where, Via: ViaNative}
}

// mappingTargets pairs a mapping's channels and providers: index by index when the
// lists have equal length (ps_script: PowerShell/Operational ↔ Microsoft-Windows-PowerShell,
// PowerShellCore/Operational ↔ PowerShellCore), else every channel with every provider.
func (c *Catalog) mappingTargets(m *Mapping) []Target {
	var out []Target
	switch {
	case len(m.Providers) == 0:
		for _, ch := range m.Channels {
			out = append(out, Target{Channel: ch, EventIDs: m.EventIDs, Via: ViaLogSource})
		}
	case len(m.Providers) == len(m.Channels) && len(m.Channels) > 1:
		for i, ch := range m.Channels {
			out = append(out, Target{Channel: ch, Provider: m.Providers[i], EventIDs: m.EventIDs, Via: ViaLogSource})
		}
	default:
		for _, ch := range m.Channels {
			for _, p := range m.Providers {
				out = append(out, Target{Channel: ch, Provider: p, EventIDs: m.EventIDs, Via: ViaLogSource})
			}
		}
	}
	return out
}

// sortedIDs returns the set's IDs in order.
func sortedIDs(set map[int]bool) []int {
	out := make([]int, 0, len(set))
	for id := range set {
		out = append(out, id)
	}
	sort.Ints(out)
	return out
}
