package catalog

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// facetIndex holds, for every rule, what browse filters and facets look at, in title
// order. Counting facets over a few thousand rules in memory takes microseconds; the
// same GROUP BYs in SQL read every matching row's indicators and cost tens of
// milliseconds. It is rebuilt from the same read transaction as the query that finds
// it stale, so a search never mixes two catalogs.
type facetIndex struct {
	// names maps the value ids facetRule.ids hold back to their text; facetOf says which
	// facet (its position in FacetNames) each id belongs to. An id is one value of one
	// facet, so counting needs one tally array, not one per facet.
	names   []string
	facetOf []uint8
	gen     int64 // Catalog generation it was built for
	token   int64 // the largest rules.pk when built
	rules   []facetRule
	// pos maps a pk to its index in rules (-1 for none) when pks are dense enough (they
	// are rowids: a catalog ingested once numbers its rules from 1), else byPK does: a
	// search looks up every matching rule, and indexing a slice is cheaper than a map.
	pos  []int32
	byPK map[int64]int32
	// tallies recycles the counting arrays (one int32 per id) across searches.
	tallies sync.Pool
	// docs holds the full-text documents read for snippets so far (at most the whole
	// index, a few MB): pages of results overlap, so after a while a search reads none.
	docsMu sync.Mutex
	docs   map[int64]*ftsDoc
	// hits holds where one search term matches in a document's columns, for snippets:
	// scanning long documents (hundreds of KB of values) for each shown hit was most of
	// a search, and a new search mostly combines terms searched before (see separable).
	hitsMu sync.Mutex
	hits   map[string]map[int64]colHits // by term, then pk
	nHits  int
	// results caches recent searches' matches and facet counts (read-only once stored),
	// for their other pages; resultRefs bounds the rules they point to in all.
	resultsMu  sync.Mutex
	results    map[string]*searchResult
	resultRefs int
}

// maxTermHits bounds the term hits cache (about 80 bytes an entry).
const maxTermHits = 1 << 17

// addTermHits adds to hits[i] the hits of the one term sc scans for in docs[i], the
// document of rules[i] (nil when it has none). The cache is locked twice a term, not
// twice a hit: dozens of searches at once would otherwise queue on it.
func (idx *facetIndex) addTermHits(sc *termScanner, rules []*facetRule, docs []*ftsDoc, hits []colHits) {
	term := sc.terms[0].tok
	var missing []int
	idx.hitsMu.Lock()
	m := idx.hits[term]
	for i, d := range docs {
		if d == nil {
			continue
		}
		if h, ok := m[rules[i].pk]; ok {
			hits[i].add(h)
		} else {
			missing = append(missing, i)
		}
	}
	idx.hitsMu.Unlock()
	if len(missing) == 0 {
		return
	}
	found := make([]colHits, len(missing))
	for k, i := range missing {
		found[k] = sc.colHits(docs[i])
		hits[i].add(found[k])
	}
	idx.hitsMu.Lock()
	defer idx.hitsMu.Unlock()
	if idx.hits == nil {
		idx.hits = map[string]map[int64]colHits{}
	}
	for old, m := range idx.hits {
		if idx.nHits+len(missing) <= maxTermHits {
			break
		}
		idx.nHits -= len(m)
		delete(idx.hits, old) // map order is random enough to evict by
	}
	m = idx.hits[term]
	if m == nil {
		m = map[int64]colHits{}
		idx.hits[term] = m
	}
	for k, i := range missing {
		if _, ok := m[rules[i].pk]; !ok {
			m[rules[i].pk] = found[k]
			idx.nHits++
		}
	}
}

type searchResult struct {
	matches []*facetRule
	facets  map[string][]FacetValue
}

// maxResultRefs bounds the result cache: 8 bytes a matched rule (a few MB).
const maxResultRefs = 1 << 20

func (idx *facetIndex) resultGet(key string) ([]*facetRule, map[string][]FacetValue, bool) {
	idx.resultsMu.Lock()
	defer idx.resultsMu.Unlock()
	r, ok := idx.results[key]
	if !ok {
		return nil, nil, false
	}
	return r.matches, r.facets, true
}

func (idx *facetIndex) resultPut(key string, matches []*facetRule, facets map[string][]FacetValue) {
	idx.resultsMu.Lock()
	defer idx.resultsMu.Unlock()
	if idx.results == nil {
		idx.results = map[string]*searchResult{}
	}
	if _, ok := idx.results[key]; ok {
		return
	}
	for k, old := range idx.results {
		if idx.resultRefs+len(matches) <= maxResultRefs {
			break
		}
		idx.resultRefs -= len(old.matches) + 1
		delete(idx.results, k) // map order is random enough to evict by
	}
	idx.results[key] = &searchResult{matches: matches, facets: facets}
	idx.resultRefs += len(matches) + 1
}

// ftsDoc is a rule's full-text document: title, description, tags, fields, values, and
// the same lower-cased where it is ASCII ("" elsewhere), for termScanner.countLower.
type ftsDoc struct {
	cols, lower [5]string
}

func newFTSDoc(cols [5]string) *ftsDoc {
	d := &ftsDoc{cols: cols}
	for k, c := range cols {
		if isASCII(c) {
			d.lower[k] = asciiLower(c)
		}
	}
	return d
}

// asciiLower lower-cases ASCII text, sharing it when it has no upper case.
func asciiLower(s string) string {
	i := strings.IndexFunc(s, func(r rune) bool { return 'A' <= r && r <= 'Z' })
	if i < 0 {
		return s
	}
	b := []byte(s)
	for j := i; j < len(b); j++ {
		if c := b[j]; 'A' <= c && c <= 'Z' {
			b[j] = c + 'a' - 'A'
		}
	}
	return string(b)
}

type facetRule struct {
	pk        int64
	detection bool
	// What a result list shows, kept here so a search needs no query for its page of
	// hits (a few MB for the whole catalog): description is cut to hitDescription.
	id, title, description, path string
	fold                         string // title_fold, only to sort
	// ids are the value ids of every facet value of the rule, for counting.
	ids                                         []int32
	language, repo, severity, status, logsource string
	class                                       string
	sevRank                                     int8 // for browse order: critical first
	tactics, techniques, fields                 []string
}

// hitDescription is how many characters of a description a search hit carries.
const hitDescription = 300

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
	// terms caches each searched phrase's bm25 in every row holding it (web_rank.go),
	// for the same (gen, token).
	terms    map[string]*termScores
	termGen  [2]int64
	termRows int

	// gate queues searches for SQLite (see searchGate).
	gate searchGate

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
	// One phrase's bm25 in each row holding it, in the weights of "rank" (web_rank.go).
	"score": `SELECT rowid, bm25(rules_fts, 10.0, 3.0, 5.0, 2.0, 1.0) FROM rules_fts WHERE rules_fts MATCH ?`,
	// The documents of a page of hits by rowid: plain lookups, no full-text query (see
	// buildSnippet), in one statement.
	"docs": `SELECT rowid, title, description, tags, fields, vals FROM rules_fts WHERE rowid IN (SELECT value FROM json_each(?))`,
}

// stmt returns the prepared statement name bound to tx; errNeedSQL without a tx (a
// search answered from memory that finds something missing).
func (c *Catalog) stmt(ctx context.Context, tx *sql.Tx, name string) (*sql.Stmt, error) {
	if tx == nil {
		return nil, errNeedSQL
	}
	st, err := c.webPrepared(name)
	if err != nil {
		return nil, err
	}
	return tx.StmtContext(ctx, st), nil
}

// webPrepared returns the search statement name, prepared once for the pool (all of
// webSQL at once, before any connection is held: see WarmSearch).
func (c *Catalog) webPrepared(name string) (*sql.Stmt, error) {
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
	return s.stmts[name], nil
}

// searchGate lets a few searches run at a time, first come first served. A search
// is CPU work of 0.1 to a few milliseconds; run all at once, the Go scheduler shares
// the cores among them, so a search needing 3 ms among 50 clients took 25 times that
// (75 ms), where in a queue it waits for what the searches before it need and then
// takes its 3 ms: on the cold path (bench/webload -cold, 50 clients, full catalog) p99
// went from 48 ms to 26 ms. The queue also orders the searches that need SQLite:
// database/sql hands a freed connection to a random waiter, so when dozens waited for a
// few connections an unlucky one waited many turns.
type searchGate struct {
	once  sync.Once
	slots chan struct{}
}

// searchSlots is how many searches run at once: one per core, and never more than the
// connections of the pool less two (the page cache's poller holds one for good, and
// the rest of the server needs one).
func searchSlots() int { return max(1, min(runtime.GOMAXPROCS(0), maxOpenConns()-2)) }

// ch is the gate's channel of slots, made on first use.
func (g *searchGate) ch() chan struct{} {
	g.once.Do(func() { g.slots = make(chan struct{}, searchSlots()) })
	return g.slots
}

// acquire waits for a slot (in arrival order: a channel's blocked senders are woken
// first in, first out) and returns its release.
func (g *searchGate) acquire(ctx context.Context) (func(), error) {
	select {
	case g.ch() <- struct{}{}:
		return func() { <-g.slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
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

// generation is the number of catalog changes noted so far.
func (s *webState) generation() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
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

// facets returns an index valid for the snapshot of tx, whose largest rule pk is token:
// the cached one when no change was noted since it was built and it knows every pk in
// must, else a new one read through tx.
func (c *Catalog) facets(ctx context.Context, tx *sql.Tx, token int64, must []int64) (*facetIndex, error) {
	// The token (the largest pk) catches an ingest that added rules even before the
	// poller notes it; with the check below that every matched pk is known, a search
	// only mixes catalogs in the poll interval after an ingest that only deleted rules.
	// The check runs outside the lock (an index never changes once built): every search
	// makes it, over thousands of pks for a common word.
	s := c.web()
	s.mu.Lock()
	idx, gen := s.idx, s.gen
	s.mu.Unlock()
	if idx != nil && idx.gen == gen && idx.token == token && idx.knowsAll(must) {
		return idx, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.idx; cur != nil && cur != idx && cur.gen == s.gen && cur.token == token && cur.knowsAll(must) {
		return cur, nil // another search has just rebuilt it
	}
	if tx == nil {
		return nil, errNeedSQL
	}
	idx, err := buildFacetIndex(ctx, tx)
	if err != nil {
		return nil, err
	}
	idx.gen, idx.token = s.gen, token
	s.idx = idx
	return idx, nil
}

// at returns the index in rules of the rule with pk.
func (idx *facetIndex) at(pk int64) (int32, bool) {
	if idx.pos != nil {
		if pk < 0 || pk >= int64(len(idx.pos)) {
			return 0, false
		}
		i := idx.pos[pk]
		return i, i >= 0
	}
	i, ok := idx.byPK[pk]
	return i, ok
}

// knowsAll reports whether every pk is a rule of the index.
func (idx *facetIndex) knowsAll(pks []int64) bool {
	for _, pk := range pks {
		if _, ok := idx.at(pk); !ok {
			return false
		}
	}
	return true
}

func buildFacetIndex(ctx context.Context, tx *sql.Tx) (*facetIndex, error) {
	idx := &facetIndex{}
	// No ORDER BY: Go sorts. The columns read all precede the IR blob in a row, so the
	// scan never follows a blob's overflow pages.
	rows, err := tx.QueryContext(ctx, `SELECT r.pk, r.class, r.language, r.repo, r.severity, r.status, `+logSourceExpr+`,
		r.title_fold, r.id, r.title, substr(r.description, 1, `+strconv.Itoa(hitDescription)+`), r.path FROM rules r`)
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
	ids := make([]map[string]int32, len(FacetNames))
	for k := range ids {
		ids[k] = map[string]int32{}
	}
	id := func(facet int, v string) int32 {
		n, ok := ids[facet][v]
		if !ok {
			n = int32(len(idx.names))
			ids[facet][v] = n
			idx.names = append(idx.names, v)
			idx.facetOf = append(idx.facetOf, uint8(facet))
		}
		return n
	}
	for rows.Next() {
		var f facetRule
		if err := rows.Scan(&f.pk, &f.class, &f.language, &f.repo, &f.severity, &f.status, &f.logsource, &f.fold, &f.id,
			&f.title, &f.description, &f.path); err != nil {
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
		if a.fold != b.fold {
			return a.fold < b.fold
		}
		if a.language != b.language {
			return a.language < b.language
		}
		return a.id < b.id
	})
	var minPK, maxPK int64
	for i := range idx.rules {
		minPK, maxPK = min(minPK, idx.rules[i].pk), max(maxPK, idx.rules[i].pk)
		idx.rules[i].fold = "" // only needed to sort
	}
	if minPK >= 0 && maxPK < 4*int64(len(idx.rules))+4096 {
		idx.pos = make([]int32, maxPK+1)
		for i := range idx.pos {
			idx.pos[i] = -1
		}
		for i := range idx.rules {
			idx.pos[idx.rules[i].pk] = int32(i)
		}
	} else {
		idx.byPK = make(map[int64]int32, len(idx.rules))
		for i := range idx.rules {
			idx.byPK[idx.rules[i].pk] = int32(i)
		}
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
			if i, ok := idx.at(pk); ok && v != "" {
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
	n := len(idx.names)
	idx.tallies.New = func() any { return &tally{counts: make([]int32, n)} }
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

// tally counts the ids of one search; touched lists the ids counted, so reading and
// resetting it costs the values present, not every value of the catalog.
type tally struct {
	counts  []int32
	touched []int32
	per     []int32 // values counted a facet
}

// count tallies the facets of the matching rules.
func (idx *facetIndex) count(matches []*facetRule, limit int) map[string][]FacetValue {
	t := idx.tallies.Get().(*tally)
	for _, f := range matches {
		for _, v := range f.ids {
			if t.counts[v] == 0 {
				t.touched = append(t.touched, v)
			}
			t.counts[v]++
		}
	}
	// One array for every facet's values, cut by facet: appending to each facet's own
	// slice left a trail of outgrown arrays, a fifth of a search's garbage.
	per := t.per[:0]
	for range FacetNames {
		per = append(per, 0)
	}
	t.per = per
	for _, v := range t.touched {
		per[idx.facetOf[v]]++
	}
	all := make([]FacetValue, len(t.touched))
	byFacet := make([][]FacetValue, len(FacetNames))
	off := 0
	for k := range byFacet {
		byFacet[k] = all[off : off : off+int(per[k])]
		off += int(per[k])
	}
	for _, v := range t.touched {
		k := idx.facetOf[v]
		byFacet[k] = append(byFacet[k], FacetValue{Value: idx.names[v], Count: int(t.counts[v])})
		t.counts[v] = 0
	}
	t.touched = t.touched[:0]
	idx.tallies.Put(t)
	out := make(map[string][]FacetValue, len(FacetNames))
	for k, name := range FacetNames {
		vals := byFacet[k]
		if len(vals) > limit {
			// Only the top counts are shown: drop what cannot be among them before the
			// sort (hundreds of fields or techniques, most counted once).
			least := kthLargest(vals, limit)
			kept := vals[:0]
			for _, v := range vals {
				if v.Count >= least {
					kept = append(kept, v)
				}
			}
			vals = kept
		}
		slices.SortFunc(vals, func(a, b FacetValue) int {
			if a.Count != b.Count {
				return b.Count - a.Count
			}
			return strings.Compare(a.Value, b.Value)
		})
		if len(vals) > limit {
			vals = vals[:limit:limit]
		}
		out[name] = vals
	}
	return out
}

// kthLargest returns the k-th largest count of vals (k <= len(vals)), with a min-heap
// of the k largest seen.
func kthLargest(vals []FacetValue, k int) int {
	h := make([]int, 0, k)
	for _, v := range vals {
		c := v.Count
		switch {
		case len(h) < k:
			h = append(h, c)
			for i := len(h) - 1; i > 0; {
				p := (i - 1) / 2
				if h[p] <= h[i] {
					break
				}
				h[p], h[i] = h[i], h[p]
				i = p
			}
		case c > h[0]:
			h[0] = c
			for i := 0; ; {
				l, small := 2*i+1, i
				if l < k && h[l] < h[small] {
					small = l
				}
				if l+1 < k && h[l+1] < h[small] {
					small = l + 1
				}
				if small == i {
					break
				}
				h[i], h[small] = h[small], h[i]
				i = small
			}
		}
	}
	return h[0]
}
