// Package web serves the ruledex wiki (server-rendered HTML) and its JSON API from a
// catalog. It never parses rule text and never touches the filesystem on behalf of a
// request: pages come from the catalog, assets from the binary (embed.FS).
package web

import (
	"context"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/ruledex/ruledex/attack"
	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/page"
	"github.com/ruledex/ruledex/winevent"
)

// Options configure a Server.
type Options struct {
	Catalog *catalog.Catalog
	// Attack names techniques and tactics and orders the matrix. Required.
	Attack *attack.Matrix
	Logger *slog.Logger
	// Events, when set, fills the rule pages' event coverage.
	Events *winevent.Catalog
	// BaseURL ("https://ruledex.example") makes links in exported Navigator layers
	// absolute; empty uses the request's host.
	BaseURL string
	// Translate, when set, fills the rule pages' "In other languages" section (the CLI
	// provides it: translations are proved by parsing them back, which web never does).
	Translate page.Translator
	// NoPrerender turns off rendering every rule page into the page cache at start and
	// after each catalog change (tests that do not measure the cold path).
	NoPrerender bool
	// Export marks a server that renders every page once, for a static export:
	// results many pages share (an event's rule list, field counts and common
	// indicators) are computed once and kept while the catalog does not change,
	// instead of per page. Tens of MB for the full catalog.
	Export bool
}

// Server is the wiki's http.Handler.
type Server struct {
	hitJSON   hitJSONCache // search hits encoded, for the search API
	cat       *catalog.Catalog
	att       *attack.Matrix
	log       *slog.Logger
	baseURL   string
	tmpl      map[string]*template.Template
	handler   http.Handler
	cache     *pageCache
	events    *winevent.Catalog
	translate page.Translator
	tactics   []catalog.Tactic // ATT&CK tactics in the catalog's form, for package page
	reqLog    *requestLog
	mux       *http.ServeMux
	stop      chan struct{} // closed by Close: stops pre-rendering
	bgDone    chan struct{}
	closeOnce sync.Once
	shared    *sharedResults // nil unless Options.Export
}

// New prepares a server; templates are parsed once here so a broken template fails
// at start-up, not on the first request.
func New(o Options) (*Server, error) {
	if o.Catalog == nil || o.Attack == nil {
		return nil, errors.New("web: a catalog and an ATT&CK matrix are required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if err := o.Catalog.EnsureWebIndexes(context.Background()); err != nil {
		// Only speed depends on them (another process may hold the write lock).
		o.Logger.Warn("web indexes not created; browse and search will be slower", "err", err)
	}
	t, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	s := &Server{cat: o.Catalog, att: o.Attack, log: o.Logger, baseURL: o.BaseURL, tmpl: t,
		cache: newPageCache(o.Catalog, 96<<20), events: o.Events, translate: o.Translate}
	if o.Export {
		s.shared = &sharedResults{}
	}
	for _, t := range o.Attack.Tactics() {
		s.tactics = append(s.tactics, catalog.Tactic{Short: t.Short, ID: t.ID, Name: t.Name, URL: t.URL, Order: t.Order})
	}
	if err := s.syncEvents(context.Background()); err != nil {
		s.log.Warn("event coverage not brought up to date; event pages may miss rules", "err", err)
	}
	mux := http.NewServeMux()
	s.routes(mux)
	s.mux = mux
	s.reqLog = newRequestLog(s.log)
	s.handler = logRequests(s.reqLog, securityHeaders(s.onlyGET(mux)))
	s.stop, s.bgDone = make(chan struct{}), make(chan struct{})
	if o.NoPrerender || !s.cache.enabled() {
		close(s.bgDone)
	} else {
		go s.prerenderLoop()
	}
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Close stops pre-rendering, flushes the request log and releases the connection the
// page cache holds.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.bgDone
		s.reqLog.close()
		err = s.cache.close()
	})
	return err
}

func (s *Server) routes(mux *http.ServeMux) {
	// Pages.
	mux.Handle("GET /{$}", s.cached(s.page(s.homePage)))
	mux.Handle("GET /rules/{$}", s.cached(s.page(s.browsePage)))
	mux.Handle("GET /rules/{lang}/{id}/{$}", s.cached(s.page(s.rulePage)))
	mux.HandleFunc("GET /rules/{lang}/{id}", addSlash)
	mux.Handle("GET /rules/eq/{id}/{$}", s.cached(s.page(s.eqClassPage)))
	mux.Handle("GET /indicators/{$}", s.page(s.indicatorPage))
	mux.Handle("GET /attack/{$}", s.cached(s.page(s.matrixPage)))
	mux.Handle("GET /attack/navigator.json", s.api(s.navigatorAPI))
	mux.Handle("GET /attack/techniques/{id}/{$}", s.page(s.techniquePage))
	mux.HandleFunc("GET /attack/techniques/{id}", addSlash)
	mux.Handle("GET /attack/tactics/{id}/{$}", s.page(s.tacticPage))
	mux.HandleFunc("GET /attack/tactics/{id}", addSlash)
	mux.Handle("GET /static/", staticFiles())
	// Browsers and crawlers ask for /favicon.ico whatever the page links.
	mux.Handle("GET /favicon.ico", http.RedirectHandler("/static/favicon.svg", http.StatusMovedPermanently))
	mux.Handle("GET /events/{$}", s.page(s.providersPage))
	mux.Handle("GET /", s.cached(s.page(s.rootPage))) // provider and event pages, else 404

	// JSON API: one endpoint per page.
	mux.Handle("GET /api/{$}", s.api(s.indexAPI))
	mux.Handle("GET /api/overview", s.api(s.overviewAPI))
	mux.Handle("GET /api/search", s.cached(s.api(s.searchAPI)))
	mux.Handle("GET /api/rules/{lang}/{id}", s.cached(s.api(s.ruleAPI)))
	// Pages end in a slash and their twins do not; a reader who appends "/api" to a
	// page URL by hand still gets there.
	mux.HandleFunc("GET /api/rules/{lang}/{id}/{$}", dropSlash)
	mux.Handle("GET /api/rules/eq/{id}", s.cached(s.api(s.eqClassAPI)))
	mux.Handle("GET /api/indicators", s.api(s.indicatorAPI))
	mux.Handle("GET /api/techniques/{id}", s.api(s.techniqueAPI))
	mux.Handle("GET /api/tactics/{id}", s.api(s.tacticAPI))
	mux.Handle("GET /api/matrix", s.api(s.matrixAPI))
	mux.Handle("GET /api/navigator", s.api(s.navigatorAPI))
	mux.Handle("GET /api/events", s.api(s.providersAPI))
	mux.Handle("GET /api/events/{provider}", s.api(s.providerAPI))
	mux.Handle("GET /api/events/{provider}/{id}", s.cached(s.api(s.eventAPI)))
	mux.Handle("GET /api/", s.api(func(r *http.Request) (any, error) {
		return nil, notFound("no API endpoint at %s", r.URL.Path)
	}))
}

// onlyGET answers every other method with 405, as JSON under /api/: the wiki is
// read-only.
func (s *Server) onlyGET(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Allow", "GET, HEAD")
		err := &httpError{status: http.StatusMethodNotAllowed, msg: "method " + r.Method + " not allowed; the wiki is read-only"}
		if strings.HasPrefix(r.URL.Path, "/api/") {
			s.json(w, http.StatusMethodNotAllowed, apiError{Error: err.msg, Status: err.status})
			return
		}
		s.htmlError(w, r, err)
	})
}

// addSlash redirects /rules/x/y to /rules/x/y/, the canonical page URL.
func addSlash(w http.ResponseWriter, r *http.Request) {
	u := *r.URL
	u.Path += "/"
	u.RawPath = ""
	if r.URL.RawPath != "" {
		u.RawPath = r.URL.RawPath + "/"
	}
	http.Redirect(w, r, u.RequestURI(), http.StatusMovedPermanently)
}

// dropSlash redirects an API path written with a page's trailing slash to the API path.
func dropSlash(w http.ResponseWriter, r *http.Request) {
	u := *r.URL
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = strings.TrimSuffix(u.RawPath, "/")
	http.Redirect(w, r, u.RequestURI(), http.StatusMovedPermanently)
}

// pageFunc returns the template to render and its data.
type pageFunc func(r *http.Request) (string, *view, error)

func (s *Server) page(fn pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, v, err := fn(r)
		if err != nil {
			s.htmlError(w, r, err)
			return
		}
		s.html(w, http.StatusOK, name, v)
	})
}

func (s *Server) htmlError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := statusOf(err)
	if status >= 500 {
		if errors.Is(err, context.Canceled) {
			return
		}
		s.log.Error("page", "path", r.URL.Path, "err", err)
	}
	title := http.StatusText(status)
	if status == http.StatusNotFound {
		title = "Not found"
	}
	s.html(w, status, "error", &view{Title: title, Data: msg})
}

type apiFunc func(r *http.Request) (any, error)

func (s *Server) api(fn apiFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := fn(r)
		if err != nil {
			status, msg := statusOf(err)
			if status >= 500 {
				s.log.Error("api", "path", r.URL.Path, "err", err)
			}
			s.json(w, status, apiError{Error: msg, Status: status})
			return
		}
		s.json(w, http.StatusOK, v)
	})
}

// indexAPI lists the endpoints, so /api/ is self-describing.
func (s *Server) indexAPI(r *http.Request) (any, error) {
	return map[string]any{
		"endpoints": []map[string]string{
			{"path": "/api/overview", "about": "corpus overview: rules per language and source, most-shared indicators, diagnostics"},
			{"path": "/api/search?q=TEXT&language=&source=&severity=&status=&logsource=&tactic=&technique=&field=&page=&per_page=", "about": "browse (no q: detections only) and full-text search with facets"},
			{"path": "/api/rules/{language}/{id}", "about": "one rule: metadata, ATT&CK, stages, exclusions, indicators with corpus counts"},
			{"path": "/api/rules/eq/{class_id}", "about": "an equivalence class: members, their stages, the union of their indicators"},
			{"path": "/api/indicators?field=&kind=&value=&transforms=", "about": "rules sharing one indicator, by language"},
			{"path": "/api/techniques/{id}", "about": "an ATT&CK technique and the rules tagging it"},
			{"path": "/api/tactics/{id}", "about": "an ATT&CK tactic, its techniques with rule counts"},
			{"path": "/api/matrix?language=&source=&severity=", "about": "coverage matrix"},
			{"path": "/api/navigator?language=&source=&severity=", "about": "ATT&CK Navigator layer (format 4.5) for the filter"},
			{"path": "/api/events", "about": "Windows event providers with event and rule counts"},
			{"path": "/api/events/{provider}", "about": "a provider's events with rule counts"},
			{"path": "/api/events/{provider}/{event_id}?field=", "about": "an event: fields with rule counts, common indicators, covering rules"},
		},
	}, nil
}

// baseFor returns the absolute base URL for links in exported files.
func (s *Server) baseFor(r *http.Request) string {
	if s.baseURL != "" {
		return strings.TrimRight(s.baseURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
