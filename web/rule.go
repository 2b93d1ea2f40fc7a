package web

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/page"
	"github.com/ruledex/ruledex/rule"
)

// RuleResponse is the body of /api/rules/{lang}/{id}: the rule page's view model
// (package page, the same data `ruledex show --json` builds on) with link URLs added.
type RuleResponse struct {
	*page.Rule
	ID         string             `json:"id"`
	Language   string             `json:"language"`
	Class      string             `json:"class"`
	Techniques []string           `json:"techniques,omitempty"`
	Tactics    []string           `json:"tactics,omitempty"`
	Indicators []IndicatorRowView `json:"indicators,omitempty"`
	Neighbors  *NeighborsView     `json:"neighbors,omitempty"`
}

// NeighborsView is the Neighbors section: equivalent rules (same canonical form, any
// language), stricter and broader alternatives, each with its difference.
type NeighborsView struct {
	ClassID    string         `json:"class_id,omitempty"`
	ClassURL   string         `json:"class_url,omitempty"`
	ClassSize  int            `json:"class_size,omitempty"`
	Shape      string         `json:"shape,omitempty"`
	Equivalent []NeighborView `json:"equivalent"`
	Stricter   []NeighborView `json:"stricter"`
	Broader    []NeighborView `json:"broader"`
}

// NeighborView is one related rule.
type NeighborView struct {
	ID         string `json:"id"`
	Title      string `json:"title"`
	Language   string `json:"language"`
	Source     string `json:"source"`
	URL        string `json:"url"`
	Difference string `json:"difference,omitempty"`
}

func neighborViews(ns []catalog.Neighbor) []NeighborView {
	out := make([]NeighborView, 0, len(ns))
	for _, n := range ns {
		out = append(out, NeighborView{ID: n.ID, Title: n.Title, Language: string(n.Language), Source: n.Repo,
			URL: RuleURL(string(n.Language), n.ID), Difference: n.Difference})
	}
	return out
}

// EqClassURL is the page of an equivalence class.
func EqClassURL(id string) string { return "/rules/eq/" + url.PathEscape(id) + "/" }

// IndicatorRowView is a page.IndicatorRow whose values carry their indicator page URL.
type IndicatorRowView struct {
	page.IndicatorRow
	FieldURL string               `json:"field_url"`
	Values   []IndicatorValueView `json:"values"`
}

// IndicatorValueView is one value with its corpus count and indicator page URL.
type IndicatorValueView struct {
	page.IndicatorValue
	Corpus string `json:"corpus,omitempty"`
	URL    string `json:"url"`
}

// ruleView is what the rule template receives.
type ruleView struct {
	*RuleResponse
	// Stages split into Stage 0 and the alternatives of a top-level OR (one group,
	// Alt 0, when the rule is a single conjunction).
	Condition []page.StageView
	Groups    []stageGroup
	Upstream  string
}

type stageGroup struct {
	Alt    int
	Stages []page.StageView
}

func (s *Server) loadRule(r *http.Request) (*rule.Rule, error) {
	lang, id := r.PathValue("lang"), r.PathValue("id")
	if !languages[lang] {
		return nil, notFound("no rule language %q", lang)
	}
	ru, err := s.cat.Rule(r.Context(), rule.Language(lang), id)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil, notFound("no %s rule with id %q", lang, id)
	}
	return ru, err
}

// rule builds the page model of the requested rule.
func (s *Server) rule(r *http.Request) (*RuleResponse, *rule.Rule, error) {
	ru, err := s.loadRule(r)
	if err != nil {
		return nil, nil, err
	}
	counts, err := s.cat.RuleIndicatorCounts(r.Context(), ru)
	if err != nil {
		return nil, nil, err
	}
	in := page.Input{Counts: counts, Tactics: s.tactics}
	for _, id := range ru.Techniques {
		if t, ok := s.att.Technique(id); ok {
			in.Techniques = append(in.Techniques, catalog.Technique{ID: t.ID, Name: t.Name, Parent: t.Parent, Tactics: t.Tactics,
				Revoked: t.Revoked, RevokedBy: t.RevokedBy, Deprecated: t.Deprecated, URL: t.URL})
		}
	}
	p := page.BuildRule(ru, in)
	if s.events != nil {
		for _, row := range s.events.Coverage(ru) {
			er := page.EventRow{Provider: row.Provider, EventID: row.EventID, Title: row.Title}
			if row.Known && row.Slug != "" {
				er.URL = "/" + row.Slug + "/" + strconv.Itoa(row.EventID)
			}
			p.Events = append(p.Events, er)
		}
	}
	out := &RuleResponse{Rule: p, ID: ru.ID, Language: string(ru.Language), Class: string(ru.Class),
		Techniques: ru.Techniques, Tactics: ru.Tactics}
	if out.Class == "" {
		out.Class = string(rule.Detection)
	}
	ns, err := s.cat.Neighbors(r.Context(), ru.Language, ru.ID)
	if err != nil {
		return nil, nil, err
	}
	if len(ns.Equivalent)+len(ns.Stricter)+len(ns.Broader) > 0 || ns.ClassSize > 1 {
		out.Neighbors = &NeighborsView{ClassID: ns.ClassID, ClassSize: ns.ClassSize, Shape: ns.Shape,
			Equivalent: neighborViews(ns.Equivalent), Stricter: neighborViews(ns.Stricter), Broader: neighborViews(ns.Broader)}
		if ns.ClassID != "" {
			out.Neighbors.ClassURL = EqClassURL(ns.ClassID)
		}
	}
	for _, row := range p.Indicators {
		rv := IndicatorRowView{IndicatorRow: row, FieldURL: funcs["fieldURL"].(func(string) string)(row.Canonical)}
		for _, v := range row.Values {
			rv.Values = append(rv.Values, IndicatorValueView{IndicatorValue: v, Corpus: v.CorpusText(), URL: IndicatorURL(v.Indicator)})
		}
		out.Indicators = append(out.Indicators, rv)
	}
	return out, ru, nil
}

func (s *Server) ruleAPI(r *http.Request) (any, error) {
	out, _, err := s.rule(r)
	return out, err
}

func (s *Server) rulePage(r *http.Request) (string, *view, error) {
	out, ru, err := s.rule(r)
	if err != nil {
		return "", nil, err
	}
	v := &ruleView{RuleResponse: out, Upstream: safeURL(ru.Source.UpstreamURL)}
	for _, st := range out.Stages {
		if st.Kind == rule.StageCondition {
			v.Condition = append(v.Condition, st)
			continue
		}
		if n := len(v.Groups); n == 0 || v.Groups[n-1].Alt != st.Alt {
			v.Groups = append(v.Groups, stageGroup{Alt: st.Alt})
		}
		g := &v.Groups[len(v.Groups)-1]
		g.Stages = append(g.Stages, st)
	}
	crumbs := make([]crumb, 0, len(out.Breadcrumb))
	for _, c := range out.Breadcrumb {
		crumbs = append(crumbs, crumb{Name: c.Name, URL: c.URL})
	}
	return "rule", &view{Title: out.Title, API: "/api" + out.URL, Crumbs: crumbs, Data: v}, nil
}
