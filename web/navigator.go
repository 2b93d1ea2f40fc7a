package web

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// Layer is an ATT&CK Navigator layer, file format 4.5
// (mitre-attack/attack-navigator layers/spec/v4.5/layerformat.md). Field names are the
// format's own, hence camelCase here while the rest of the API is snake_case.
type Layer struct {
	Name                          string           `json:"name"`
	Versions                      LayerVersions    `json:"versions"`
	Domain                        string           `json:"domain"`
	Description                   string           `json:"description"`
	Sorting                       int              `json:"sorting"`
	Layout                        LayerLayout      `json:"layout"`
	HideDisabled                  bool             `json:"hideDisabled"`
	Techniques                    []LayerTechnique `json:"techniques"`
	Gradient                      LayerGradient    `json:"gradient"`
	LegendItems                   []LayerLegend    `json:"legendItems"`
	ShowTacticRowBackground       bool             `json:"showTacticRowBackground"`
	TacticRowBackground           string           `json:"tacticRowBackground"`
	SelectTechniquesAcrossTactics bool             `json:"selectTechniquesAcrossTactics"`
	SelectSubtechniquesWithParent bool             `json:"selectSubtechniquesWithParent"`
	SelectVisibleTechniques       bool             `json:"selectVisibleTechniques"`
	Metadata                      []LayerMeta      `json:"metadata,omitempty"`
	Links                         []LayerLink      `json:"links,omitempty"`
}

type LayerVersions struct {
	Attack    string `json:"attack,omitempty"`
	Navigator string `json:"navigator"`
	Layer     string `json:"layer"`
}

type LayerLayout struct {
	Layout                string `json:"layout"`
	ShowID                bool   `json:"showID"`
	ShowName              bool   `json:"showName"`
	ShowAggregateScores   bool   `json:"showAggregateScores"`
	CountUnscored         bool   `json:"countUnscored"`
	AggregateFunction     string `json:"aggregateFunction"`
	ExpandedSubtechniques string `json:"expandedSubtechniques"`
}

type LayerTechnique struct {
	TechniqueID       string      `json:"techniqueID"`
	Tactic            string      `json:"tactic,omitempty"`
	Score             int         `json:"score"`
	Comment           string      `json:"comment,omitempty"`
	Enabled           bool        `json:"enabled"`
	Links             []LayerLink `json:"links,omitempty"`
	Metadata          []LayerMeta `json:"metadata,omitempty"`
	ShowSubtechniques bool        `json:"showSubtechniques,omitempty"`
}

type LayerGradient struct {
	Colors   []string `json:"colors"`
	MinValue int      `json:"minValue"`
	MaxValue int      `json:"maxValue"`
}

type LayerLegend struct {
	Label string `json:"label"`
	Color string `json:"color"`
}

type LayerMeta struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type LayerLink struct {
	Label string `json:"label"`
	URL   string `json:"url"`
}

// layerColors run from "one rule" to "the best-covered technique", matching the
// matrix page's green scale.
var layerColors = []string{"#e3f1e0", "#84c27a", "#0e5a1d"}

// NavigatorLayer builds the layer for a coverage matrix: one technique entry per
// (technique, tactic) with at least one rule, the score being the rule count (folded
// from sub-techniques for parents, as on the matrix page). baseURL ("http://host:port")
// makes the links absolute, as the format requires; empty leaves our links out.
func NavigatorLayer(m *Matrix, baseURL string) *Layer {
	l := &Layer{
		Name: "ruledex coverage",
		// versions.attack is the ATT&CK content release ("16"); the bundle we read
		// carries only its spec version, so the field is left out (the Navigator
		// then assumes the current release) and the spec version goes to metadata.
		Versions:    LayerVersions{Navigator: "5.1.0", Layer: "4.5"},
		Domain:      "enterprise-attack",
		Description: "Detection rules per technique (" + m.Filter.Describe() + "); score = number of rules.",
		Layout: LayerLayout{Layout: "side", ShowName: true, ShowID: true, AggregateFunction: "max",
			ExpandedSubtechniques: "annotated"},
		Techniques:                    []LayerTechnique{},
		SelectTechniquesAcrossTactics: true,
		SelectSubtechniquesWithParent: false,
		TacticRowBackground:           "#dddddd",
	}
	if !m.Filter.Empty() {
		l.Name = "ruledex coverage: " + m.Filter.Describe()
	}
	baseURL = strings.TrimRight(baseURL, "/")
	add := func(c *MatrixCell, tactic string) {
		t := LayerTechnique{
			TechniqueID: c.ID,
			Tactic:      tactic,
			Score:       c.Count,
			Enabled:     true,
			Comment:     fmt.Sprintf("%d detection rule(s)%s", c.Count, byLangText(c.ByLanguage)),
		}
		if baseURL != "" {
			t.Links = append(t.Links, LayerLink{Label: "ruledex rules",
				URL: baseURL + "/attack/techniques/" + url.PathEscape(c.ID) + "/" + m.Filter.Query()})
		}
		if c.URL != "" {
			t.Links = append(t.Links, LayerLink{Label: "ATT&CK " + c.ID, URL: c.URL})
		}
		if len(c.Subs) > 0 {
			t.ShowSubtechniques = true
		}
		l.Techniques = append(l.Techniques, t)
	}
	for _, col := range m.Tactics {
		for i := range col.Techniques {
			c := &col.Techniques[i]
			if c.Count == 0 {
				continue
			}
			add(c, col.Short)
			for j := range c.Subs {
				if c.Subs[j].Count > 0 {
					add(&c.Subs[j], col.Short)
				}
			}
		}
	}
	max := m.Max
	if max < 2 {
		max = 2
	}
	l.Gradient = LayerGradient{Colors: layerColors, MinValue: 1, MaxValue: max}
	l.LegendItems = []LayerLegend{
		{Label: "1 rule", Color: layerColors[0]},
		{Label: fmt.Sprintf("%d rules", max), Color: layerColors[2]},
	}
	l.Metadata = []LayerMeta{{Name: "generator", Value: "ruledex"}, {Name: "filter", Value: m.Filter.Describe()},
		{Name: "rules", Value: fmt.Sprint(m.Rules)}}
	if m.AttackVersion != "" {
		l.Metadata = append(l.Metadata, LayerMeta{Name: "attack_spec_version", Value: m.AttackVersion})
	}
	return l
}

func byLangText(by map[string]int) string {
	if len(by) == 0 {
		return ""
	}
	langs := make([]string, 0, len(by))
	for l := range by {
		langs = append(langs, l)
	}
	sort.Strings(langs)
	parts := make([]string, len(langs))
	for i, l := range langs {
		parts[i] = fmt.Sprintf("%s %d", l, by[l])
	}
	return ": " + strings.Join(parts, ", ")
}
