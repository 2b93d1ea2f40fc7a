// Package staticsite writes the ruledex wiki as static files: every page the server
// has, rendered by the server's own handler in process (same templates, same
// escaping), with links rewritten to relative file paths so the folder works from any
// path or host and from file://, the static assets, the Navigator layer, and a search
// index that web/static/search.js reads in the browser.
//
// Pages are found by crawling from the home page and the list of every rule, the way
// a reader would: a page is exported when some exported page links to it. What a
// static site cannot answer (free-text search, facet combinations, the JSON API) is
// decided per link (see classify): searches and filter combinations go to the browse
// page, whose script answers them from the index; API links are left out. So every
// link in the output resolves to a file in the folder.
package staticsite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure an export.
type Options struct {
	// Handler renders pages: the wiki (a *web.Server).
	Handler http.Handler
	// Dir is the folder to write; it is created, and files of an earlier export are
	// overwritten (nothing else in it is removed).
	Dir string
	// Seeds are page URLs to export besides the ones reached from the home page
	// (every rule page, so a rule no page links to is still there).
	Seeds []string
	// Files are extra files to write as they are, by slash path under Dir (the search
	// index, the Navigator layer).
	Files map[string][]byte
	// Workers render pages in parallel (default 4: rendering waits on SQLite as much as
	// on the CPU).
	Workers int
	// Progress, when set, is called now and then with the pages done and known so far.
	Progress func(done, known int)
	// Skip, when set, leaves pages out: links to a page it reports true for are
	// dropped (the text stays).
	Skip func(u *url.URL) bool
}

// Summary says what an export wrote.
type Summary struct {
	Dir       string         `json:"dir"`
	Pages     int            `json:"pages"`
	RulePages int            `json:"rule_pages"`
	ByKind    map[string]int `json:"pages_by_kind"`
	// KindSeconds is the rendering time spent per kind of page, summed over workers.
	KindSeconds map[string]float64 `json:"render_seconds_by_kind"`
	Files       int                `json:"files"`
	Bytes       int64              `json:"bytes"`
	Seconds     float64            `json:"seconds"`
	Searchable  int                `json:"searchable_rules"`
	// NotFound lists pages the wiki links but answers 404 for (a rule naming a
	// technique the ATT&CK bundle lacks): the server's not-found page is written there,
	// as the server would show it.
	NotFound []string `json:"not_found,omitempty"`
	// Failed lists the pages that did not render (another status than 200 or 404) with
	// the status; the error page is written in their place. One bad page never stops
	// the export.
	Failed []string `json:"failed,omitempty"`
}

// job is one page to render.
type job struct {
	fetch string // request URI
	file  string // output file, relative to Dir
	kind  string
}

type exporter struct {
	o       Options
	mu      sync.Mutex
	seen    map[string]string // output file -> request URI
	queue   chan job
	pending sync.WaitGroup
	done    atomic.Int64
	known   atomic.Int64
	files   atomic.Int64
	bytes   atomic.Int64
	byKind  map[string]int
	kindDur map[string]time.Duration
	links   sync.Map // resolved link URL -> link, see rewrite
	// attrs holds the decision for each URL attribute value, by the page path it holds
	// for ("" for every page) and the value as written; see rewriteLink.
	attrMu sync.RWMutex
	attrs  map[string]map[string]linkTarget
	// dirs are the folders known to exist, so each is made once.
	dirs    sync.Map
	failed  []string
	missing []string
	errMu   sync.Mutex
	err     error
}

// Export writes the site. It fails on a write error or when ctx ends; a page that
// does not render is listed in Summary.Failed (or NotFound) and the server's error page
// is written in its place, so links to it still resolve.
func Export(ctx context.Context, o Options) (*Summary, error) {
	start := time.Now()
	if o.Handler == nil || o.Dir == "" {
		return nil, errors.New("staticsite: a handler and a folder are required")
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("export site: %w", err)
	}
	x := &exporter{o: o, seen: map[string]string{}, queue: make(chan job, 1<<16), byKind: map[string]int{}, kindDur: map[string]time.Duration{}}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	for name, b := range o.Files {
		if err := x.write(name, b); err != nil {
			return nil, err
		}
	}
	var wg sync.WaitGroup
	for range o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range x.queue {
				if ctx.Err() == nil {
					if err := x.render(ctx, j); err != nil {
						x.fail(err)
						cancel()
					}
				}
				x.done.Add(1)
				x.pending.Done()
			}
		}()
	}
	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		if o.Progress == nil {
			return
		}
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopProgress:
				o.Progress(int(x.done.Load()), int(x.known.Load()))
				return
			case <-t.C:
				o.Progress(int(x.done.Load()), int(x.known.Load()))
			}
		}
	}()
	for _, p := range append([]string{"/", "/rules/", "/attack/", "/events/"}, o.Seeds...) {
		u, err := url.Parse(p)
		if err != nil {
			continue
		}
		x.target(u)
	}
	x.pending.Wait()
	close(x.queue)
	wg.Wait()
	close(stopProgress)
	<-progressDone
	if x.err != nil {
		return nil, x.err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sum := &Summary{Dir: o.Dir, Pages: int(x.done.Load()), RulePages: x.byKind["rule"], ByKind: x.byKind,
		Files: int(x.files.Load()), Bytes: x.bytes.Load(), Failed: x.failed, NotFound: x.missing}
	sort.Strings(sum.Failed)
	sort.Strings(sum.NotFound)
	sum.KindSeconds = map[string]float64{}
	for k, d := range x.kindDur {
		sum.KindSeconds[k] = d.Seconds()
	}
	sum.Seconds = time.Since(start).Seconds()
	return sum, nil
}

func (x *exporter) fail(err error) {
	x.errMu.Lock()
	if x.err == nil {
		x.err = err
	}
	x.errMu.Unlock()
}

// link is where a link of an exported page goes.
type link struct {
	file  string // the file it points to, relative to Dir; "" drops the link
	query string // kept on the link (the browse page's script reads it)
}

// target decides what becomes of a link to u (absolute path, already resolved
// against its page), queues the page it needs, and returns where the link points.
func (x *exporter) target(u *url.URL) link {
	c := classify(u)
	switch c.kind {
	case "":
		return link{}
	case "search":
		return link{file: "rules/index.html", query: c.query}
	case "data":
		return link{file: c.file}
	case "asset":
	default:
		if x.o.Skip != nil && x.o.Skip(u) {
			return link{}
		}
	}
	file := c.file
	x.mu.Lock()
	prev, ok := x.seen[file]
	if !ok {
		x.seen[file] = c.fetch
	}
	x.mu.Unlock()
	if ok && prev != c.fetch {
		// Two URLs would share a file (a hash collision, or two spellings of one
		// page): keep the first; the link still reaches a page of the same place.
		return link{file: file}
	}
	if !ok {
		x.known.Add(1)
		x.pending.Add(1)
		j := job{fetch: c.fetch, file: file, kind: c.kind}
		select {
		case x.queue <- j:
		default:
			// The queue is full: render in a goroutine of its own rather than block
			// a worker that is itself queueing links.
			go func() { x.queue <- j }()
		}
	}
	return link{file: file}
}

// classified is what a URL of the wiki is in the export.
type classified struct {
	kind  string // "" (no file: drop the link), "search", "asset", "data", or a page kind
	file  string
	fetch string
	query string
}

// filterKeys are the browse page's facets: a browse URL with one of them (and a page
// number) is exported; combinations and text searches are answered by the script.
var filterKeys = map[string]bool{"language": true, "source": true, "severity": true, "status": true,
	"logsource": true, "tactic": true, "technique": true, "field": true, "class": true}

func classify(u *url.URL) classified {
	p := u.Path
	q := u.Query()
	if q.Get("page") == "1" {
		q.Del("page")
	}
	page := func(kind string, keep ...string) classified {
		v := url.Values{}
		for _, k := range keep {
			if x, ok := q[k]; ok {
				v[k] = x
			}
		}
		cu := &url.URL{Path: p, RawPath: u.RawPath, RawQuery: v.Encode()}
		return classified{kind: kind, file: pageFile(cu), fetch: cu.RequestURI()}
	}
	switch {
	case strings.HasPrefix(p, "/api/") || p == "/api":
		return classified{} // the static site has no API
	case strings.HasPrefix(p, "/static/"):
		cu := &url.URL{Path: p, RawPath: u.RawPath}
		return classified{kind: "asset", file: assetFile(cu), fetch: cu.RequestURI()}
	case p == "/favicon.ico":
		return classify(&url.URL{Path: "/static/favicon.svg"})
	case p == "/attack/navigator.json":
		// Written from the layer the caller gives (filters are not exported).
		return classified{kind: "data", file: "attack/navigator.json"}
	case p == "/":
		return page("home")
	case p == "/rules/":
		n := 0
		for k := range q {
			switch {
			case k == "page":
			case filterKeys[k] && len(q[k]) == 1 && q.Get(k) != "":
				n++
			default:
				n = 99
			}
		}
		if n > 1 {
			return classified{kind: "search", query: q.Encode()}
		}
		keep := []string{"page"}
		for k := range filterKeys {
			keep = append(keep, k)
		}
		return page("browse", keep...)
	case strings.HasPrefix(p, "/rules/eq/"):
		return page("eqclass")
	case strings.HasPrefix(p, "/rules/"):
		return page("rule")
	case p == "/indicators/":
		return page("indicator", "key", "field", "kind", "value", "transforms", "cased")
	case p == "/attack/":
		// One filter at a time, as the browse pages.
		n := 0
		for _, k := range []string{"language", "source", "severity"} {
			if q.Get(k) != "" {
				n++
			}
		}
		if n > 1 {
			return page("matrix")
		}
		return page("matrix", "language", "source", "severity")
	case strings.HasPrefix(p, "/attack/techniques/"):
		return page("technique") // the page does not depend on the matrix filter
	case strings.HasPrefix(p, "/attack/tactics/"):
		return page("tactic")
	case p == "/events/":
		return page("providers")
	}
	switch segs := segments(u.EscapedPath()); len(segs) {
	case 1:
		return page("provider")
	case 2:
		return page("event", "field", "language", "page")
	}
	return classified{}
}

// pageBuffers recycle the buffers a page is rendered and rewritten into (tens of KB,
// two a page).
var pageBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// maxPooledPage: larger buffers (a few big pages) are left to the collector.
const maxPooledPage = 1 << 20

func getBuffer() *[]byte { return pageBuffers.Get().(*[]byte) }

func putBuffer(bp *[]byte, b []byte) {
	if cap(b) <= maxPooledPage {
		*bp = b[:0]
		pageBuffers.Put(bp)
	}
}

// render fetches one page through the handler, rewrites it and writes it.
func (x *exporter) render(ctx context.Context, j job) error {
	start := time.Now()
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, j.fetch, nil)
	rec := &recorder{header: http.Header{}}
	rbp := getBuffer()
	rec.body = bytes.NewBuffer((*rbp)[:0])
	defer func() { putBuffer(rbp, rec.body.Bytes()) }()
	x.o.Handler.ServeHTTP(rec, req)
	x.mu.Lock()
	x.kindDur[j.kind] += time.Since(start)
	x.mu.Unlock()
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if rec.status != http.StatusOK {
		x.mu.Lock()
		if rec.status == http.StatusNotFound {
			x.missing = append(x.missing, j.fetch)
		} else {
			x.failed = append(x.failed, fmt.Sprintf("%s: status %d", j.fetch, rec.status))
		}
		x.mu.Unlock()
		// Keep links to it resolving: a page saying what went wrong.
		body := rec.body.Bytes()
		if strings.HasPrefix(rec.header.Get("Content-Type"), "text/html") {
			obp := getBuffer()
			body = x.rewrite((*obp)[:0], j, body)
			defer putBuffer(obp, body)
		}
		return x.write(j.file, body)
	}
	body := rec.body.Bytes()
	if j.kind != "asset" {
		obp := getBuffer()
		body = x.rewrite((*obp)[:0], j, body)
		defer putBuffer(obp, body)
		x.mu.Lock()
		x.byKind[j.kind]++
		x.mu.Unlock()
	}
	return x.write(j.file, body)
}

func (x *exporter) write(name string, b []byte) error {
	// name is built from sanitized segments; check anyway that it stays in Dir.
	clean := filepath.Clean(filepath.FromSlash(name))
	if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return fmt.Errorf("export site: refusing to write %q outside the folder", name)
	}
	full := filepath.Join(x.o.Dir, clean)
	if err := x.mkdir(filepath.Dir(full)); err != nil {
		return fmt.Errorf("export site: %w", err)
	}
	if err := os.WriteFile(full, b, 0o644); err != nil {
		return fmt.Errorf("export site: %w", err)
	}
	x.files.Add(1)
	x.bytes.Add(int64(len(b)))
	return nil
}

// mkdir makes dir and its parents, asking the filesystem once per folder: nearly
// every rule page has a folder of its own, whose parent was made for the page before.
func (x *exporter) mkdir(dir string) error {
	if _, ok := x.dirs.Load(dir); ok {
		return nil
	}
	if parent := filepath.Dir(dir); parent != dir {
		if _, ok := x.dirs.Load(parent); ok {
			if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			x.dirs.Store(dir, true)
			return nil
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	x.dirs.Store(dir, true)
	return nil
}

// recorder is a minimal ResponseWriter (httptest.ResponseRecorder does more work
// per response than pages need).
type recorder struct {
	header http.Header
	status int
	body   *bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}
func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(p)
}
