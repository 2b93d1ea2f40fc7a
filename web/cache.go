package web

import (
	"bytes"
	"context"
	"database/sql"
	"net/http"
	"sync"

	"github.com/ruledex/ruledex/catalog"
)

// pageCache keeps rendered responses of pages that depend only on their path (rule
// pages), for as long as the catalog does not change. SQLite's data_version, read on
// one dedicated connection, changes whenever another connection commits, so an ingest
// empties the cache on the next request and no page outlives the catalog it showed.
type pageCache struct {
	mu      sync.Mutex
	conn    *sql.Conn
	version int64
	max     int
	entries map[string]*cachedResponse
}

type cachedResponse struct {
	header http.Header
	body   []byte
}

func newPageCache(c *catalog.Catalog, max int) *pageCache {
	pc := &pageCache{max: max, entries: map[string]*cachedResponse{}, version: -1}
	conn, err := c.DB().Conn(context.Background())
	if err == nil {
		pc.conn = conn
	}
	return pc
}

func (pc *pageCache) close() error {
	if pc.conn == nil {
		return nil
	}
	return pc.conn.Close()
}

// current checks the catalog version, dropping everything when it moved. It returns
// false when the version cannot be read, and the caller then bypasses the cache.
func (pc *pageCache) current(ctx context.Context) (int64, bool) {
	if pc.conn == nil {
		return 0, false
	}
	var v int64
	if err := pc.conn.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v); err != nil {
		return 0, false
	}
	if v != pc.version {
		pc.version = v
		clear(pc.entries)
	}
	return v, true
}

func (pc *pageCache) get(ctx context.Context, key string) (*cachedResponse, int64, bool) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	v, ok := pc.current(ctx)
	if !ok {
		return nil, 0, false
	}
	e := pc.entries[key]
	return e, v, true
}

func (pc *pageCache) put(version int64, key string, e *cachedResponse) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if version != pc.version {
		return // the catalog changed while rendering; the next request renders anew
	}
	if len(pc.entries) >= pc.max {
		// Random eviction (map order) is enough for a cache this simple.
		for k := range pc.entries {
			delete(pc.entries, k)
			if len(pc.entries) < pc.max*3/4 {
				break
			}
		}
	}
	pc.entries[key] = e
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
		key := r.URL.RequestURI()
		e, version, ok := s.cache.get(r.Context(), key)
		if !ok {
			h.ServeHTTP(w, r)
			return
		}
		if e == nil {
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
				s.cache.put(version, key, &cachedResponse{header: bw.header, body: bw.buf.Bytes()})
			}
			return
		}
		for k, v := range e.header {
			w.Header()[k] = v
		}
		w.Header().Set("X-Ruledex-Cache", "hit")
		w.WriteHeader(http.StatusOK)
		w.Write(e.body)
	})
}
