package mcpserver

import (
	"context"
	"database/sql"
	"sync"
)

// changeWatch keeps search answers current while another process (ruledex ingest)
// rewrites the catalog. The catalog caches its search facet index until told of a
// commit by another connection (Catalog.NoteChanged); the web server tells it from a
// poller, but `ruledex mcp` runs without one. SQLite's data_version, read on one
// dedicated connection, moves whenever another connection commits, so checking it
// before each search costs one tiny query and needs no goroutine.
type changeWatch struct {
	mu   sync.Mutex
	conn *sql.Conn
	last int64
}

// fresh tells the catalog about commits by other connections since the last call.
func (s *Server) fresh(ctx context.Context) {
	w := &s.watch
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn == nil {
		c, err := s.cat.DB().Conn(ctx)
		if err != nil {
			s.cat.NoteChanged() // cannot tell: assume a change, a stale answer is worse
			return
		}
		w.conn, w.last = c, -1
	}
	var v int64
	if err := w.conn.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v); err != nil || v != w.last {
		w.last = v
		s.cat.NoteChanged()
	}
}

// Close releases the connection the change watch holds.
func (s *Server) Close() error {
	s.watch.mu.Lock()
	defer s.watch.mu.Unlock()
	if s.watch.conn == nil {
		return nil
	}
	err := s.watch.conn.Close()
	s.watch.conn = nil
	return err
}
