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
	last int64 // data_version last seen
	gen  int64 // bumped when it moves
}

// fresh tells the catalog about commits by other connections since the last call, and
// returns a generation that changes with every such commit (for the server's own
// caches); 0 means unknown, which nothing may cache under.
func (s *Server) fresh(ctx context.Context) int64 {
	w := &s.watch
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn == nil {
		c, err := s.cat.DB().Conn(ctx)
		if err != nil {
			s.cat.NoteChanged() // cannot tell: assume a change, a stale answer is worse
			return 0
		}
		w.conn, w.last = c, -1
	}
	var v int64
	if err := w.conn.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v); err != nil {
		w.last = -1
		s.cat.NoteChanged()
		return 0
	}
	if v != w.last {
		w.last = v
		w.gen++
		s.cat.NoteChanged()
	}
	return w.gen
}

// memo caches whole-catalog answers (catalog_stats, the technique tags) for one
// generation of fresh: they read every rule, and agents ask them again and again.
type memo[T any] struct {
	mu      sync.Mutex
	gen     int64
	entries map[string]T
}

func (m *memo[T]) get(gen int64, key string, compute func() (T, error)) (T, error) {
	m.mu.Lock()
	if gen != 0 && m.gen == gen {
		if v, ok := m.entries[key]; ok {
			m.mu.Unlock()
			return v, nil
		}
	}
	m.mu.Unlock()
	v, err := compute()
	if err != nil || gen == 0 {
		return v, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.gen != gen {
		m.gen, m.entries = gen, map[string]T{}
	}
	m.entries[key] = v
	return v, nil
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
