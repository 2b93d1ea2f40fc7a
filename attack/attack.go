// Package attack reads MITRE ATT&CK from the STIX 2.1 bundle MITRE publishes
// (enterprise-attack.json) and resolves the many ways rules spell tactics and
// techniques (attack.command_and_control, attack.t1558.004, Sentinel
// "CommandAndControl") to ATT&CK IDs, flagging unknown, revoked and deprecated ones.
package attack

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Technique is an ATT&CK technique or sub-technique.
type Technique struct {
	// ID is the ATT&CK ID, upper-case: "T1197", "T1558.004".
	ID   string `json:"id"`
	Name string `json:"name"`
	// Parent is the parent technique's ID for sub-techniques ("T1558" for "T1558.004"), else "".
	Parent string `json:"parent,omitempty"`
	// Tactics are the kill-chain phase short names, in matrix order ("persistence", "defense-evasion").
	Tactics []string `json:"tactics"`
	// Revoked techniques were replaced; RevokedBy is the replacement's ID when the bundle
	// says so (following chains of revocations to the live technique).
	Revoked    bool   `json:"revoked,omitempty"`
	RevokedBy  string `json:"revoked_by,omitempty"`
	Deprecated bool   `json:"deprecated,omitempty"`
	URL        string `json:"url,omitempty"`
	// Summary is the first paragraph of the description, citations removed.
	Summary   string   `json:"summary,omitempty"`
	Platforms []string `json:"platforms,omitempty"`
}

// Active reports whether the technique is neither revoked nor deprecated.
func (t *Technique) Active() bool { return !t.Revoked && !t.Deprecated }

// Tactic is an ATT&CK tactic (a column of the matrix).
type Tactic struct {
	ID    string `json:"id"`    // "TA0011"
	Short string `json:"short"` // "command-and-control", the kill-chain phase name
	Name  string `json:"name"`  // "Command and Control"
	URL   string `json:"url,omitempty"`
	// Order is the column position in the matrix, from 0.
	Order   int    `json:"order"`
	Summary string `json:"summary,omitempty"`
}

// Matrix is one ATT&CK domain (enterprise) as loaded from its bundle.
type Matrix struct {
	techniques map[string]*Technique // by upper-case ID
	tactics    []*Tactic             // in matrix order
	byShort    map[string]*Tactic    // by short name
	byKey      map[string]*Tactic    // by squashed spelling ("commandandcontrol") and ID ("ta0011")
	byTactic   map[string][]*Technique
	// Version is the bundle's ATT&CK spec version as found on the matrix object, informational.
	Version string
}

// stixObject keeps only the properties ruledex reads, so decoding skips the rest.
type stixObject struct {
	Type        string `json:"type"`
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Revoked     bool   `json:"revoked"`
	Deprecated  bool   `json:"x_mitre_deprecated"`
	IsSub       bool   `json:"x_mitre_is_subtechnique"`
	Shortname   string `json:"x_mitre_shortname"`
	ExtRefs     []struct {
		SourceName string `json:"source_name"`
		URL        string `json:"url"`
		ExternalID string `json:"external_id"`
	} `json:"external_references"`
	KillChain []struct {
		Chain string `json:"kill_chain_name"`
		Phase string `json:"phase_name"`
	} `json:"kill_chain_phases"`
	TacticRefs  []string `json:"tactic_refs"`
	RelType     string   `json:"relationship_type"`
	SourceRef   string   `json:"source_ref"`
	TargetRef   string   `json:"target_ref"`
	SpecVersion string   `json:"x_mitre_attack_spec_version"`
	XPlatforms  []string `json:"x_mitre_platforms"`
}

// Load reads a STIX 2.1 ATT&CK bundle from path.
func Load(path string) (*Matrix, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("attack: %w", err)
	}
	defer f.Close()
	m, err := Read(bufio.NewReaderSize(f, 1<<16))
	if err != nil {
		return nil, fmt.Errorf("attack %s: %w", path, err)
	}
	return m, nil
}

// Read decodes a bundle object by object, so memory stays proportional to what is kept
// rather than to the 30 MB of text.
func Read(r io.Reader) (*Matrix, error) {
	dec := json.NewDecoder(r)
	if err := expectDelim(dec, '{'); err != nil {
		return nil, err
	}
	type techObj struct {
		stix string
		t    *Technique
	}
	var (
		techs     []techObj
		tactics   = map[string]*Tactic{} // by STIX id
		order     []string
		revokedBy = map[string]string{} // STIX id -> STIX id
		stixToID  = map[string]string{} // attack-pattern STIX id -> ATT&CK ID
		version   string
		sawObjs   bool
	)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		if key != "objects" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, fmt.Errorf("bundle property %q: %w", key, err)
			}
			continue
		}
		sawObjs = true
		if err := expectDelim(dec, '['); err != nil {
			return nil, err
		}
		for i := 0; dec.More(); i++ {
			var o stixObject
			if err := dec.Decode(&o); err != nil {
				return nil, fmt.Errorf("object %d (offset %d): %w", i, dec.InputOffset(), err)
			}
			switch o.Type {
			case "attack-pattern":
				id, url := mitreRef(&o)
				if id == "" {
					continue
				}
				t := &Technique{
					ID: strings.ToUpper(id), Name: o.Name, URL: url,
					Revoked: o.Revoked, Deprecated: o.Deprecated,
					Summary: firstParagraph(o.Description), Platforms: o.XPlatforms,
				}
				if i := strings.IndexByte(t.ID, '.'); i > 0 {
					t.Parent = t.ID[:i]
				}
				for _, k := range o.KillChain {
					if k.Chain == "mitre-attack" {
						t.Tactics = append(t.Tactics, k.Phase)
					}
				}
				techs = append(techs, techObj{o.ID, t})
				stixToID[o.ID] = t.ID
			case "x-mitre-tactic":
				id, url := mitreRef(&o)
				tactics[o.ID] = &Tactic{ID: id, Short: o.Shortname, Name: o.Name, URL: url, Order: -1, Summary: firstParagraph(o.Description)}
			case "x-mitre-matrix":
				order = o.TacticRefs
				version = o.SpecVersion
			case "relationship":
				if o.RelType == "revoked-by" {
					revokedBy[o.SourceRef] = o.TargetRef
				}
			}
		}
		if _, err := dec.Token(); err != nil { // closing ]
			return nil, err
		}
	}
	if !sawObjs {
		return nil, fmt.Errorf("not a STIX bundle: no \"objects\" array")
	}
	m := &Matrix{
		techniques: map[string]*Technique{},
		byShort:    map[string]*Tactic{},
		byKey:      map[string]*Tactic{},
		byTactic:   map[string][]*Technique{},
		Version:    version,
	}
	for _, ref := range order {
		if t, ok := tactics[ref]; ok && t.Order < 0 {
			t.Order = len(m.tactics)
			m.tactics = append(m.tactics, t)
		}
	}
	// Tactics the matrix does not list (should not happen) go last, sorted, so none is lost.
	var extra []*Tactic
	for _, t := range tactics {
		if t.Order < 0 {
			extra = append(extra, t)
		}
	}
	sort.Slice(extra, func(i, j int) bool { return extra[i].ID < extra[j].ID })
	for _, t := range extra {
		t.Order = len(m.tactics)
		m.tactics = append(m.tactics, t)
	}
	for _, t := range m.tactics {
		m.byShort[t.Short] = t
		m.byKey[squash(t.Short)] = t
		m.byKey[squash(t.Name)] = t
		m.byKey[strings.ToLower(t.ID)] = t
	}
	for _, to := range techs {
		t := to.t
		if t.Revoked {
			// Follow the chain to the technique that is current; stop on cycles.
			seen := map[string]bool{}
			for cur := to.stix; !seen[cur]; {
				seen[cur] = true
				next, ok := revokedBy[cur]
				if !ok {
					break
				}
				if id, ok := stixToID[next]; ok {
					t.RevokedBy = id
				}
				cur = next
			}
		}
		sort.SliceStable(t.Tactics, func(i, j int) bool { return m.tacticOrder(t.Tactics[i]) < m.tacticOrder(t.Tactics[j]) })
		// IDs are unique in MITRE's bundles; should a live and a revoked object share one,
		// the live one wins.
		if prev, ok := m.techniques[t.ID]; ok && prev.Active() && !t.Active() {
			continue
		}
		m.techniques[t.ID] = t
	}
	for _, t := range m.techniques {
		if !t.Active() {
			continue
		}
		for _, ta := range t.Tactics {
			m.byTactic[ta] = append(m.byTactic[ta], t)
		}
	}
	for _, l := range m.byTactic {
		sort.Slice(l, func(i, j int) bool { return lessID(l[i].ID, l[j].ID) })
	}
	return m, nil
}

func expectDelim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != d {
		return fmt.Errorf("offset %d: expected %q, found %v", dec.InputOffset(), d, tok)
	}
	return nil
}

func mitreRef(o *stixObject) (id, url string) {
	for _, r := range o.ExtRefs {
		if r.SourceName == "mitre-attack" {
			return r.ExternalID, r.URL
		}
	}
	return "", ""
}

// firstParagraph keeps the description's first paragraph without "(Citation: ...)" markers.
func firstParagraph(s string) string {
	if i := strings.Index(s, "\n\n"); i >= 0 {
		s = s[:i]
	}
	for {
		i := strings.Index(s, "(Citation:")
		if i < 0 {
			break
		}
		j := strings.IndexByte(s[i:], ')')
		if j < 0 {
			s = s[:i]
			break
		}
		s = s[:i] + s[i+j+1:]
	}
	return strings.TrimSpace(s)
}

func (m *Matrix) tacticOrder(short string) int {
	if t, ok := m.byShort[short]; ok {
		return t.Order
	}
	return len(m.tactics)
}

// lessID orders T1055 < T1055.001 < T1056.
func lessID(a, b string) bool { return a < b }

// Technique returns the technique with id, in any case ("t1558.004").
func (m *Matrix) Technique(id string) (*Technique, bool) {
	t, ok := m.techniques[strings.ToUpper(strings.TrimSpace(id))]
	return t, ok
}

// Tactic returns the tactic for any spelling: short name, display name, Sigma tag
// form or Sentinel CamelCase ("command-and-control", "Command and Control",
// "command_and_control", "CommandAndControl") or its ID ("TA0011").
func (m *Matrix) Tactic(name string) (*Tactic, bool) {
	if t, ok := m.byShort[name]; ok {
		return t, true
	}
	t, ok := m.byKey[squash(name)]
	return t, ok
}

// Tactics returns the tactics in matrix order.
func (m *Matrix) Tactics() []*Tactic { return m.tactics }

// TechniquesOf returns the active (neither revoked nor deprecated) techniques and
// sub-techniques of a tactic, sorted by ID. tactic may be spelled any way Tactic accepts.
func (m *Matrix) TechniquesOf(tactic string) []*Technique {
	t, ok := m.Tactic(tactic)
	if !ok {
		return nil
	}
	return m.byTactic[t.Short]
}

// SubTechniques returns the active sub-techniques of a technique, sorted by ID.
func (m *Matrix) SubTechniques(id string) []*Technique {
	parent := strings.ToUpper(strings.TrimSpace(id))
	var out []*Technique
	for _, t := range m.techniques {
		if t.Parent == parent && t.Active() {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool { return lessID(out[i].ID, out[j].ID) })
	return out
}

// Techniques returns every technique in the bundle, revoked and deprecated included, sorted by ID.
func (m *Matrix) Techniques() []*Technique {
	out := make([]*Technique, 0, len(m.techniques))
	for _, t := range m.techniques {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return lessID(out[i].ID, out[j].ID) })
	return out
}

// squash lower-cases s and drops separators, so every spelling of a tactic compares equal.
func squash(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch r {
		case '-', '_', ' ', '.':
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// BundlePath is where a data folder laid out like the shared corpus (--data,
// RULEDEX_DATA) keeps the enterprise bundle.
func BundlePath(dataDir string) string {
	return filepath.Join(dataDir, "attack", "enterprise-attack.json")
}
