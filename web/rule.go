package web

import (
	"errors"
	"net/http"

	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/rule"
)

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

func (s *Server) ruleAPI(r *http.Request) (any, error) {
	return s.loadRule(r)
}

func (s *Server) rulePage(r *http.Request) (string, *view, error) {
	ru, err := s.loadRule(r)
	if err != nil {
		return "", nil, err
	}
	return "rule", &view{Title: ru.Title, API: "/api" + RuleURL(string(ru.Language), ru.ID),
		Crumbs: []crumb{{Name: "Detection rules", URL: "/rules/"}, {Name: ru.Language.Display(), URL: "/rules/?language=" + string(ru.Language)}}, Data: ru}, nil
}
