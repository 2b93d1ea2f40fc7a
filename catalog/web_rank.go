package catalog

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sort"
	"sync"
)

// Ranking a search with FTS5's bm25() costs milliseconds for a common word (thousands
// of matching rows, each scored), and most searches are new combinations of words
// searched before. bm25 is a sum over the query's phrases of a score that depends only
// on the phrase and the row (the phrase's IDF over the whole table, its weighted hits
// in the row, the row's length), and a row gets nothing from a phrase it does not hold.
// So each phrase is scored once per catalog, against every row holding it, and a query
// of plain words and phrases (AND, OR, NOT) is ranked by adding the scores of its
// phrases in query order: the same numbers, summed in the same order, as bm25() on the
// whole query (TestRankByTermsMatchesBM25 holds the two to each other).

// termScores are the rows holding one phrase, by pk, with the phrase's bm25 in each.
type termScores struct {
	pks    []int64 // ascending
	scores []float64
	// ranked is pks best first, for a search of this phrase alone: sorting thousands of
	// rows was a third of a common word's first search (see rankedAlone).
	rankOnce sync.Once
	ranked   []int64
}

// rankedAlone returns the rows best (lowest bm25) first, then by pk: rankByTerms's order
// for a query of this one phrase (a sum of one score from 0 is that score). The slice is
// shared: read only.
func (t *termScores) rankedAlone() []int64 {
	t.rankOnce.Do(func() {
		order := make([]int32, len(t.pks))
		for i := range order {
			order[i] = int32(i)
		}
		// pks ascend, so a stable sort by score leaves ties in pk order.
		slices.SortStableFunc(order, func(a, b int32) int { return cmp.Compare(t.scores[a], t.scores[b]) })
		t.ranked = make([]int64, len(order))
		for i, j := range order {
			t.ranked[i] = t.pks[j]
		}
	})
	return t.ranked
}

func (t *termScores) score(pk int64) (float64, bool) {
	i, ok := slices.BinarySearch(t.pks, pk)
	if !ok {
		return 0, false
	}
	return t.scores[i], true
}

// maxTermRows bounds the phrase score cache (rows over all phrases; 16 bytes each, 24
// with the ranking alone).
const maxTermRows = 1 << 21

func (s *webState) termGet(phrase string, gen, token int64) (*termScores, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.termGen != [2]int64{gen, token} {
		return nil, false
	}
	t, ok := s.terms[phrase]
	return t, ok
}

func (s *webState) termPut(phrase string, gen, token int64, t *termScores) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.termGen != [2]int64{gen, token} || s.terms == nil {
		s.terms, s.termGen, s.termRows = map[string]*termScores{}, [2]int64{gen, token}, 0
	}
	if _, ok := s.terms[phrase]; ok {
		return
	}
	for k, old := range s.terms {
		if s.termRows+len(t.pks) <= maxTermRows {
			break
		}
		s.termRows -= len(old.pks)
		delete(s.terms, k) // map order is random enough to evict by
	}
	s.terms[phrase] = t
	s.termRows += len(t.pks)
}

// phraseScores returns the rows holding phrase (an FTS5 quoted string) and their bm25.
func (c *Catalog) phraseScores(ctx context.Context, tx *sql.Tx, phrase string, gen, token int64) (*termScores, error) {
	// FTS5 folds ASCII case: "PowerShell" and "powershell" are one phrase, one entry.
	if isASCII(phrase) {
		phrase = asciiLower(phrase)
	}
	if t, ok := c.web().termGet(phrase, gen, token); ok {
		return t, nil
	}
	st, err := c.stmt(ctx, tx, "score")
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, phrase)
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	defer rows.Close()
	t := &termScores{}
	for rows.Next() {
		var pk int64
		var sc float64
		if err := rows.Scan(&pk, &sc); err != nil {
			return nil, fmt.Errorf("search: %w", err)
		}
		t.pks = append(t.pks, pk)
		t.scores = append(t.scores, sc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	if !sort.SliceIsSorted(t.pks, func(i, j int) bool { return t.pks[i] < t.pks[j] }) {
		sort.Sort(byPK{t})
	}
	c.web().termPut(phrase, gen, token, t)
	return t, nil
}

type byPK struct{ t *termScores }

func (b byPK) Len() int           { return len(b.t.pks) }
func (b byPK) Less(i, j int) bool { return b.t.pks[i] < b.t.pks[j] }
func (b byPK) Swap(i, j int) {
	b.t.pks[i], b.t.pks[j] = b.t.pks[j], b.t.pks[i]
	b.t.scores[i], b.t.scores[j] = b.t.scores[j], b.t.scores[i]
}

// scored is a candidate row of rankByTerms with its summed score.
type scored struct {
	pk    int64
	score float64
}

// scoredScratch recycles rankByTerms's candidate lists: only the ranked pks outlive it.
var scoredScratch = sync.Pool{New: func() any { s := make([]scored, 0, 1024); return &s }}

// maxPooledScored: longer lists (a query of common words) are left to the collector.
const maxPooledScored = 1 << 16

// rankByTerms ranks a query of plain phrases from per-phrase scores: the rows in every
// group and in none of the exclusions, best (lowest bm25) first, then by pk, as rank.
func (c *Catalog) rankByTerms(ctx context.Context, tx *sql.Tx, p queryPlan, gen, token int64) ([]int64, error) {
	groups := make([][]*termScores, len(p.groups))
	for i, g := range p.groups {
		for _, ph := range g {
			t, err := c.phraseScores(ctx, tx, ph, gen, token)
			if err != nil {
				return nil, err
			}
			groups[i] = append(groups[i], t)
		}
	}
	if len(groups) == 1 && len(groups[0]) == 1 && len(p.neg) == 0 {
		return groups[0][0].rankedAlone(), nil
	}
	var neg []*termScores
	for _, ph := range p.neg {
		t, err := c.phraseScores(ctx, tx, ph, gen, token)
		if err != nil {
			return nil, err
		}
		neg = append(neg, t)
	}
	// Candidates: the rows of the smallest group (each once), as a row must be in every
	// group; checking a few hundred rows against a common word's thousands costs less
	// than the other way round. Scores are still summed in query order below.
	c0 := 0
	size := func(g []*termScores) (n int) {
		for _, t := range g {
			n += len(t.pks)
		}
		return n
	}
	for i := range groups[1:] {
		if size(groups[i+1]) < size(groups[c0]) {
			c0 = i + 1
		}
	}
	cand := groups[c0][0].pks // read only
	if len(groups[c0]) > 1 {
		cand = nil
		for _, t := range groups[c0] {
			cand = append(cand, t.pks...)
		}
		slices.Sort(cand)
		cand = slices.Compact(cand)
	}
	sp := scoredScratch.Get().(*[]scored)
	out := (*sp)[:0]
	defer func() {
		if cap(out) <= maxPooledScored {
			*sp = out[:0]
			scoredScratch.Put(sp)
		}
	}()
next:
	for _, pk := range cand {
		for i, g := range groups {
			if i == c0 {
				continue
			}
			found := false
			for _, t := range g {
				if _, ok := t.score(pk); ok {
					found = true
					break
				}
			}
			if !found {
				continue next
			}
		}
		for _, t := range neg {
			if _, ok := t.score(pk); ok {
				continue next
			}
		}
		// Summed in query order, from 0, like bm25(): the same float result.
		var sum float64
		for _, g := range groups {
			for _, t := range g {
				if sc, ok := t.score(pk); ok {
					sum += sc
				}
			}
		}
		out = append(out, scored{pk, sum})
	}
	slices.SortFunc(out, func(a, b scored) int {
		if c := cmp.Compare(a.score, b.score); c != 0 {
			return c
		}
		return cmp.Compare(a.pk, b.pk)
	})
	ranked := make([]int64, len(out))
	for i, s := range out {
		ranked[i] = s.pk
	}
	return ranked, nil
}

// WarmSearch scores, ahead of any search, the n words held by the most rules: those are
// the ones a first search pays most for (milliseconds each, a few for a rare word). The
// server calls it in the background after start-up and after each catalog change; it
// stops early when ctx ends. It returns how many words it scored.
func (c *Catalog) WarmSearch(ctx context.Context, n int) (int, error) {
	// The statements are prepared (once, on a connection of their own) before this holds
	// two: preparing them later, with the pool's other connections held by the page
	// cache's pollers and by searches waiting for one, would wait for ever.
	if _, err := c.webPrepared("token"); err != nil {
		return 0, fmt.Errorf("warm search: %w", err)
	}
	conn, err := c.db.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("warm search: %w", err)
	}
	defer conn.Close()
	// A vocabulary table in this connection's temp schema: nothing is written to the catalog.
	if _, err := conn.ExecContext(ctx, `CREATE VIRTUAL TABLE IF NOT EXISTS temp.rules_fts_rows USING fts5vocab(main, rules_fts, row)`); err != nil {
		return 0, fmt.Errorf("warm search: %w", err)
	}
	rows, err := conn.QueryContext(ctx, `SELECT term FROM temp.rules_fts_rows ORDER BY doc DESC, term LIMIT ?`, n)
	if err != nil {
		return 0, fmt.Errorf("warm search: %w", err)
	}
	var terms []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return 0, fmt.Errorf("warm search: %w", err)
		}
		terms = append(terms, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("warm search: %w", err)
	}
	if err := c.warmDocs(ctx); err != nil {
		return 0, err
	}
	done := 0
	for _, t := range terms {
		if err := ctx.Err(); err != nil {
			return done, nil
		}
		if quoteFTS(t, false) == "" {
			// A token of the index no search can ask for (an emoji newer than Go's
			// letter tables, say: "🫡" as an FTS5 string is a syntax error).
			continue
		}
		if err := c.warmTerm(ctx, t); err != nil {
			return done, err
		}
		done++
	}
	return done, nil
}

// warmTerm scores one word in its own read transaction (a short one: an ingest may wait).
func (c *Catalog) warmTerm(ctx context.Context, term string) error {
	tx, err := c.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("warm search: %w", err)
	}
	defer tx.Rollback()
	tok, err := c.stmt(ctx, tx, "token")
	if err != nil {
		return err
	}
	var token int64
	if err := tok.QueryRowContext(ctx).Scan(&token); err != nil {
		return fmt.Errorf("warm search: %w", err)
	}
	t, err := c.phraseScores(ctx, tx, quoteFTS(term, false), c.web().generation(), token)
	if err != nil {
		return err
	}
	t.rankedAlone() // the word searched alone: ranked ahead too
	return nil
}

// warmDocs reads every rule's full-text document into the facet index, for snippets: a
// first search then reads none of the fifty it shows (7 MB of text for the full corpus;
// read one rule at a time, the first searches after start-up took 50 ms instead of 10).
func (c *Catalog) warmDocs(ctx context.Context) error {
	tx, err := c.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("warm search: %w", err)
	}
	defer tx.Rollback()
	token, err := c.token(ctx, tx)
	if err != nil {
		return err
	}
	idx, err := c.facets(ctx, tx, token, nil)
	if err != nil {
		return err
	}
	rows, err := tx.QueryContext(ctx, `SELECT rowid, title, description, tags, fields, vals FROM rules_fts`)
	if err != nil {
		return fmt.Errorf("warm search: %w", err)
	}
	read, err := readFTSDocs(rows)
	if err != nil {
		return fmt.Errorf("warm search: %w", err)
	}
	idx.docsMu.Lock()
	if idx.docs == nil {
		idx.docs = read
	} else {
		for pk, d := range read {
			idx.docs[pk] = d
		}
	}
	idx.docsMu.Unlock()
	return nil
}
