package web

import (
	"bytes"
	"context"
	"database/sql"
	"hash/fnv"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/ruledex/ruledex/catalog"
)

// pageCache keeps rendered responses of GET requests by URI for as long as the catalog
// does not change. A poller reads SQLite's data_version on one dedicated connection:
// it changes whenever another connection commits, so an ingest empties the cache
// within one poll interval. Each cached page was rendered from a single snapshot.
type pageCache struct {
	gen     atomic.Int64 // bumped when the catalog changed
	mu      sync.RWMutex
	entries map[string]*cachedResponse
	entGen  int64 // generation the entries belong to
	bytes   int
	max     int // bytes
	conn    *sql.Conn
	cat     *catalog.Catalog
	stop    chan struct{}
	done    chan struct{}
	// changed receives a token whenever gen moves, for the pre-renderer.
	changed chan struct{}
	// once holds hashes of URIs rendered once and not cached: most distinct searches
	// are never asked again, so a page is compressed and kept on its second request
	// (pre-rendered pages at once).
	onceMu sync.Mutex
	once   map[uint64]struct{}
}

// maxOnce bounds the seen-once set (8 bytes a URI).
const maxOnce = 1 << 16

// secondTime reports whether key was rendered before (and remembers it if not).
func (pc *pageCache) secondTime(key string) bool {
	h := fnv.New64a()
	h.Write([]byte(key))
	k := h.Sum64()
	pc.onceMu.Lock()
	defer pc.onceMu.Unlock()
	if pc.once == nil {
		pc.once = map[uint64]struct{}{}
	}
	if _, ok := pc.once[k]; ok {
		delete(pc.once, k)
		return true
	}
	for old := range pc.once {
		if len(pc.once) < maxOnce {
			break
		}
		delete(pc.once, old) // random enough to evict by
	}
	pc.once[k] = struct{}{}
	return false
}

// prerenderKey marks the pre-renderer's requests: their pages are cached at once.
type prerenderKey struct{}

// cachedResponse is a page stored gzip-compressed: a fifth of the memory, and most
// clients take it as it is (the rest get it inflated on the way out).
type cachedResponse struct {
	header http.Header
	gz     []byte
}

// pollInterval bounds how long a page can outlive the catalog it showed.
const pollInterval = 50 * time.Millisecond

func newPageCache(c *catalog.Catalog, maxBytes int) *pageCache {
	pc := &pageCache{cat: c, max: maxBytes, entries: map[string]*cachedResponse{}, stop: make(chan struct{}), done: make(chan struct{}),
		changed: make(chan struct{}, 1)}
	conn, err := c.DB().Conn(context.Background())
	if err != nil {
		close(pc.done)
		return pc // no cache: every request renders
	}
	pc.conn = conn
	go pc.poll()
	return pc
}

func (pc *pageCache) enabled() bool { return pc.conn != nil }

func (pc *pageCache) poll() {
	defer close(pc.done)
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	last := int64(-1)
	for {
		var v int64
		err := pc.conn.QueryRowContext(context.Background(), "PRAGMA data_version").Scan(&v)
		if err != nil || v != last {
			// On error, assume a change: a stale page is worse than a re-render.
			last = v
			pc.gen.Add(1)
			pc.cat.NoteChanged()
			select {
			case pc.changed <- struct{}{}:
			default:
			}
		}
		select {
		case <-pc.stop:
			return
		case <-t.C:
		}
	}
}

func (pc *pageCache) close() error {
	if pc.conn == nil {
		return nil
	}
	close(pc.stop)
	<-pc.done
	return pc.conn.Close()
}

func (pc *pageCache) get(key string) (*cachedResponse, int64) {
	g := pc.gen.Load()
	pc.mu.RLock()
	var e *cachedResponse
	if pc.entGen == g {
		e = pc.entries[key]
	}
	pc.mu.RUnlock()
	return e, g
}

func (pc *pageCache) put(gen int64, key string, e *cachedResponse) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if gen != pc.gen.Load() {
		return // the catalog changed while rendering
	}
	if pc.entGen != gen {
		clear(pc.entries)
		pc.entGen, pc.bytes = gen, 0
	}
	if _, ok := pc.entries[key]; ok {
		return
	}
	for k, old := range pc.entries {
		if pc.bytes+len(e.gz) <= pc.max {
			break
		}
		// Map order is random enough to evict by.
		pc.bytes -= len(old.gz)
		delete(pc.entries, k)
	}
	pc.entries[key] = e
	pc.bytes += len(e.gz)
}

// has reports whether key is cached for the current generation.
func (pc *pageCache) has(key string) bool {
	e, _ := pc.get(key)
	return e != nil
}

// gzipWriters compress with klauspost/compress, whose fastest level takes about half
// the CPU of compress/gzip's BestSpeed. Every page that goes into the cache is
// compressed: all rule pages at start-up and after each ingest (pre-rendering), and
// any page asked for a second time.
var gzipWriters = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
	return w
}}

func compress(body []byte) []byte {
	var buf bytes.Buffer
	buf.Grow(len(body)/4 + 64)
	zw := gzipWriters.Get().(*gzip.Writer)
	zw.Reset(&buf)
	zw.Write(body)
	zw.Close()
	gzipWriters.Put(zw)
	return buf.Bytes()
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		name, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(name), "gzip") && strings.ReplaceAll(strings.TrimSpace(q), " ", "") != "q=0" {
			return true
		}
	}
	return false
}

// writeCached sends e, compressed when the client takes gzip.
func writeCached(w http.ResponseWriter, r *http.Request, e *cachedResponse, status int) {
	h := w.Header()
	for k, v := range e.header {
		h[k] = v // shared, read-only: never appended to
	}
	if acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		h.Set("Content-Length", strconv.Itoa(len(e.gz)))
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			w.Write(e.gz)
		}
		return
	}
	zr, err := gzip.NewReader(bytes.NewReader(e.gz))
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		io.Copy(w, zr)
	}
}

// responseBuffers recycles the buffers responses are rendered into (tens of KB each,
// one per request) instead of leaving them to the collector.
var responseBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// maxPooledResponse: larger buffers (rare, big pages) are not kept.
const maxPooledResponse = 1 << 20

// bufferWriter captures a response so it can be cached.
type bufferWriter struct {
	header http.Header
	status int
	buf    bytes.Buffer
}

func (b *bufferWriter) Header() http.Header { return b.header }
func (b *bufferWriter) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}
func (b *bufferWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.buf.Write(p)
}

// cached serves h through the page cache, keyed by the request URI.
func (s *Server) cached(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.cache.enabled() || s.shared != nil {
			// An export asks for each page once: caching would only copy it.
			h.ServeHTTP(w, r)
			return
		}
		key := r.URL.RequestURI()
		e, gen := s.cache.get(key)
		if e != nil {
			w.Header().Set("X-Ruledex-Cache", "hit")
			writeCached(w, r, e, http.StatusOK)
			return
		}
		bw := &bufferWriter{header: http.Header{}}
		if b := responseBuffers.Get().(*[]byte); b != nil {
			bw.buf = *bytes.NewBuffer((*b)[:0])
		}
		// The body is copied out (to the connection, into the cache compressed) before
		// the handler returns: its buffer serves the next response.
		defer func() {
			if b := bw.buf.Bytes(); cap(b) <= maxPooledResponse {
				b = b[:0]
				responseBuffers.Put(&b)
			}
		}()
		h.ServeHTTP(bw, r)
		if bw.status == 0 {
			bw.status = http.StatusOK
		}
		if bw.status != http.StatusOK {
			for k, v := range bw.header {
				w.Header()[k] = v
			}
			w.WriteHeader(bw.status)
			w.Write(bw.buf.Bytes())
			return
		}
		bw.header.Set("Vary", "Accept-Encoding")
		// The reader gets the fresh page at once, uncompressed; compressing it for the
		// cache happens after the response is on its way.
		for k, v := range bw.header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(bw.buf.Len()))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			w.Write(bw.buf.Bytes())
		}
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		if r.Context().Value(prerenderKey{}) != nil || s.cache.secondTime(key) {
			s.cache.put(gen, key, &cachedResponse{header: bw.header, gz: compress(bw.buf.Bytes())})
		}
	})
}

// discardWriter is the response writer of pre-rendering: the page goes to the cache only.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(int)             {}
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// prerenderLoop renders every rule page into the cache after start-up and after each
// catalog change, so a reader (or crawler) asking for a page nobody asked for yet gets it
// from memory: rendering one costs a dozen queries, serving it a map lookup.
func (s *Server) prerenderLoop() {
	defer close(s.bgDone)
	for {
		select {
		case <-s.stop:
			return
		case <-s.cache.changed:
		}
		// Let a burst of commits (an ingest) settle first.
		select {
		case <-s.stop:
			return
		case <-time.After(200 * time.Millisecond):
		}
		select {
		case <-s.cache.changed: // changed again while settling
		default:
		}
		start := time.Now()
		n, err := s.prerender()
		switch {
		case err != nil:
			s.log.Warn("pre-rendering rule pages stopped", "err", err, "pages", n)
		case n >= 0:
			s.log.Info("rule pages pre-rendered", "pages", n, "seconds", time.Since(start).Seconds())
			s.warmSearch()
		}
	}
}

// prerender renders the rule pages not cached yet, two at a time (the server keeps
// answering meanwhile); -1 when the catalog changed midway (the loop starts over).
func (s *Server) prerender() (int, error) {
	gen := s.cache.gen.Load()
	paths, err := s.cat.RulePaths(context.Background())
	if err != nil {
		return 0, err
	}
	pctx := context.WithValue(context.Background(), prerenderKey{}, true)
	var next atomic.Int64
	var done atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(paths) || s.cache.gen.Load() != gen {
					return
				}
				select {
				case <-s.stop:
					return
				default:
				}
				p := RuleURL(paths[i][0], paths[i][1])
				if s.cache.has(p) {
					continue
				}
				r, err := http.NewRequestWithContext(pctx, http.MethodGet, p, nil)
				if err != nil {
					continue
				}
				s.mux.ServeHTTP(&discardWriter{h: http.Header{}}, r)
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	if s.cache.gen.Load() != gen {
		return -1, nil
	}
	return int(done.Load()), nil
}

// warmWords is how many of the catalog's most common words are scored for search ahead
// of time (see catalog.WarmSearch): on the full corpus, every word held by 37 rules or
// more, about 8 MB and 0.5 s of a core more than 400 words. With 400, a cold search of
// a word like "bitsadmin" (rank 898) scored it in SQLite, 1-3 ms holding one of the
// search slots, and the cold-path p99 at the server was 14-22 ms, not 9-15.
const warmWords = 2000

// warmSearch scores the common words for search after the pages are rendered, stopping
// when the server closes or the catalog changes again (the loop then starts over).
func (s *Server) warmSearch() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gen := s.cache.gen.Load()
	go func() {
		t := time.NewTicker(pollInterval)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				cancel()
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if s.cache.gen.Load() != gen {
					cancel()
					return
				}
			}
		}
	}()
	start := time.Now()
	n, hits, err := s.WarmSearch(ctx)
	if err != nil && ctx.Err() == nil {
		s.log.Warn("search words not scored ahead", "err", err, "words", n)
		return
	}
	s.log.Info("search words scored ahead", "words", n, "hits", hits, "seconds", time.Since(start).Seconds())
}

// WarmSearch works out ahead what the first searches would each pay for: the scores of
// the catalog's common words, every rule's snippet document (catalog.WarmSearch) and
// every rule's hit encoded (the first searches, in a burst of crawlers or of readers
// after a restart, would otherwise each encode fifty). It returns the words scored and
// the hits encoded; the server calls it once its pages are rendered.
func (s *Server) WarmSearch(ctx context.Context) (words, hits int, err error) {
	if words, err = s.cat.WarmSearch(ctx, warmWords); err != nil {
		return words, 0, err
	}
	all, err := s.cat.Hits(ctx)
	if err != nil {
		return words, 0, err
	}
	for i := range all[:min(len(all), maxHitJSON)] {
		h := SearchHit{SearchHit: all[i], URL: RuleURL(all[i].Language, all[i].ID)}
		s.hitJSON.appendHit(nil, &h)
	}
	return words, min(len(all), maxHitJSON), nil
}
