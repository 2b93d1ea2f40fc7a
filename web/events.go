package web

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/derive"
	"github.com/ruledex/ruledex/winevent"
)

// syncEvents stores event coverage for rules that have none yet.
func (s *Server) syncEvents(ctx context.Context) error {
	if s.events == nil {
		return nil
	}
	_, err := derive.Events(ctx, s.cat, s.events)
	return err
}

// ProviderSummary is one provider of the index.
type ProviderSummary struct {
	Name     string   `json:"name"`
	Slug     string   `json:"slug"`
	URL      string   `json:"url"`
	Channels []string `json:"channels"`
	Events   int      `json:"events"`
	Rules    int      `json:"rules"`
}

// ProvidersResponse is the body of /api/events.
type ProvidersResponse struct {
	Providers []ProviderSummary `json:"providers"`
}

func providerURL(p *winevent.Provider) string { return "/" + url.PathEscape(p.Slug) + "/" }

func eventURL(p *winevent.Provider, id int) string {
	return "/" + url.PathEscape(p.Slug) + "/" + strconv.Itoa(id)
}

func (s *Server) needEvents() error {
	if s.events == nil {
		return notFound("the event catalog is not loaded (start the server with --data)")
	}
	return nil
}

func (s *Server) providers(r *http.Request) (*ProvidersResponse, error) {
	if err := s.needEvents(); err != nil {
		return nil, err
	}
	counts, err := s.cat.ProviderRuleCounts(r.Context())
	if err != nil {
		return nil, err
	}
	out := &ProvidersResponse{Providers: []ProviderSummary{}}
	for _, p := range s.events.Providers() {
		out.Providers = append(out.Providers, ProviderSummary{Name: p.Name, Slug: p.Slug, URL: providerURL(p),
			Channels: p.Channels, Events: len(p.Events), Rules: counts[p.Name]})
	}
	return out, nil
}

// EventSummary is one event of a provider page.
type EventSummary struct {
	ID      int    `json:"event_id"`
	Title   string `json:"title"`
	Channel string `json:"channel"`
	Level   string `json:"level,omitempty"` // as the manifest states it; "" when the data has none
	// Recorded is what a real record of the event shows (level, task, opcode); nil
	// when the corpus has no record of it.
	Recorded   *RecordedView       `json:"recorded,omitempty"`
	URL        string              `json:"url"`
	Rules      int                 `json:"rules"`
	ByLanguage []catalog.LangCount `json:"by_language,omitempty"`
}

// RecordedView is what one real record of an event shows.
type RecordedView struct {
	Level     int    `json:"level"`
	LevelName string `json:"level_name"`
	Task      int    `json:"task"`
	Opcode    int    `json:"opcode"`
	Source    string `json:"source"` // the record's file in the regression data
	JSON      string `json:"json,omitempty"`
}

func (s *Server) recorded(provider string, id int, withJSON bool) *RecordedView {
	smp, ok := s.events.Sample(provider, id)
	if !ok {
		return nil
	}
	v := &RecordedView{Level: smp.Level, LevelName: winevent.LevelName(smp.Level), Task: smp.Task, Opcode: smp.Opcode, Source: smp.Path}
	if withJSON {
		v.JSON = smp.JSON
	}
	return v
}

// ProviderResponse is the body of /api/events/{provider}.
type ProviderResponse struct {
	ProviderSummary
	EventList []EventSummary `json:"event_list"`
}

func (s *Server) lookupProvider(name string) (*winevent.Provider, error) {
	if err := s.needEvents(); err != nil {
		return nil, err
	}
	p, ok := s.events.Provider(name)
	if !ok {
		return nil, notFound("no event provider %q", name)
	}
	return p, nil
}

func (s *Server) provider(r *http.Request, name string) (*ProviderResponse, error) {
	p, err := s.lookupProvider(name)
	if err != nil {
		return nil, err
	}
	counts, err := s.cat.EventRuleCounts(r.Context())
	if err != nil {
		return nil, err
	}
	byEvent := map[int]catalog.EventCount{}
	rules := 0
	for _, c := range counts {
		if c.Provider == p.Name {
			byEvent[c.EventID] = c
		}
	}
	pc, err := s.cat.ProviderRuleCounts(r.Context())
	if err != nil {
		return nil, err
	}
	rules = pc[p.Name]
	out := &ProviderResponse{ProviderSummary: ProviderSummary{Name: p.Name, Slug: p.Slug, URL: providerURL(p), Channels: p.Channels,
		Events: len(p.Events), Rules: rules}, EventList: []EventSummary{}}
	for _, e := range p.Events {
		c := byEvent[e.ID]
		out.EventList = append(out.EventList, EventSummary{ID: e.ID, Title: e.Title, Channel: e.Channel, Level: e.Level, Recorded: s.recorded(p.Name, e.ID, false), URL: eventURL(p, e.ID),
			Rules: c.Rules, ByLanguage: c.ByLanguage})
	}
	return out, nil
}

// EventField is one field of an event page.
type EventField struct {
	winevent.Field
	Rules      int                 `json:"rules"`
	ByLanguage []catalog.LangCount `json:"by_language,omitempty"`
	RulesURL   string              `json:"rules_url,omitempty"`
}

// EventIndicatorView is a common indicator with its page URL.
type EventIndicatorView struct {
	catalog.EventIndicator
	URL string `json:"url"`
}

// EventResponse is the body of /api/events/{provider}/{id}.
type EventResponse struct {
	Provider    string `json:"provider"`
	ProviderURL string `json:"provider_url"`
	ID          int    `json:"event_id"`
	Title       string `json:"title"`
	Channel     string `json:"channel"`
	Version     int    `json:"version"`
	Level       string `json:"level,omitempty"`
	// Example is a real record of the event (the page's "Example event"); nil when the
	// corpus has none.
	Example     *RecordedView        `json:"example,omitempty"`
	Description string               `json:"description,omitempty"`
	Message     string               `json:"message_template,omitempty"`
	Fields      []EventField         `json:"fields"`
	Indicators  []EventIndicatorView `json:"common_indicators"`
	Rules       int                  `json:"rules"`
	// FieldFilter and RuleList: the rules covering the event, or testing FieldFilter.
	FieldFilter string        `json:"field_filter,omitempty"`
	RuleList    []RuleRefView `json:"rule_list"`
	// The rule list is paged: ListTotal rules match (the field and language filters
	// applied), RuleList holds ListFrom..ListTo (1-based) of them.
	LanguageFilter string        `json:"language_filter,omitempty"`
	ListTotal      int           `json:"list_total"`
	ListFrom       int           `json:"list_from"`
	ListTo         int           `json:"list_to"`
	Page           int           `json:"page"`
	Pages          int           `json:"pages"`
	ListLanguages  []ListLangRef `json:"list_languages,omitempty"`
	PrevURL        string        `json:"prev_url,omitempty"`
	NextURL        string        `json:"next_url,omitempty"`
}

// ListLangRef is one language of an event's rule list, with the link filtering to it.
type ListLangRef struct {
	Language string `json:"language"`
	Rules    int    `json:"rules"`
	URL      string `json:"url"`
}

// eventListPerPage bounds an event page's rule list (Sysmon 1 has thousands of rules).
const eventListPerPage = 200

func (s *Server) event(r *http.Request, provider, id string) (*EventResponse, error) {
	p, err := s.lookupProvider(provider)
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(id)
	if err != nil {
		return nil, notFound("no event %q of %s", id, p.Name)
	}
	e, ok := p.Event(n)
	if !ok {
		return nil, notFound("no event %d of %s", n, p.Name)
	}
	field, err := param(r.URL.Query(), "field")
	if err != nil {
		return nil, err
	}
	if field != "" {
		if _, ok := e.Field(field); !ok {
			return nil, badRequest("event %d of %s has no field %q", n, p.Name, field)
		}
	}
	ctx := r.Context()
	// Every filter and page of the event shares these (see sharedResults).
	ek := p.Name + "\x00" + strconv.Itoa(e.ID)
	fc, err := memoized(s, "event-fields\x00"+ek, func() (map[string]catalog.FieldCount, error) {
		return s.cat.EventFieldCounts(ctx, p.Name, e.ID)
	})
	if err != nil {
		return nil, err
	}
	out := &EventResponse{Provider: p.Name, ProviderURL: providerURL(p), ID: e.ID, Title: e.Title, Channel: e.Channel,
		Version: e.Version, Level: e.Level, Example: s.recorded(p.Name, e.ID, true), Description: e.Description, Message: e.Message, Fields: []EventField{}, Indicators: []EventIndicatorView{},
		FieldFilter: field, RuleList: []RuleRefView{}}
	for _, f := range e.Fields {
		ef := EventField{Field: f}
		if c, ok := fc[f.Name]; ok {
			ef.Rules, ef.ByLanguage = c.Rules, c.ByLanguage
		} else {
			for name, c := range fc {
				if strings.EqualFold(name, f.Name) {
					ef.Rules, ef.ByLanguage = c.Rules, c.ByLanguage
				}
			}
		}
		if ef.Rules > 0 {
			ef.RulesURL = eventURL(p, e.ID) + "?field=" + url.QueryEscape(f.Name) + "#rules"
		}
		out.Fields = append(out.Fields, ef)
	}
	inds, err := memoized(s, "event-indicators\x00"+ek, func() ([]catalog.EventIndicator, error) {
		return s.cat.EventIndicators(ctx, p.Name, e.ID, 25)
	})
	if err != nil {
		return nil, err
	}
	for _, in := range inds {
		out.Indicators = append(out.Indicators, EventIndicatorView{EventIndicator: in, URL: "/indicators/?key=" + url.QueryEscape(in.Key)})
	}
	all, err := memoized(s, "event-rules\x00"+ek, func() ([]catalog.Summary, error) {
		return s.cat.RulesForEvent(ctx, p.Name, e.ID, "", 0)
	})
	if err != nil {
		return nil, err
	}
	out.Rules = len(all)
	list := all
	if field != "" {
		list, err = memoized(s, "event-field-rules\x00"+ek+"\x00"+field, func() ([]catalog.Summary, error) {
			return s.cat.RulesForEvent(ctx, p.Name, e.ID, field, 0)
		})
		if err != nil {
			return nil, err
		}
	}
	q := r.URL.Query()
	lang, err := languageParam(q)
	if err != nil {
		return nil, err
	}
	out.LanguageFilter = lang
	base := url.Values{}
	if field != "" {
		base.Set("field", field)
	}
	byLang := map[string]int{}
	var langOrder []string
	filtered := list[:0:0]
	for _, sm := range list {
		l := string(sm.Language)
		if byLang[l] == 0 {
			langOrder = append(langOrder, l)
		}
		byLang[l]++
		if lang == "" || l == lang {
			filtered = append(filtered, sm)
		}
	}
	for _, l := range langOrder {
		out.ListLanguages = append(out.ListLanguages, ListLangRef{Language: l, Rules: byLang[l],
			URL: eventURL(p, e.ID) + queryWith(base, "language", l) + "#rules"})
	}
	page, err := intParam(q, "page", 1, 1, 10000)
	if err != nil {
		return nil, err
	}
	out.ListTotal, out.Page = len(filtered), page
	out.Pages = max(1, (len(filtered)+eventListPerPage-1)/eventListPerPage)
	from := min((page-1)*eventListPerPage, len(filtered))
	to := min(from+eventListPerPage, len(filtered))
	if len(filtered) > 0 {
		out.ListFrom, out.ListTo = from+1, to
	}
	if lang != "" {
		base.Set("language", lang)
	}
	if page > 1 {
		out.PrevURL = eventURL(p, e.ID) + queryWith(base, "page", strconv.Itoa(page-1)) + "#rules"
	}
	if to < len(filtered) {
		out.NextURL = eventURL(p, e.ID) + queryWith(base, "page", strconv.Itoa(page+1)) + "#rules"
	}
	for _, sm := range filtered[from:to] {
		out.RuleList = append(out.RuleList, RuleRefView{RuleRef: catalog.RuleRef{ID: sm.ID, Language: string(sm.Language), Title: sm.Title,
			Severity: sm.Severity, Status: sm.Status, Class: string(sm.Class), Source: sm.Repo, Path: sm.Path}, URL: RuleURL(string(sm.Language), sm.ID)})
	}
	return out, nil
}

func (s *Server) providersAPI(r *http.Request) (any, error) { return s.providers(r) }
func (s *Server) providerAPI(r *http.Request) (any, error) {
	return s.provider(r, r.PathValue("provider"))
}
func (s *Server) eventAPI(r *http.Request) (any, error) {
	return s.event(r, r.PathValue("provider"), r.PathValue("id"))
}

func (s *Server) providersPage(r *http.Request) (string, *view, error) {
	d, err := s.providers(r)
	if err != nil {
		return "", nil, err
	}
	return "providers", &view{Title: "Windows events", API: "/api/events", Crumbs: []crumb{{Name: "Windows events"}}, Data: d}, nil
}

// rootPage serves what no other route claims: provider pages /<provider>/, event
// pages /<provider>/<event-id> (the reference's URLs), and 404 for the rest.
func (s *Server) rootPage(r *http.Request) (string, *view, error) {
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if s.events != nil {
		switch {
		case len(parts) == 2 && parts[1] == "":
			if p, ok := s.events.Provider(parts[0]); ok {
				d, err := s.provider(r, p.Name)
				if err != nil {
					return "", nil, err
				}
				return "provider", &view{Title: d.Name, API: "/api/events/" + url.PathEscape(d.Slug),
					Crumbs: []crumb{{Name: "Windows events", URL: "/events/"}, {Name: d.Name}}, Data: d}, nil
			}
		case len(parts) == 2:
			if p, ok := s.events.Provider(parts[0]); ok {
				d, err := s.event(r, p.Name, parts[1])
				if err != nil {
					return "", nil, err
				}
				return "event", &view{Title: strconv.Itoa(d.ID) + " " + d.Title, API: "/api/events/" + url.PathEscape(p.Slug) + "/" + strconv.Itoa(d.ID),
					Crumbs: []crumb{{Name: "Windows events", URL: "/events/"}, {Name: d.Provider, URL: d.ProviderURL}, {Name: strconv.Itoa(d.ID)}}, Data: d}, nil
			}
		}
	}
	return "", nil, notFound("no page at %s", r.URL.Path)
}
