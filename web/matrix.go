package web

import (
	"net/url"
	"slices"
	"strings"

	"github.com/ruledex/ruledex/attack"
)

// CoverageFilter narrows the rules counted in the matrix and the Navigator layer.
type CoverageFilter struct {
	Language string `json:"language,omitempty"`
	Source   string `json:"source,omitempty"`
	Severity string `json:"severity,omitempty"`
}

// Empty reports whether no filter is set.
func (f CoverageFilter) Empty() bool { return f == CoverageFilter{} }

// Describe says in words what the filter keeps.
func (f CoverageFilter) Describe() string {
	var p []string
	if f.Language != "" {
		p = append(p, "language "+f.Language)
	}
	if f.Source != "" {
		p = append(p, "source "+f.Source)
	}
	if f.Severity != "" {
		p = append(p, "severity "+f.Severity)
	}
	if len(p) == 0 {
		return "all detection rules"
	}
	return strings.Join(p, ", ")
}

// Values returns the filter as query parameters.
func (f CoverageFilter) Values() url.Values {
	q := url.Values{}
	if f.Language != "" {
		q.Set("language", f.Language)
	}
	if f.Source != "" {
		q.Set("source", f.Source)
	}
	if f.Severity != "" {
		q.Set("severity", f.Severity)
	}
	return q
}

// Query returns "?language=..." or "" for links that keep the filter.
func (f CoverageFilter) Query() string {
	if f.Empty() {
		return ""
	}
	return "?" + f.Values().Encode()
}

// RuleTechnique is one (rule, technique) tag of a detection rule, what the matrix counts.
type RuleTechnique struct {
	Rule      string // any key unique per rule
	Language  string
	Technique string // upper-case ATT&CK ID
}

// Matrix is the coverage matrix: tactics in ATT&CK order as columns, each with its
// techniques; a cell counts the distinct detection rules tagging the technique or one
// of its sub-techniques (sub-techniques fold under their parent).
type Matrix struct {
	Filter        CoverageFilter  `json:"filter"`
	AttackVersion string          `json:"attack_spec_version,omitempty"`
	Rules         int             `json:"rules"` // distinct rules with at least one known technique
	Max           int             `json:"max"`   // largest cell, for the colour scale
	Tactics       []*MatrixColumn `json:"tactics"`
	// Unknown lists technique IDs rules use that the bundle does not have.
	Unknown []string `json:"unknown,omitempty"`
}

// MatrixColumn is one tactic.
type MatrixColumn struct {
	ID         string       `json:"id"`
	Short      string       `json:"short"`
	Name       string       `json:"name"`
	Covered    int          `json:"covered"` // techniques with at least one rule
	Total      int          `json:"total"`   // techniques in the tactic
	Techniques []MatrixCell `json:"techniques"`
}

// MatrixCell is one technique under one tactic.
type MatrixCell struct {
	ID         string         `json:"id"`
	Name       string         `json:"name"`
	URL        string         `json:"-"`
	Count      int            `json:"count"`
	ByLanguage map[string]int `json:"by_language,omitempty"`
	Subs       []MatrixCell   `json:"subtechniques,omitempty"`
}

// BuildMatrix counts tags into the ATT&CK matrix. Revoked and deprecated techniques
// have no cell; rules tagging only them are still counted in Rules.
func BuildMatrix(am *attack.Matrix, tags []RuleTechnique, f CoverageFilter) *Matrix {
	exact := map[string]map[string]string{}  // technique -> rule -> language
	folded := map[string]map[string]string{} // parent -> rule -> language
	rules := map[string]bool{}
	unknown := map[string]bool{}
	for _, t := range tags {
		id := strings.ToUpper(t.Technique)
		if _, ok := am.Technique(id); !ok {
			unknown[id] = true
			continue
		}
		rules[t.Rule] = true
		put(exact, id, t.Rule, t.Language)
		parent := id
		if i := strings.IndexByte(id, '.'); i > 0 {
			parent = id[:i]
		}
		put(folded, parent, t.Rule, t.Language)
	}
	m := &Matrix{Filter: f, AttackVersion: am.Version, Rules: len(rules)}
	for id := range unknown {
		m.Unknown = append(m.Unknown, id)
	}
	slices.Sort(m.Unknown)
	for _, ta := range am.Tactics() {
		col := &MatrixColumn{ID: ta.ID, Short: ta.Short, Name: ta.Name}
		var parentIdx = map[string]int{}
		for _, te := range am.TechniquesOf(ta.Short) {
			if te.Parent == "" {
				cell := MatrixCell{ID: te.ID, Name: te.Name, URL: te.URL, Count: len(folded[te.ID]), ByLanguage: langCounts(folded[te.ID])}
				parentIdx[te.ID] = len(col.Techniques)
				col.Techniques = append(col.Techniques, cell)
				col.Total++
				if cell.Count > 0 {
					col.Covered++
				}
				if cell.Count > m.Max {
					m.Max = cell.Count
				}
			}
		}
		for _, te := range am.TechniquesOf(ta.Short) {
			if te.Parent == "" {
				continue
			}
			i, ok := parentIdx[te.Parent]
			if !ok {
				continue
			}
			col.Techniques[i].Subs = append(col.Techniques[i].Subs,
				MatrixCell{ID: te.ID, Name: te.Name, URL: te.URL, Count: len(exact[te.ID]), ByLanguage: langCounts(exact[te.ID])})
		}
		m.Tactics = append(m.Tactics, col)
	}
	return m
}

func put(m map[string]map[string]string, k, rule, lang string) {
	if m[k] == nil {
		m[k] = map[string]string{}
	}
	m[k][rule] = lang
}

func langCounts(rules map[string]string) map[string]int {
	if len(rules) == 0 {
		return nil
	}
	out := map[string]int{}
	for _, l := range rules {
		out[l]++
	}
	return out
}
