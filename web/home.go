package web

import (
	"net/http"

	"github.com/ruledex/ruledex/catalog"
)

// OverviewResponse is the body of /api/overview.
type OverviewResponse struct {
	*catalog.Overview
	Shared []SharedIndicator `json:"most_shared_indicators"`
}

// SharedIndicator is a most-shared indicator with its page URL.
type SharedIndicator struct {
	catalog.SharedValue
	URL string `json:"url"`
}

func (s *Server) overview(r *http.Request) (*OverviewResponse, error) {
	o, err := s.cat.Overview(r.Context(), 20)
	if err != nil {
		return nil, err
	}
	out := &OverviewResponse{Overview: o, Shared: make([]SharedIndicator, len(o.Shared))}
	for i, sv := range o.Shared {
		out.Shared[i] = SharedIndicator{SharedValue: sv, URL: indicatorURLFromKey(sv.Field, sv.Key, sv.Transforms)}
	}
	return out, nil
}

func (s *Server) overviewAPI(r *http.Request) (any, error) { return s.overview(r) }

func (s *Server) homePage(r *http.Request) (string, *view, error) {
	o, err := s.overview(r)
	if err != nil {
		return "", nil, err
	}
	return "home", &view{Title: "", API: "/api/overview", Data: o}, nil
}
