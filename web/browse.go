package web

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/ruledex/ruledex/catalog"
)

// SearchHit is one result of /api/search: the catalog's hit plus its page URL.
type SearchHit struct {
	catalog.SearchHit
	URL string `json:"url"`
}

// SearchResponse is the body of /api/search.
type SearchResponse struct {
	Query   string                          `json:"query"`
	Filters map[string]string               `json:"filters"`
	Total   int                             `json:"total"`
	Page    int                             `json:"page"`
	PerPage int                             `json:"per_page"`
	Pages   int                             `json:"pages"`
	Results []SearchHit                     `json:"results"`
	Facets  map[string][]catalog.FacetValue `json:"facets"`
	// hitJSON is the server's cache of encoded hits (nil: none).
	hitJSON *hitJSONCache
}

func (s *Server) search(r *http.Request) (*SearchResponse, catalog.SearchQuery, error) {
	sq, err := searchParams(r.URL.Query())
	if err != nil {
		return nil, sq, err
	}
	res, err := s.cat.Search(r.Context(), sq)
	if err != nil {
		return nil, sq, err
	}
	out := &SearchResponse{Query: sq.Text, Filters: map[string]string{}, Total: res.Total, Page: sq.Page, PerPage: sq.PerPage,
		Pages: (res.Total + sq.PerPage - 1) / sq.PerPage, Results: make([]SearchHit, len(res.Hits)), Facets: res.Facets,
		hitJSON: &s.hitJSON}
	for i, h := range res.Hits {
		out.Results[i] = SearchHit{SearchHit: h, URL: RuleURL(h.Language, h.ID)}
	}
	for name, v := range map[string]string{"language": sq.Language, "source": sq.Source, "severity": sq.Severity,
		"status": sq.Status, "logsource": sq.LogSource, "tactic": sq.Tactic, "technique": sq.Technique, "field": sq.Field, "class": sq.Class} {
		if v != "" {
			out.Filters[name] = v
		}
	}
	return out, sq, nil
}

func (s *Server) searchAPI(r *http.Request) (any, error) {
	out, _, err := s.search(r)
	return out, err
}

// facetView is one facet as the browse page lists it.
type facetView struct {
	Name, Label string
	Values      []facetValueView
}

type facetValueView struct {
	Value, Label string
	Count        int
	Selected     bool
	URL          string
}

type activeFilter struct {
	Label, Value, RemoveURL string
}

type browseData struct {
	Resp      *SearchResponse
	Searching bool
	Facets    []facetView
	Active    []activeFilter
	Prev      string
	Next      string
	First     int
	Last      int
}

var facetLabels = map[string]string{
	"language": "Language", "source": "Source", "severity": "Severity", "status": "Status",
	"logsource": "Log source", "tactic": "Tactic", "technique": "Technique", "field": "Field", "class": "Class",
}

// facetOrder is the order the browse page lists the facets in.
var facetOrder = []string{"language", "class", "source", "severity", "status", "logsource", "tactic", "technique", "field"}

func (s *Server) browsePage(r *http.Request) (string, *view, error) {
	resp, sq, err := s.search(r)
	if err != nil {
		return "", nil, err
	}
	q := r.URL.Query()
	d := &browseData{Resp: resp, Searching: sq.Text != ""}
	for _, name := range facetOrder {
		fv := facetView{Name: name, Label: facetLabels[name]}
		cur := q.Get(name)
		for _, v := range resp.Facets[name] {
			item := facetValueView{Value: v.Value, Label: s.facetLabel(name, v.Value), Count: v.Count, Selected: v.Value == cur}
			if item.Selected {
				item.URL = queryWith(q, name, "")
			} else {
				item.URL = queryWith(q, name, v.Value)
			}
			fv.Values = append(fv.Values, item)
		}
		if len(fv.Values) > 0 {
			d.Facets = append(d.Facets, fv)
		}
		if cur != "" {
			d.Active = append(d.Active, activeFilter{Label: fv.Label, Value: s.facetLabel(name, cur), RemoveURL: queryWith(q, name, "")})
		}
	}
	if resp.Page > 1 {
		d.Prev = queryWith(q, "page", strconv.Itoa(resp.Page-1))
	}
	if resp.Page < resp.Pages {
		d.Next = queryWith(q, "page", strconv.Itoa(resp.Page+1))
	}
	if resp.Total > 0 {
		d.First = (resp.Page-1)*resp.PerPage + 1
		d.Last = d.First + len(resp.Results) - 1
	}
	title := "Detection rules"
	if sq.Text != "" {
		title = "Search: " + sq.Text
	}
	return "browse", &view{Title: title, Query: sq.Text, API: "/api/search?" + q.Encode(),
		Crumbs: []crumb{{Name: "Detection rules", URL: "/rules/"}}, Data: d}, nil
}

// facetLabel names a facet value for people: technique and tactic names from ATT&CK.
func (s *Server) facetLabel(facet, v string) string {
	switch facet {
	case "technique":
		if t, ok := s.att.Technique(v); ok {
			return t.ID + " " + t.Name
		}
	case "tactic":
		if t, ok := s.att.Tactic(v); ok {
			return t.Name
		}
	case "language":
		return langDisplay(v)
	case "class":
		return strings.ReplaceAll(v, "-", " ")
	}
	return v
}
