package web

import (
	"errors"
	"net/http"
	"sort"
	"strconv"

	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/rule"
)

// EqClassResponse is the body of /api/rules/eq/{id}: the rules sharing one canonical form.
type EqClassResponse struct {
	ID    string `json:"id"`
	URL   string `json:"url"`
	Size  int    `json:"size"`
	Shape string `json:"shape"`
	// Basis is "field-map" when members are equivalent only through field and telemetry
	// mappings (the class may then span languages), else "same-telemetry".
	Basis      string           `json:"basis"`
	Stages     int              `json:"stages"`
	ByLanguage map[string]int   `json:"by_language"`
	Members    []EqMember       `json:"members"`
	Indicators []EqIndicatorRow `json:"indicators"`
	// Common are the stages every member writes identically (same title and text);
	// members' Stages then mark them Common, and the page shows them once.
	Common []EqStage `json:"common,omitempty"`
}

// EqMember is one rule of the class with its stages in its own syntax.
type EqMember struct {
	ID       string    `json:"id"`
	Title    string    `json:"title"`
	Language string    `json:"language"`
	Source   string    `json:"source"`
	URL      string    `json:"url"`
	Stages   []EqStage `json:"stages"`
}

// EqStage is one stage of a member.
type EqStage struct {
	Title  string `json:"title"`
	Text   string `json:"text"`
	Common bool   `json:"common,omitempty"`
}

// EqIndicatorRow is one indicator of the union: how many members test it, how many
// rules of the corpus do.
type EqIndicatorRow struct {
	Field   string `json:"field"`
	Kind    string `json:"kind"`
	Value   string `json:"value"`
	Members int    `json:"members"`
	Corpus  int    `json:"corpus"`
	URL     string `json:"url"`
}

func (s *Server) eqClass(r *http.Request) (*EqClassResponse, error) {
	id := r.PathValue("id")
	c, err := s.cat.EqClassByID(r.Context(), id)
	var le *catalog.LookupError
	if errors.As(err, &le) || errors.Is(err, catalog.ErrNotFound) {
		return nil, notFound("no equivalence class %q", id)
	}
	if err != nil {
		return nil, err
	}
	out := &EqClassResponse{ID: c.ID, URL: EqClassURL(c.ID), Size: len(c.Members), Shape: c.Shape, Basis: c.Basis, ByLanguage: c.ByLang,
		Members: []EqMember{}, Indicators: []EqIndicatorRow{}}
	type agg struct {
		in      rule.Indicator
		members map[string]bool
	}
	union := map[string]*agg{}
	var keys []string
	for _, m := range c.Members {
		em := EqMember{ID: m.ID, Title: m.Title, Language: string(m.Language), Source: m.Source.Repo, URL: RuleURL(string(m.Language), m.ID)}
		n := 0
		for _, st := range m.Stages {
			label := st.Label
			if label == "" {
				label = string(st.Kind)
			}
			em.Stages = append(em.Stages, EqStage{Title: "Stage " + strconv.Itoa(st.Index) + ": " + label, Text: st.Text})
			if st.Kind != rule.StageCondition {
				n++
			}
		}
		out.Stages = max(out.Stages, n)
		out.Members = append(out.Members, em)
		for _, in := range m.Indicators {
			if in.Negated {
				continue
			}
			a := union[in.Key]
			if a == nil {
				a = &agg{in: in, members: map[string]bool{}}
				union[in.Key] = a
				keys = append(keys, in.Key)
			}
			a.members[string(m.Language)+"/"+m.ID] = true
		}
	}
	markCommon(out)
	counts, err := s.cat.IndicatorCounts(r.Context(), keys, false)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		a := union[k]
		out.Indicators = append(out.Indicators, EqIndicatorRow{Field: a.in.Canonical, Kind: string(a.in.Kind), Value: a.in.Value,
			Members: len(a.members), Corpus: counts[k].Total, URL: IndicatorURL(a.in)})
	}
	sort.SliceStable(out.Indicators, func(i, j int) bool {
		if out.Indicators[i].Members != out.Indicators[j].Members {
			return out.Indicators[i].Members > out.Indicators[j].Members
		}
		return out.Indicators[i].Field < out.Indicators[j].Field
	})
	return out, nil
}

// markCommon finds the stages all members share, so the page can show members side by
// side with only their differences.
func markCommon(out *EqClassResponse) {
	if len(out.Members) < 2 {
		return
	}
	in := map[EqStage]int{}
	for _, m := range out.Members {
		seen := map[EqStage]bool{}
		for _, st := range m.Stages {
			if !seen[st] {
				seen[st] = true
				in[st]++
			}
		}
	}
	for _, st := range out.Members[0].Stages {
		if in[st] == len(out.Members) {
			out.Common = append(out.Common, st)
		}
	}
	for i := range out.Members {
		for j := range out.Members[i].Stages {
			st := out.Members[i].Stages[j]
			out.Members[i].Stages[j].Common = in[st] == len(out.Members)
		}
	}
}

func (s *Server) eqClassAPI(r *http.Request) (any, error) { return s.eqClass(r) }

func (s *Server) eqClassPage(r *http.Request) (string, *view, error) {
	d, err := s.eqClass(r)
	if err != nil {
		return "", nil, err
	}
	return "eqclass", &view{Title: "Equivalence class " + d.ID, API: "/api/rules/eq/" + d.ID,
		Crumbs: []crumb{{Name: "Detection rules", URL: "/rules/"}, {Name: "Equivalence class"}}, Data: d}, nil
}
