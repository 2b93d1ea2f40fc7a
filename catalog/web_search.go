package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// SearchQuery is a browse or full-text search request. Empty fields do not filter.
type SearchQuery struct {
	// Text is full-text search over title, description, tags, fields and values (see
	// ftsQuery for the operators). When it is empty the query browses: only detections
	// (unless Class asks for another class), most severe first, then by title. With
	// text, every class is searched (vendor feeds, building blocks...) and results are
	// ranked.
	Text      string
	Language  string
	Source    string // repository as shown ("github.com/SigmaHQ/sigma")
	Severity  string
	Status    string
	LogSource string // "product/category/service" with empty parts left out
	Tactic    string // short name ("command-and-control")
	Technique string // ID; a parent also matches its sub-techniques
	Field     string // canonical or written field name, case-insensitive
	Class     string // detection, hunting, vendor_feed, building_block...
	// Page is 1-based; PerPage defaults to 50.
	Page, PerPage int
	// FacetLimit caps the values listed per facet (default 25); Total counts stay exact.
	FacetLimit int
}

// SearchHit is one rule in a result list.
type SearchHit struct {
	ID          string `json:"id"`
	Language    string `json:"language"`
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	Severity    string `json:"severity,omitempty"`
	Status      string `json:"status,omitempty"`
	Class       string `json:"class"`
	Source      string `json:"source"`
	Path        string `json:"path"`
	LogSource   string `json:"logsource,omitempty"`
	// Snippet is the matched text around the query terms, plain text (the page escapes it).
	Snippet string `json:"snippet,omitempty"`
	// Marked is Snippet with each match between SnippetMark and SnippetEnd, for pages
	// that highlight matches.
	Marked string `json:"-"`
}

// The snippet's match markers: control characters never indexed or shown.
const (
	SnippetMark = "\x02"
	SnippetEnd  = "\x03"
)

// FacetValue is one value of a facet with the number of matching rules that have it.
type FacetValue struct {
	Value string `json:"value"`
	Count int    `json:"count"`
}

// SearchResult is a page of hits, the total, and per-facet counts over all matches.
// Facets is shared with other searches of the same query (their other pages): read it,
// never change it.
type SearchResult struct {
	Total  int                     `json:"total"`
	Hits   []SearchHit             `json:"results"`
	Facets map[string][]FacetValue `json:"facets"`
}

// FacetNames lists the facets in display order.
var FacetNames = []string{"language", "source", "severity", "status", "logsource", "tactic", "technique", "field", "class"}

// logSourceExpr renders a rule's Sigma log source as "product/category/service".
const logSourceExpr = `replace(trim(r.product || '/' || r.category || '/' || r.service, '/'), '//', '/')`

// ftsQuery turns what a user types into an FTS5 query that cannot be a syntax error.
// It understands the search operators people expect:
//
//	bitsadmin transfer          both words (AND)
//	bitsadmin OR certutil       either
//	-encoded, NOT encoded       without the word
//	"scheduled task"            the phrase
//	download*                   by prefix
//	Image:bitsadmin.exe         the value in a rule testing the field (also a pasted
//	Image|endswith: \x.exe      Sigma line: the modifiers are ignored)
//
// Every word is quoted, so no input is ever FTS5 syntax of its own. A query of
// negations only matches nothing (FTS5 cannot list "everything but").
func ftsQuery(text string) string { return planQuery(text).String() }

// queryPlan is a search as an AND of OR groups of FTS5 phrases, minus any of neg.
type queryPlan struct {
	groups [][]string
	neg    []string
	// byTerms: every phrase is a plain quoted word or phrase (no column filter), so the
	// ranking can be summed from per-phrase scores (see rankByTerms).
	byTerms bool
}

func planQuery(text string) queryPlan {
	// Control characters (a NUL pasted from a log) mean nothing to a search and FTS5
	// rejects them inside a phrase: read them as spaces.
	text = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, text)
	items := lexSearch(text)
	p := queryPlan{byTerms: true}
	orNext := false
	for _, it := range items {
		switch {
		case it.op == "OR":
			orNext = len(p.groups) > 0
			continue
		case it.op == "AND":
			continue
		}
		term := it.fts()
		if term == "" {
			continue
		}
		if it.field != "" {
			p.byTerms = false
		}
		if it.neg {
			p.neg = append(p.neg, term)
			orNext = false
			continue
		}
		if orNext {
			p.groups[len(p.groups)-1] = append(p.groups[len(p.groups)-1], term)
		} else {
			p.groups = append(p.groups, []string{term})
		}
		orNext = false
	}
	return p
}

// String is the FTS5 query; "" when nothing can match.
func (p queryPlan) String() string {
	if len(p.groups) == 0 {
		return ""
	}
	var parts []string
	for _, g := range p.groups {
		if len(g) == 1 {
			parts = append(parts, g[0])
		} else {
			parts = append(parts, "("+strings.Join(g, " OR ")+")")
		}
	}
	q := strings.Join(parts, " AND ")
	if len(p.neg) > 0 {
		q = "(" + q + ") NOT (" + strings.Join(p.neg, " OR ") + ")"
	}
	return q
}

// searchItem is one unit of a search: a word, a phrase, a field:value pair or an operator.
type searchItem struct {
	op     string // "OR", "AND" or "" for a term
	neg    bool
	words  string // the word or phrase text
	prefix bool
	field  string // for field:value
}

// fts renders the item as an FTS5 expression, "" when it has nothing searchable.
func (it searchItem) fts() string {
	val := quoteFTS(it.words, it.prefix)
	if it.field == "" {
		return val
	}
	f := quoteFTS(it.field, false)
	switch {
	case f == "":
		return val
	case val == "":
		return "fields : " + f
	}
	return "(fields : " + f + " AND vals : " + val + ")"
}

// quoteFTS quotes s as one FTS5 string (a phrase when it tokenizes into several words);
// "" when it holds nothing the unicode61 tokenizer indexes.
func quoteFTS(s string, prefix bool) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }) {
		return ""
	}
	t := `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	if prefix {
		t += "*"
	}
	return t
}

// fieldPrefix is a field name before ':' (with Sigma modifiers: Image|endswith).
func fieldPrefix(w string) (field, rest string, ok bool) {
	i := strings.IndexByte(w, ':')
	if i <= 0 {
		return "", "", false
	}
	name, rest := w[:i], w[i+1:]
	if strings.HasPrefix(rest, "//") {
		return "", "", false // a URL, not a field
	}
	if j := strings.IndexByte(name, '|'); j > 0 {
		name = name[:j]
	}
	for k, r := range name {
		if !(r == '_' || r == '.' || r == '-' || unicode.IsLetter(r) || unicode.IsDigit(r) && k > 0) {
			return "", "", false
		}
	}
	return name, rest, true
}

func lexSearch(text string) []searchItem {
	// Control characters (NUL above all, which SQLite's MATCH rejects) separate words
	// like spaces: the tokenizer would never index them anyway.
	sep := func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }
	var out []searchItem
	rs := []rune(text)
	for i := 0; i < len(rs); {
		if sep(rs[i]) {
			i++
			continue
		}
		var it searchItem
		if rs[i] == '-' && i+1 < len(rs) && !sep(rs[i+1]) {
			it.neg = true
			i++
		}
		if rs[i] == '"' {
			end := i + 1
			for end < len(rs) && rs[end] != '"' {
				end++
			}
			it.words = string(rs[i+1 : min(end, len(rs))])
			i = end + 1
			out = append(out, it)
			continue
		}
		start := i
		for i < len(rs) && !sep(rs[i]) {
			i++
		}
		w := string(rs[start:i])
		if !it.neg && (w == "OR" || w == "AND") {
			out = append(out, searchItem{op: w})
			continue
		}
		if !it.neg && w == "NOT" {
			// Negates the next item.
			for i < len(rs) && sep(rs[i]) {
				i++
			}
			if i < len(rs) && rs[i] != '-' {
				rs = append(rs[:i:i], append([]rune{'-'}, rs[i:]...)...)
			}
			continue
		}
		if f, rest, ok := fieldPrefix(w); ok {
			it.field = f
			if rest == "" {
				// "Image|endswith: \x.exe": the value is the next word.
				for i < len(rs) && sep(rs[i]) {
					i++
				}
				vs := i
				if i < len(rs) && rs[i] == '"' {
					for i++; i < len(rs) && rs[i] != '"'; i++ {
					}
					rest = strings.Trim(string(rs[vs:min(i+1, len(rs))]), `"`)
					i++
				} else {
					for i < len(rs) && !sep(rs[i]) {
						i++
					}
					rest = string(rs[vs:i])
				}
			}
			w = strings.Trim(rest, `"'`)
		}
		it.prefix = strings.HasSuffix(w, "*")
		it.words = strings.TrimRight(w, "*")
		if it.field == "" {
			it.words = strings.Trim(it.words, `'`)
		}
		out = append(out, it)
	}
	return out
}

// rank returns the rules matching fts, best first. bm25 weights: title first, then tags
// (techniques, tactics), description, and last the long lists of fields and values.
func (c *Catalog) rank(ctx context.Context, tx *sql.Tx, fts string) ([]int64, error) {
	rank, err := c.stmt(ctx, tx, "rank")
	if err != nil {
		return nil, err
	}
	rows, err := rank.QueryContext(ctx, fts)
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	defer rows.Close()
	ranked := []int64{}
	for rows.Next() {
		var pk int64
		if err := rows.Scan(&pk); err != nil {
			return nil, fmt.Errorf("search: %w", err)
		}
		ranked = append(ranked, pk)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	return ranked, nil
}

// Search runs a browse or search request. Everything it reads comes from one read
// transaction, so the total, the hits and the facets agree even while an ingest commits.
// Filters and facets are evaluated over an in-memory index of the rules (see
// facetIndex); SQLite does the full-text match and ranking and fetches the shown page.
func (c *Catalog) Search(ctx context.Context, q SearchQuery) (*SearchResult, error) {
	if q.PerPage <= 0 {
		q.PerPage = 50
	}
	if q.Page <= 0 {
		q.Page = 1
	}
	if q.FacetLimit <= 0 {
		q.FacetLimit = 25
	}
	res := &SearchResult{Hits: []SearchHit{}}
	fts := ""
	var plan queryPlan
	if strings.TrimSpace(q.Text) != "" {
		plan = planQuery(q.Text)
		if fts = plan.String(); fts == "" {
			res.Facets = map[string][]FacetValue{}
			for _, f := range FacetNames {
				res.Facets[f] = []FacetValue{}
			}
			return res, nil // no searchable word: nothing matches
		}
	}
	// Most searches need nothing but what earlier searches left in memory (the scores of
	// their words, the facet index, the documents of their hits), valid for the catalog
	// the token names: they are answered from memory, after one small query for the
	// token. The rest run in a read transaction, as short as possible: the facet counts
	// and snippets are worked out after it ends.
	// The whole search holds one slot of the gate (see searchGate): its work, from
	// memory or SQLite, is a core's for a fraction of a millisecond to a few.
	release, err := c.web().gate.acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	defer release()
	token, err := c.token(ctx, nil)
	if err != nil {
		return nil, err
	}
	rd, err := c.searchRead(ctx, nil, &q, plan, fts, token)
	if errors.Is(err, errNeedSQL) {
		rd, err = c.searchReadTx(ctx, &q, plan, fts)
	}
	if err != nil {
		return nil, err
	}
	idx, matches, facets, cached, shown, docs := rd.idx, rd.matches, rd.facets, rd.cached, rd.shown, rd.docs
	if !cached {
		facets = idx.count(matches, q.FacetLimit)
		idx.resultPut(q.resultKey(fts), matches, facets)
	}
	res.Total = len(matches)
	res.Facets = facets
	if len(shown) == 0 {
		return res, nil
	}
	res.Hits = make([]SearchHit, len(shown))
	for i, f := range shown {
		res.Hits[i] = f.hit()
	}
	if fts == "" {
		return res, nil
	}
	terms := snippetTerms(q.Text)
	if len(terms) == 0 {
		return res, nil
	}
	sc := newTermScanner(terms)
	var each []*termScanner // one scanner a term, when their hits add up
	if separable(terms) {
		for i := range terms {
			each = append(each, newTermScanner(terms[i:i+1]))
		}
	}
	hits := make([]colHits, len(docs))
	for _, one := range each {
		idx.addTermHits(one, shown, docs, hits)
	}
	for i, d := range docs {
		if d == nil {
			continue
		}
		if each == nil {
			hits[i] = sc.colHits(d)
		}
		h := &res.Hits[i]
		h.Marked = snippetFrom(d, terms, hits[i])
		h.Snippet = snippetUnmark.Replace(h.Marked)
	}
	return res, nil
}

// hit is f as a search result, without a snippet.
func (f *facetRule) hit() SearchHit {
	return SearchHit{ID: f.id, Language: f.language, Title: f.title, Description: f.description,
		Severity: f.severity, Status: f.status, Class: f.class, Source: f.repo, Path: f.path, LogSource: f.logsource}
}

// Hits returns every rule of the catalog as a search shows it (no snippet), in catalog
// order: what a server encodes ahead of its first searches.
func (c *Catalog) Hits(ctx context.Context) ([]SearchHit, error) {
	tx, err := c.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("search hits: %w", err)
	}
	defer tx.Rollback()
	token, err := c.token(ctx, tx)
	if err != nil {
		return nil, err
	}
	idx, err := c.facets(ctx, tx, token, nil)
	if err != nil {
		return nil, err
	}
	out := make([]SearchHit, len(idx.rules))
	for i := range idx.rules {
		out[i] = idx.rules[i].hit()
	}
	return out, nil
}

// errNeedSQL: the search needs the catalog itself (a word never scored, documents never
// read, a stale facet index); it is then read in a transaction.
var errNeedSQL = errors.New("search: not all in memory")

// searchRead is what a search reads: the facet index, the matches and their facets
// (facets only when cached), the shown page and its documents (full-text searches).
type searchRead struct {
	idx     *facetIndex
	matches []*facetRule
	facets  map[string][]FacetValue
	cached  bool
	shown   []*facetRule
	docs    []*ftsDoc
}

// token identifies the catalog the search reads, with the generation noted: the largest
// rule pk, read through tx (nil: on its own, outside any transaction).
func (c *Catalog) token(ctx context.Context, tx *sql.Tx) (int64, error) {
	st, err := c.webPrepared("token")
	if err != nil {
		return 0, err
	}
	if tx != nil {
		st = tx.StmtContext(ctx, st)
	}
	row := st.QueryRowContext(ctx)
	var token int64
	if err := row.Scan(&token); err != nil {
		return 0, fmt.Errorf("catalog token: %w", err)
	}
	return token, nil
}

// searchReadTx is searchRead in a read transaction. The caller holds a slot of the
// gate, so there is a connection free for it (see searchSlots).
func (c *Catalog) searchReadTx(ctx context.Context, q *SearchQuery, plan queryPlan, fts string) (*searchRead, error) {
	// Statements are prepared before a connection is held (see WarmSearch).
	if _, err := c.webPrepared("token"); err != nil {
		return nil, err
	}
	tx, err := c.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	defer tx.Rollback()
	token, err := c.token(ctx, tx)
	if err != nil {
		return nil, err
	}
	return c.searchRead(ctx, tx, q, plan, fts, token)
}

// searchRead reads what the search needs for the catalog token names, through tx; with
// a nil tx from memory only, failing with errNeedSQL on anything missing.
func (c *Catalog) searchRead(ctx context.Context, tx *sql.Tx, q *SearchQuery, plan queryPlan, fts string, token int64) (*searchRead, error) {
	var ranked []int64
	var err error
	if fts != "" {
		gen := c.web().generation()
		var ok bool
		if ranked, ok = c.web().rankedGet(fts, gen, token); !ok {
			if plan.byTerms {
				ranked, err = c.rankByTerms(ctx, tx, plan, gen, token)
			} else {
				ranked, err = c.rank(ctx, tx, fts)
			}
			if err != nil {
				return nil, err
			}
			c.web().rankedPut(fts, gen, token, ranked)
		}
	}
	idx, err := c.facets(ctx, tx, token, ranked)
	if err != nil {
		return nil, err
	}
	// The pages of one search share its matches and facets: computed for the first page
	// asked, kept with the index they point into.
	rd := &searchRead{idx: idx}
	rd.matches, rd.facets, rd.cached = idx.resultGet(q.resultKey(fts))
	if !rd.cached {
		if fts != "" {
			rd.matches = make([]*facetRule, 0, len(ranked))
			for _, pk := range ranked {
				if i, ok := idx.at(pk); ok && q.match(&idx.rules[i]) {
					rd.matches = append(rd.matches, &idx.rules[i])
				}
			}
		} else {
			for i := range idx.rules {
				if f := &idx.rules[i]; (f.detection || q.Class != "") && q.match(f) {
					rd.matches = append(rd.matches, f)
				}
			}
		}
	}
	from := min((q.Page-1)*q.PerPage, len(rd.matches))
	rd.shown = rd.matches[from:min(from+q.PerPage, len(rd.matches))]
	if fts != "" && len(rd.shown) > 0 {
		// Snippets only for the shown page.
		if rd.docs, err = c.docs(ctx, tx, idx, rd.shown); err != nil {
			return nil, err
		}
	}
	return rd, nil
}

// docs returns the full-text documents of rules (nil where there is none): from idx's
// memory, the missing ones read through tx in one statement.
func (c *Catalog) docs(ctx context.Context, tx *sql.Tx, idx *facetIndex, rules []*facetRule) ([]*ftsDoc, error) {
	out := make([]*ftsDoc, len(rules))
	var missing []int64
	idx.docsMu.Lock()
	if idx.docs == nil {
		idx.docs = map[int64]*ftsDoc{}
	}
	for i, f := range rules {
		if out[i] = idx.docs[f.pk]; out[i] == nil {
			missing = append(missing, f.pk)
		}
	}
	idx.docsMu.Unlock()
	if len(missing) == 0 {
		return out, nil
	}
	var pks strings.Builder
	pks.WriteByte('[')
	for i, pk := range missing {
		if i > 0 {
			pks.WriteByte(',')
		}
		pks.WriteString(strconv.FormatInt(pk, 10))
	}
	pks.WriteByte(']')
	st, err := c.stmt(ctx, tx, "docs")
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, pks.String())
	if err != nil {
		return nil, fmt.Errorf("search snippets: %w", err)
	}
	read, err := readFTSDocs(rows)
	if err != nil {
		return nil, fmt.Errorf("search snippets: %w", err)
	}
	idx.docsMu.Lock()
	for pk, d := range read {
		idx.docs[pk] = d
	}
	idx.docsMu.Unlock()
	for i, f := range rules {
		if out[i] == nil {
			out[i] = read[f.pk]
		}
	}
	return out, nil
}

// readFTSDocs reads rows of (rowid, title, description, tags, fields, vals) from
// rules_fts into snippet documents by rowid, and closes rows.
func readFTSDocs(rows *sql.Rows) (map[int64]*ftsDoc, error) {
	defer rows.Close()
	read := map[int64]*ftsDoc{}
	var raw [5]sql.NullString
	for rows.Next() {
		var pk int64
		if err := rows.Scan(&pk, &raw[0], &raw[1], &raw[2], &raw[3], &raw[4]); err != nil {
			return nil, err
		}
		var cols [5]string
		for k := range raw {
			cols[k] = raw[k].String
		}
		read[pk] = newFTSDoc(cols)
	}
	return read, rows.Err()
}

var snippetUnmark = strings.NewReplacer(SnippetMark, "", SnippetEnd, "")

// resultKey identifies what a search matches and counts, the page aside.
func (q *SearchQuery) resultKey(fts string) string {
	return strings.Join([]string{fts, q.Language, q.Source, q.Severity, q.Status, q.LogSource, q.Tactic,
		strings.ToUpper(q.Technique), strings.ToLower(q.Field), q.Class, strconv.Itoa(q.FacetLimit)}, "\x00")
}
