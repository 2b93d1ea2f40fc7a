package catalog

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// facetIndex holds, for every rule, what browse filters and facets look at, in title
// order. Counting facets over a few thousand rules in memory takes microseconds; the
// same GROUP BYs in SQL read every matching row's indicators and cost tens of
// milliseconds. It is rebuilt from the same read transaction as the query that finds
// it stale, so a search never mixes two catalogs.
type facetIndex struct {
	// names maps the value ids facetRule.ids hold back to their text, shared by all facets.
	names []string
	gen   int64 // Catalog generation it was built for
	token int64 // the largest rules.pk when built
	rules []facetRule
	byPK  map[int64]int32 // pk -> index in rules
}

type facetRule struct {
	pk        int64
	detection bool
	title, id string
	// ids are the value ids of every facet value of the rule, for counting:
	// single-valued facets first (language, source, severity, status, logsource),
	// then tactics, techniques and fields, each tagged with its facet number.
	ids                                         []facetID
	language, repo, severity, status, logsource string
	class                                       string
	sevRank                                     int8 // for browse order: critical first
	tactics, techniques, fields                 []string
}

// webState is the per-catalog state of the web queries. It lives outside Catalog
// (owned by another file) in a map keyed by the catalog.
type webState struct {
	mu  sync.Mutex
	idx *facetIndex
	gen int64 // bumped by NoteChanged

	// ranked caches the BM25 order of recent full-text queries: paging through results
	// or adding a filter reuses it instead of ranking every match again. Entries hold
	// for one (gen, token): any catalog change empties it.
	ranked    map[string][]int64
	rankedGen [2]int64

	// Statements prepared once: parsing SQL costs as much as running these.
	prepOnce sync.Once
	prepErr  error
	stmts    map[string]*sql.Stmt
}

// webSQL are the fixed statements of Search; variable lists go through json_each so
// the text never changes.
var webSQL = map[string]string{
	"token": `SELECT coalesce(max(pk), 0) FROM rules`,
	"rank": `SELECT rowid FROM rules_fts WHERE rules_fts MATCH ?
		ORDER BY bm25(rules_fts, 10.0, 3.0, 5.0, 2.0, 1.0), rowid`,
	"details": `SELECT r.pk, r.id, r.language, r.title, substr(r.description, 1, 300), r.severity, r.status,
		r.class, r.repo, r.path, ` + logSourceExpr + ` FROM rules r WHERE r.pk IN (SELECT value FROM json_each(?))`,
	// A document by rowid: a plain lookup, no full-text query (see buildSnippet).
	"doc": `SELECT title, description, tags, fields, vals FROM rules_fts WHERE rowid = ?`,
}

// stmt returns the prepared statement name bound to tx.
func (c *Catalog) stmt(ctx context.Context, tx *sql.Tx, name string) (*sql.Stmt, error) {
	s := c.web()
	s.prepOnce.Do(func() {
		s.stmts = map[string]*sql.Stmt{}
		for n, q := range webSQL {
			st, err := c.db.PrepareContext(context.Background(), q)
			if err != nil {
				s.prepErr = fmt.Errorf("prepare %s: %w", n, err)
				return
			}
			s.stmts[n] = st
		}
	})
	if s.prepErr != nil {
		return nil, s.prepErr
	}
	return tx.StmtContext(ctx, s.stmts[name]), nil
}

var webStates sync.Map // *Catalog -> *webState

func (c *Catalog) web() *webState {
	if s, ok := webStates.Load(c); ok {
		return s.(*webState)
	}
	s, _ := webStates.LoadOrStore(c, &webState{})
	return s.(*webState)
}

// maxRanked bounds the ranked-result cache (entries; a few KB each).
const maxRanked = 4096

func (s *webState) rankedGet(fts string, gen, token int64) ([]int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rankedGen != [2]int64{gen, token} {
		return nil, false
	}
	r, ok := s.ranked[fts]
	return r, ok
}

func (s *webState) rankedPut(fts string, gen, token int64, pks []int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rankedGen != [2]int64{gen, token} || s.ranked == nil {
		s.ranked, s.rankedGen = map[string][]int64{}, [2]int64{gen, token}
	}
	for k := range s.ranked {
		if len(s.ranked) < maxRanked {
			break
		}
		delete(s.ranked, k) // map order is random enough to evict by
	}
	s.ranked[fts] = pks
}

// snapshotToken returns the catalog generation noted and the largest rule pk seen
// through tx: together they identify the catalog the transaction reads.
func (c *Catalog) snapshotToken(ctx context.Context, tx *sql.Tx) (gen, token int64, err error) {
	tok, err := c.stmt(ctx, tx, "token")
	if err != nil {
		return 0, 0, err
	}
	if err := tok.QueryRowContext(ctx).Scan(&token); err != nil {
		return 0, 0, fmt.Errorf("catalog token: %w", err)
	}
	s := c.web()
	s.mu.Lock()
	gen = s.gen
	s.mu.Unlock()
	return gen, token, nil
}

// NoteChanged tells the catalog's web queries that another connection committed (the
// web server's poller calls it when SQLite's data_version moves), so the facet index
// is rebuilt on next use.
func (c *Catalog) NoteChanged() {
	s := c.web()
	s.mu.Lock()
	s.gen++
	s.mu.Unlock()
}

// facets returns an index valid for the snapshot of tx: the cached one when no change
// was noted since it was built and it knows every pk in must, else a new one read
// through tx.
func (c *Catalog) facets(ctx context.Context, tx *sql.Tx, must []int64) (*facetIndex, error) {
	// The token (the largest pk) catches an ingest that added rules even before the
	// poller notes it; with the check below that every matched pk is known, a search
	// only mixes catalogs in the poll interval after an ingest that only deleted rules.
	tok, err := c.stmt(ctx, tx, "token")
	if err != nil {
		return nil, err
	}
	var token int64
	if err := tok.QueryRowContext(ctx).Scan(&token); err != nil {
		return nil, fmt.Errorf("facet index: %w", err)
	}
	s := c.web()
	s.mu.Lock()
	defer s.mu.Unlock()
	if idx := s.idx; idx != nil && idx.gen == s.gen && idx.token == token {
		ok := true
		for _, pk := range must {
			if _, found := idx.byPK[pk]; !found {
				ok = false
				break
			}
		}
		if ok {
			return idx, nil
		}
	}
	idx, err := buildFacetIndex(ctx, tx)
	if err != nil {
		return nil, err
	}
	idx.gen, idx.token = s.gen, token
	s.idx = idx
	return idx, nil
}

func buildFacetIndex(ctx context.Context, tx *sql.Tx) (*facetIndex, error) {
	idx := &facetIndex{byPK: map[int64]int32{}}
	// No ORDER BY: SQLite then reads the covering index (rules_web_facets) instead of
	// every table row with its IR blob; Go sorts.
	rows, err := tx.QueryContext(ctx, `SELECT r.pk, r.class, r.language, r.repo, r.severity, r.status, `+logSourceExpr+`,
		r.title_fold, r.id FROM rules r`)
	if err != nil {
		return nil, fmt.Errorf("facet index: %w", err)
	}
	intern := map[string]string{}
	in := func(s string) string {
		if v, ok := intern[s]; ok {
			return v
		}
		intern[s] = s
		return s
	}
	ids := map[string]int32{}
	id := func(facet int, v string) facetID {
		n, ok := ids[v]
		if !ok {
			n = int32(len(idx.names))
			ids[v] = n
			idx.names = append(idx.names, v)
		}
		return facetID{facet: uint8(facet), id: n}
	}
	for rows.Next() {
		var f facetRule
		if err := rows.Scan(&f.pk, &f.class, &f.language, &f.repo, &f.severity, &f.status, &f.logsource, &f.title, &f.id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("facet index: %w", err)
		}
		if f.class == "" {
			f.class = "detection"
		}
		f.detection = f.class == "detection"
		f.sevRank = severityRank(f.severity)
		f.language, f.repo, f.severity, f.status, f.logsource, f.class = in(f.language), in(f.repo), in(f.severity), in(f.status), in(f.logsource), in(f.class)
		idx.rules = append(idx.rules, f)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("facet index: %w", err)
	}
	// Browse order: the most severe first (what a reader triages first), then by title.
	sort.Slice(idx.rules, func(i, j int) bool {
		a, b := &idx.rules[i], &idx.rules[j]
		if a.sevRank != b.sevRank {
			return a.sevRank < b.sevRank
		}
		if a.title != b.title {
			return a.title < b.title
		}
		if a.language != b.language {
			return a.language < b.language
		}
		return a.id < b.id
	})
	for i := range idx.rules {
		idx.byPK[idx.rules[i].pk] = int32(i)
		idx.rules[i].title, idx.rules[i].id = "", "" // only needed to sort
	}
	multi := func(q string, set func(f *facetRule, v string)) error {
		rows, err := tx.QueryContext(ctx, q)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var pk int64
			var v string
			if err := rows.Scan(&pk, &v); err != nil {
				return err
			}
			if i, ok := idx.byPK[pk]; ok && v != "" {
				set(&idx.rules[i], in(v))
			}
		}
		return rows.Err()
	}
	for i := range idx.rules {
		f := &idx.rules[i]
		for k, v := range []string{f.language, f.repo, f.severity, f.status, f.logsource} {
			if v != "" {
				f.ids = append(f.ids, id(k, v))
			}
		}
		f.ids = append(f.ids, id(facetClass, f.class))
	}
	if err := multi(`SELECT rule_pk, tactic FROM rule_tactics`, func(f *facetRule, v string) {
		f.tactics = append(f.tactics, v)
		f.ids = append(f.ids, id(5, v))
	}); err != nil {
		return nil, fmt.Errorf("facet index: %w", err)
	}
	if err := multi(`SELECT rule_pk, technique FROM rule_techniques`, func(f *facetRule, v string) {
		f.techniques = append(f.techniques, v)
	}); err != nil {
		return nil, fmt.Errorf("facet index: %w", err)
	}
	// The technique filter lets a parent match its sub-techniques, so the facet counts a
	// rule under the parent too (once, even when it names both): a count must equal the
	// total its link shows.
	for i := range idx.rules {
		f := &idx.rules[i]
		var seen []string
		for _, t := range f.techniques {
			for _, v := range []string{t, parentTechnique(t)} {
				if v != "" && !hasString(seen, v, false) {
					seen = append(seen, v)
					f.ids = append(f.ids, id(6, v))
				}
			}
		}
	}
	if err := multi(`SELECT DISTINCT rule_pk, canonical FROM indicators`, func(f *facetRule, v string) {
		f.fields = append(f.fields, v)
		f.ids = append(f.ids, id(7, v))
	}); err != nil {
		return nil, fmt.Errorf("facet index: %w", err)
	}
	return idx, nil
}

// match reports whether f passes q's filters (the full-text part aside).
func (q *SearchQuery) match(f *facetRule) bool {
	if q.Language != "" && f.language != q.Language ||
		q.Source != "" && f.repo != q.Source ||
		q.Severity != "" && f.severity != q.Severity ||
		q.Status != "" && f.status != q.Status ||
		q.LogSource != "" && f.logsource != q.LogSource ||
		q.Class != "" && f.class != q.Class {
		return false
	}
	if q.Tactic != "" && !hasString(f.tactics, q.Tactic, false) {
		return false
	}
	if q.Technique != "" {
		tech := strings.ToUpper(q.Technique)
		found := false
		for _, t := range f.techniques {
			if t == tech || strings.HasPrefix(t, tech+".") {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	if q.Field != "" && !hasString(f.fields, q.Field, true) {
		return false
	}
	return true
}

// facetClass is the class facet's number (its position in FacetNames).
const facetClass = 8

// severityRank orders severities for browsing, most severe first; unknown last.
func severityRank(s string) int8 {
	switch strings.ToLower(s) {
	case "critical":
		return 0
	case "high":
		return 1
	case "medium":
		return 2
	case "low":
		return 3
	case "informational", "info":
		return 4
	}
	return 5
}

// parentTechnique is "T1036" for "T1036.005", "" for a technique without a parent.
func parentTechnique(t string) string {
	if i := strings.IndexByte(t, '.'); i > 0 {
		return t[:i]
	}
	return ""
}

func hasString(xs []string, x string, fold bool) bool {
	for _, v := range xs {
		if v == x || fold && strings.EqualFold(v, x) {
			return true
		}
	}
	return false
}

// facetID is one value of one facet (its position in FacetNames).
type facetID struct {
	facet uint8
	id    int32
}

// count tallies the facets of the matching rules.
func (idx *facetIndex) count(matches []*facetRule, limit int) map[string][]FacetValue {
	tally := make([][]int32, len(FacetNames))
	for k := range tally {
		tally[k] = make([]int32, len(idx.names))
	}
	for _, f := range matches {
		for _, v := range f.ids {
			tally[v.facet][v.id]++
		}
	}
	out := map[string][]FacetValue{}
	for k, name := range FacetNames {
		vals := []FacetValue{}
		for id, n := range tally[k] {
			if n > 0 {
				vals = append(vals, FacetValue{Value: idx.names[id], Count: int(n)})
			}
		}
		sort.Slice(vals, func(i, j int) bool {
			if vals[i].Count != vals[j].Count {
				return vals[i].Count > vals[j].Count
			}
			return vals[i].Value < vals[j].Value
		})
		if len(vals) > limit {
			vals = vals[:limit]
		}
		out[name] = vals
	}
	return out
}
