package web

import (
	"bytes"
	"context"
	"database/sql"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

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
}

type cachedResponse struct {
	header http.Header
	body   []byte
}

// pollInterval bounds how long a page can outlive the catalog it showed.
const pollInterval = 50 * time.Millisecond

func newPageCache(c *catalog.Catalog, maxBytes int) *pageCache {
	pc := &pageCache{cat: c, max: maxBytes, entries: map[string]*cachedResponse{}, stop: make(chan struct{}), done: make(chan struct{})}
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
		if pc.bytes+len(e.body) <= pc.max {
			break
		}
		// Map order is random enough to evict by.
		pc.bytes -= len(old.body)
		delete(pc.entries, k)
	}
	pc.entries[key] = e
	pc.bytes += len(e.body)
}

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
		if !s.cache.enabled() {
			h.ServeHTTP(w, r)
			return
		}
		key := r.URL.RequestURI()
		e, gen := s.cache.get(key)
		if e != nil {
			for k, v := range e.header {
				w.Header()[k] = v
			}
			w.Header().Set("X-Ruledex-Cache", "hit")
			w.WriteHeader(http.StatusOK)
			w.Write(e.body)
			return
		}
		bw := &bufferWriter{header: http.Header{}}
		h.ServeHTTP(bw, r)
		for k, v := range bw.header {
			w.Header()[k] = v
		}
		if bw.status == 0 {
			bw.status = http.StatusOK
		}
		w.WriteHeader(bw.status)
		w.Write(bw.buf.Bytes())
		if bw.status == http.StatusOK {
			s.cache.put(gen, key, &cachedResponse{header: bw.header, body: bw.buf.Bytes()})
		}
	})
}
