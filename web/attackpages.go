package web

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/ruledex/ruledex/attack"
	"github.com/ruledex/ruledex/catalog"
)

// CoverageMatrix computes the matrix for a filter from the catalog; the CLI's export
// uses it too.
func CoverageMatrix(ctx context.Context, cat *catalog.Catalog, am *attack.Matrix, f CoverageFilter) (*Matrix, error) {
	tags, err := cat.TechniqueTags(ctx, f.Language, f.Source, f.Severity)
	if err != nil {
		return nil, err
	}
	rt := make([]RuleTechnique, len(tags))
	for i, t := range tags {
		rt[i] = RuleTechnique{Rule: strconv.FormatInt(t.RulePK, 10), Language: t.Language, Technique: t.Technique}
	}
	return BuildMatrix(am, rt, f), nil
}

func (s *Server) matrix(r *http.Request) (*Matrix, error) {
	f, err := coverageParams(r.URL.Query())
	if err != nil {
		return nil, err
	}
	return CoverageMatrix(r.Context(), s.cat, s.att, f)
}

func (s *Server) matrixAPI(r *http.Request) (any, error) { return s.matrix(r) }

func (s *Server) navigatorAPI(r *http.Request) (any, error) {
	m, err := s.matrix(r)
	if err != nil {
		return nil, err
	}
	return NavigatorLayer(m, s.baseFor(r)), nil
}

type matrixData struct {
	M          *Matrix
	Navigator  string
	Languages  []catalog.FacetValue
	Sources    []catalog.FacetValue
	Severities []catalog.FacetValue
}

func (s *Server) matrixPage(r *http.Request) (string, *view, error) {
	m, err := s.matrix(r)
	if err != nil {
		return "", nil, err
	}
	// Filter choices: what the detections have.
	opts, err := s.cat.Search(r.Context(), catalog.SearchQuery{PerPage: 1, FacetLimit: 200})
	if err != nil {
		return "", nil, err
	}
	d := &matrixData{M: m, Navigator: "/attack/navigator.json" + m.Filter.Query(),
		Languages: opts.Facets["language"], Sources: opts.Facets["source"], Severities: opts.Facets["severity"]}
	return "matrix", &view{Title: "ATT&CK coverage", Wide: true, API: "/api/matrix" + m.Filter.Query(),
		Crumbs: []crumb{{Name: "ATT&CK coverage"}}, Data: d}, nil
}

// TechniqueResponse is the body of /api/techniques/{id}.
type TechniqueResponse struct {
	ID            string          `json:"id"`
	Name          string          `json:"name"`
	Parent        *TechniqueLink  `json:"parent,omitempty"`
	Subtechniques []TechniqueLink `json:"subtechniques,omitempty"`
	Tactics       []TacticLink    `json:"tactics"`
	Revoked       bool            `json:"revoked,omitempty"`
	RevokedBy     string          `json:"revoked_by,omitempty"`
	Deprecated    bool            `json:"deprecated,omitempty"`
	AttackURL     string          `json:"attack_url,omitempty"`
	Summary       string          `json:"summary,omitempty"`
	Rules         int             `json:"rules"`
	Detections    int             `json:"detections"`
	ByLanguage    map[string]int  `json:"by_language"`
	BySource      map[string]int  `json:"by_source"`
	Groups        []RuleGroup     `json:"groups"`
}

// TechniqueLink names a technique.
type TechniqueLink struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	URL  string `json:"url"`
}

// TacticLink names a tactic.
type TacticLink struct {
	ID    string `json:"id"`
	Short string `json:"short"`
	Name  string `json:"name"`
	URL   string `json:"url"`
}

// RuleGroup is the rules of one language.
type RuleGroup struct {
	Language string        `json:"language"`
	Rules    []RuleRefView `json:"rules"`
}

// RuleRefView is a listed rule with its page URL.
type RuleRefView struct {
	catalog.RuleRef
	URL string `json:"url"`
}

func techLink(t *attack.Technique) TechniqueLink {
	return TechniqueLink{ID: t.ID, Name: t.Name, URL: "/attack/techniques/" + t.ID + "/"}
}

func tacticLink(t *attack.Tactic) TacticLink {
	return TacticLink{ID: t.ID, Short: t.Short, Name: t.Name, URL: "/attack/tactics/" + t.Short + "/"}
}

func groupRules(refs []catalog.RuleRef) ([]RuleGroup, map[string]int, map[string]int, int) {
	var groups []RuleGroup
	byLang, bySource := map[string]int{}, map[string]int{}
	detections := 0
	idx := map[string]int{}
	for _, ref := range refs {
		i, ok := idx[ref.Language]
		if !ok {
			i = len(groups)
			idx[ref.Language] = i
			groups = append(groups, RuleGroup{Language: ref.Language})
		}
		groups[i].Rules = append(groups[i].Rules, RuleRefView{RuleRef: ref, URL: RuleURL(ref.Language, ref.ID)})
		byLang[ref.Language]++
		bySource[ref.Source]++
		if ref.Class == "detection" || ref.Class == "" {
			detections++
		}
	}
	if groups == nil {
		groups = []RuleGroup{}
	}
	return groups, byLang, bySource, detections
}

func (s *Server) technique(r *http.Request) (*TechniqueResponse, error) {
	id := strings.ToUpper(r.PathValue("id"))
	t, ok := s.att.Technique(id)
	if !ok || !techniqueID.MatchString(id) {
		return nil, notFound("no ATT&CK technique %q", r.PathValue("id"))
	}
	refs, err := s.cat.RulesWithTechnique(r.Context(), t.ID)
	if err != nil {
		return nil, err
	}
	out := &TechniqueResponse{ID: t.ID, Name: t.Name, Revoked: t.Revoked, RevokedBy: t.RevokedBy, Deprecated: t.Deprecated,
		AttackURL: t.URL, Summary: t.Summary, Rules: len(refs), Tactics: []TacticLink{}}
	out.Groups, out.ByLanguage, out.BySource, out.Detections = groupRules(refs)
	if t.Parent != "" {
		if p, ok := s.att.Technique(t.Parent); ok {
			l := techLink(p)
			out.Parent = &l
		}
	}
	for _, tac := range t.Tactics {
		if ta, ok := s.att.Tactic(tac); ok {
			out.Tactics = append(out.Tactics, tacticLink(ta))
		}
	}
	if t.Parent == "" {
		for _, tac := range t.Tactics {
			for _, sub := range s.att.TechniquesOf(tac) {
				if sub.Parent == t.ID {
					out.Subtechniques = append(out.Subtechniques, techLink(sub))
				}
			}
			break // sub-techniques share their parent's tactics
		}
	}
	return out, nil
}

func (s *Server) techniqueAPI(r *http.Request) (any, error) { return s.technique(r) }

func (s *Server) techniquePage(r *http.Request) (string, *view, error) {
	d, err := s.technique(r)
	if err != nil {
		return "", nil, err
	}
	return "technique", &view{Title: d.ID + " " + d.Name, API: "/api/techniques/" + d.ID,
		Crumbs: []crumb{{Name: "ATT&CK coverage", URL: "/attack/"}, {Name: d.ID}}, Data: d}, nil
}

// TacticResponse is the body of /api/tactics/{id}.
type TacticResponse struct {
	TacticLink
	AttackURL  string         `json:"attack_url,omitempty"`
	Summary    string         `json:"summary,omitempty"`
	Techniques []MatrixCell   `json:"techniques"`
	Covered    int            `json:"covered"`
	Total      int            `json:"total"`
	Rules      int            `json:"rules"`
	Detections int            `json:"detections"`
	ByLanguage map[string]int `json:"by_language"`
	BySource   map[string]int `json:"by_source"`
	Groups     []RuleGroup    `json:"groups"`
}

func (s *Server) tactic(r *http.Request) (*TacticResponse, error) {
	ta, ok := s.att.Tactic(r.PathValue("id"))
	if !ok {
		return nil, notFound("no ATT&CK tactic %q", r.PathValue("id"))
	}
	refs, err := s.cat.RulesWithTactic(r.Context(), ta.Short)
	if err != nil {
		return nil, err
	}
	m, err := CoverageMatrix(r.Context(), s.cat, s.att, CoverageFilter{})
	if err != nil {
		return nil, err
	}
	out := &TacticResponse{TacticLink: tacticLink(ta), AttackURL: ta.URL, Summary: ta.Summary, Rules: len(refs), Techniques: []MatrixCell{}}
	for _, col := range m.Tactics {
		if col.Short == ta.Short {
			out.Techniques, out.Covered, out.Total = col.Techniques, col.Covered, col.Total
		}
	}
	out.Groups, out.ByLanguage, out.BySource, out.Detections = groupRules(refs)
	return out, nil
}

func (s *Server) tacticAPI(r *http.Request) (any, error) { return s.tactic(r) }

func (s *Server) tacticPage(r *http.Request) (string, *view, error) {
	d, err := s.tactic(r)
	if err != nil {
		return "", nil, err
	}
	return "tactic", &view{Title: d.Name, API: "/api/tactics/" + d.Short,
		Crumbs: []crumb{{Name: "ATT&CK coverage", URL: "/attack/"}, {Name: d.Name}}, Data: d}, nil
}
