package catalog

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// SearchQuery is a browse or full-text search request. Empty fields do not filter.
type SearchQuery struct {
	// Text is full-text search over title, description, tags, fields and values. When it
	// is empty the query browses: only detections are listed, by title. With text, every
	// class is searched (vendor feeds, building blocks...) and results are ranked.
	Text      string
	Language  string
	Source    string // repository as shown ("github.com/SigmaHQ/sigma")
	Severity  string
	Status    string
	LogSource string // "product/category/service" with empty parts left out
	Tactic    string // short name ("command-and-control")
	Technique string // ID; a parent also matches its sub-techniques
	Field     string // canonical or written field name, case-insensitive
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
}

// FacetValue is one value of a facet with the number of matching rules that have it.
type FacetValue struct {
	Value string `json:"value"`
	Count int    `json:"count"`
}

// SearchResult is a page of hits, the total, and per-facet counts over all matches.
type SearchResult struct {
	Total  int                     `json:"total"`
	Hits   []SearchHit             `json:"results"`
	Facets map[string][]FacetValue `json:"facets"`
}

// FacetNames lists the facets in display order.
var FacetNames = []string{"language", "source", "severity", "status", "logsource", "tactic", "technique", "field"}

// logSourceExpr renders a rule's Sigma log source as "product/category/service".
const logSourceExpr = `replace(trim(r.product || '/' || r.category || '/' || r.service, '/'), '//', '/')`

// ftsQuery turns user text into an FTS5 query that cannot be a syntax error: every
// word becomes a quoted string (AND-ed), a trailing * keeps prefix search.
func ftsQuery(text string) string {
	var terms []string
	// Control characters (NUL above all, which SQLite's MATCH rejects) separate words
	// like spaces: the tokenizer would never index them anyway.
	for _, w := range strings.FieldsFunc(text, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r)
	}) {
		prefix := strings.HasSuffix(w, "*")
		w = strings.TrimRight(w, "*")
		// Keep only what the unicode61 tokenizer would index; a word made only of
		// punctuation matches nothing and would make the whole query empty.
		if !strings.ContainsFunc(w, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }) {
			continue
		}
		t := `"` + strings.ReplaceAll(w, `"`, `""`) + `"`
		if prefix {
			t += "*"
		}
		terms = append(terms, t)
	}
	return strings.Join(terms, " ")
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
	res := &SearchResult{Hits: []SearchHit{}, Facets: map[string][]FacetValue{}}
	for _, f := range FacetNames {
		res.Facets[f] = []FacetValue{}
	}
	fts := ""
	if strings.TrimSpace(q.Text) != "" {
		if fts = ftsQuery(q.Text); fts == "" {
			return res, nil // no searchable word: nothing matches
		}
	}
	tx, err := c.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	defer tx.Rollback()

	var ranked []int64
	if fts != "" {
		// bm25 weights: title first, then tags (techniques, tactics), description, and
		// last the long lists of fields and values.
		rank, err := c.stmt(ctx, tx, "rank")
		if err != nil {
			return nil, err
		}
		rows, err := rank.QueryContext(ctx, fts)
		if err != nil {
			return nil, fmt.Errorf("search: %w", err)
		}
		for rows.Next() {
			var pk int64
			if err := rows.Scan(&pk); err != nil {
				rows.Close()
				return nil, fmt.Errorf("search: %w", err)
			}
			ranked = append(ranked, pk)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("search: %w", err)
		}
	}
	idx, err := c.facets(ctx, tx, ranked)
	if err != nil {
		return nil, err
	}
	var matches []*facetRule
	if fts != "" {
		for _, pk := range ranked {
			if i, ok := idx.byPK[pk]; ok && q.match(&idx.rules[i]) {
				matches = append(matches, &idx.rules[i])
			}
		}
	} else {
		for i := range idx.rules {
			if f := &idx.rules[i]; f.detection && q.match(f) {
				matches = append(matches, f)
			}
		}
	}
	res.Total = len(matches)
	res.Facets = idx.count(matches, q.FacetLimit)
	from := min((q.Page-1)*q.PerPage, len(matches))
	shown := matches[from:min(from+q.PerPage, len(matches))]
	if len(shown) == 0 {
		return res, nil
	}
	var pks strings.Builder
	pks.WriteByte('[')
	for i, f := range shown {
		if i > 0 {
			pks.WriteByte(',')
		}
		pks.WriteString(strconv.FormatInt(f.pk, 10))
	}
	pks.WriteByte(']')
	hits := map[int64]*SearchHit{}
	details, err := c.stmt(ctx, tx, "details")
	if err != nil {
		return nil, err
	}
	rows, err := details.QueryContext(ctx, pks.String())
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	for rows.Next() {
		var pk int64
		var h SearchHit
		if err := rows.Scan(&pk, &h.ID, &h.Language, &h.Title, &h.Description, &h.Severity, &h.Status, &h.Class,
			&h.Source, &h.Path, &h.LogSource); err != nil {
			rows.Close()
			return nil, fmt.Errorf("search: %w", err)
		}
		if h.Class == "" {
			h.Class = "detection"
		}
		hits[pk] = &h
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	if fts != "" {
		// Snippets only for the shown page: snippet() is costly, and in the ranking
		// query SQLite would compute it for every match before sorting.
		snippets, err := c.stmt(ctx, tx, "snippets")
		if err != nil {
			return nil, err
		}
		rows, err := snippets.QueryContext(ctx, fts, pks.String())
		if err != nil {
			return nil, fmt.Errorf("search snippets: %w", err)
		}
		for rows.Next() {
			var pk int64
			var snip string
			if err := rows.Scan(&pk, &snip); err != nil {
				rows.Close()
				return nil, fmt.Errorf("search snippets: %w", err)
			}
			if h := hits[pk]; h != nil {
				h.Snippet = snip
			}
		}
		rows.Close()
	}
	for _, f := range shown {
		if h := hits[f.pk]; h != nil {
			res.Hits = append(res.Hits, *h)
		}
	}
	return res, nil
}
