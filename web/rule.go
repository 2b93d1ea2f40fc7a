package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

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
}

// EqClassURL is the page of an equivalence class.
func EqClassURL(id string) string { return page.EqClassURL(id) }

// IndicatorRowView is a page.IndicatorRow whose values carry their indicator page URL.
type IndicatorRowView struct {
	page.IndicatorRow
	FieldURL string               `json:"field_url"`
	Values   []IndicatorValueView `json:"values"`
	// Shown and More split Values for the page: a long list shows its first values
	// and folds the rest under "show all N".
	Shown []IndicatorValueView `json:"-"`
	More  []IndicatorValueView `json:"-"`
}

// shownValues is how many values of one indicator row a rule page lists before folding.
const shownValues = 12

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
	if s.translate != nil {
		p.Translations = s.translate(ru)
	}
	if s.events != nil {
		for _, row := range s.events.Coverage(ru) {
			er := page.EventRow{Provider: row.Provider, EventID: row.EventID, Title: row.Title}
			if row.Known && row.Slug != "" {
				er.URL = "/" + row.Slug + "/" + strconv.Itoa(row.EventID)
			}
			p.Events = append(p.Events, er)
		}
		for _, a := range s.events.AbsentFields(ru) {
			p.AbsentFields = append(p.AbsentFields, page.AbsentField(a))
		}
	}
	out := &RuleResponse{Rule: p, ID: ru.ID, Language: string(ru.Language), Class: string(ru.Class),
		Techniques: ru.Techniques, Tactics: ru.Tactics}
	if out.Class == "" {
		out.Class = string(rule.Detection)
	}
	if p.Neighbors, err = page.LoadNeighbors(r.Context(), s.cat, ru); err != nil {
		return nil, nil, err
	}
	for _, row := range p.Indicators {
		rv := IndicatorRowView{IndicatorRow: row, FieldURL: funcs["fieldURL"].(func(string) string)(row.Canonical)}
		for _, v := range row.Values {
			rv.Values = append(rv.Values, IndicatorValueView{IndicatorValue: v, Corpus: v.CorpusText(), URL: IndicatorURL(v.Indicator)})
		}
		rv.Shown, rv.More = rv.Values, nil
		if len(rv.Values) > shownValues+3 { // folding fewer than 4 saves nothing
			rv.Shown, rv.More = rv.Values[:shownValues], rv.Values[shownValues:]
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
	return "rule", &view{Title: out.Title, API: "/api" + strings.TrimSuffix(out.URL, "/"), Crumbs: crumbs, Data: v}, nil
}
