package web

import "sync"

// sharedResults keeps catalog results that many pages share, for a server that
// renders every page once (Options.Export): the 200 pages of one event's field and
// language filters all need the event's whole rule list, its field counts and its
// common indicators, which took most of an export's time when recomputed per page.
// Entries belong to the catalog generation the page cache tracks: a commit by
// another connection empties them, as it empties the page cache.
type sharedResults struct {
	mu  sync.Mutex
	gen int64
	m   map[string]*sharedEntry
}

type sharedEntry struct {
	once sync.Once
	v    any
	err  error
}

// memoized returns fn's result for key: computed once per catalog generation when
// the server shares results, else every time. Callers must treat the result as
// read-only (other pages hold it). Errors are not kept: the next page tries again.
func memoized[T any](s *Server, key string, fn func() (T, error)) (T, error) {
	if s.shared == nil || !s.cache.enabled() {
		return fn()
	}
	sr := s.shared
	g := s.cache.gen.Load()
	sr.mu.Lock()
	if sr.m == nil || sr.gen != g {
		sr.m, sr.gen = map[string]*sharedEntry{}, g
	}
	e := sr.m[key]
	if e == nil {
		e = &sharedEntry{}
		sr.m[key] = e
	}
	sr.mu.Unlock()
	e.once.Do(func() { e.v, e.err = fn() })
	if e.err != nil {
		sr.mu.Lock()
		if sr.m[key] == e {
			delete(sr.m, key)
		}
		sr.mu.Unlock()
		var zero T
		return zero, e.err
	}
	return e.v.(T), nil
}
