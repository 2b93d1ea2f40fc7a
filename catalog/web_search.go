package catalog

import (
	"context"
	"database/sql"
	"fmt"
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
	for _, w := range strings.FieldsFunc(text, func(r rune) bool {
		return unicode.IsSpace(r)
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

// where builds the filter shared by the hit list and every facet, without the
// full-text condition; fts is the FTS5 query ("" when browsing). ok is false when the
// text has no searchable word, which matches nothing.
func (q *SearchQuery) where() (where string, args []any, fts string, ok bool) {
	conds := []string{"1"}
	if strings.TrimSpace(q.Text) != "" {
		fts = ftsQuery(q.Text)
		if fts == "" {
			return "", nil, "", false
		}
	} else {
		conds = append(conds, `r.class IN ('detection', '')`)
	}
	eq := func(col, v string) {
		if v != "" {
			conds = append(conds, col+` = ?`)
			args = append(args, v)
		}
	}
	eq("r.language", q.Language)
	eq("r.repo", q.Source)
	eq("r.severity", q.Severity)
	eq("r.status", q.Status)
	if q.LogSource != "" {
		conds = append(conds, logSourceExpr+` = ?`)
		args = append(args, q.LogSource)
	}
	if q.Tactic != "" {
		conds = append(conds, `EXISTS (SELECT 1 FROM rule_tactics t WHERE t.rule_pk = r.pk AND t.tactic = ?)`)
		args = append(args, q.Tactic)
	}
	if q.Technique != "" {
		id := strings.ToUpper(q.Technique)
		conds = append(conds, `EXISTS (SELECT 1 FROM rule_techniques t WHERE t.rule_pk = r.pk AND (t.technique = ? OR t.technique LIKE ?))`)
		args = append(args, id, id+".%")
	}
	if q.Field != "" {
		conds = append(conds, `EXISTS (SELECT 1 FROM indicators i WHERE i.rule_pk = r.pk AND (i.canonical = ? COLLATE NOCASE OR i.field = ? COLLATE NOCASE))`)
		args = append(args, q.Field, q.Field)
	}
	return strings.Join(conds, " AND "), args, fts, true
}

// Search runs a browse or search request. All its queries read one snapshot, so the
// total, the hits and the facets agree even while an ingest commits.
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
	where, args, fts, ok := q.where()
	if !ok {
		for _, f := range FacetNames {
			res.Facets[f] = []FacetValue{}
		}
		return res, nil
	}
	tx, err := c.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	defer tx.Rollback()
	// Count and facets take the full-text matches as a set; the hit list joins them
	// to rank by bm25.
	all, allArgs := where, args
	if fts != "" {
		all = `r.pk IN (SELECT rowid FROM rules_fts WHERE rules_fts MATCH ?) AND ` + where
		allArgs = append([]any{fts}, args...)
	}

	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM rules r WHERE `+all, allArgs...).Scan(&res.Total); err != nil {
		return nil, fmt.Errorf("search count: %w", err)
	}
	var rows *sql.Rows
	cols := `r.id, r.language, r.title, substr(r.description, 1, 300), r.severity, r.status, r.class, r.repo, r.path, ` + logSourceExpr
	if fts != "" {
		// bm25 weights: a hit in the title matters most, then tags (technique names,
		// tactics), description, and last the long lists of fields and values.
		rows, err = tx.QueryContext(ctx, `SELECT `+cols+`, snippet(rules_fts, -1, '', '', '…', 12)
			FROM rules_fts JOIN rules r ON r.pk = rules_fts.rowid
			WHERE rules_fts MATCH ? AND `+where+`
			ORDER BY bm25(rules_fts, 10.0, 3.0, 5.0, 2.0, 1.0), r.title LIMIT ? OFFSET ?`,
			append(append([]any{fts}, args...), q.PerPage, (q.Page-1)*q.PerPage)...)
	} else {
		rows, err = tx.QueryContext(ctx, `SELECT `+cols+`, '' FROM rules r WHERE `+where+`
			ORDER BY r.title_fold, r.language, r.id LIMIT ? OFFSET ?`,
			append(args, q.PerPage, (q.Page-1)*q.PerPage)...)
	}
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	for rows.Next() {
		var h SearchHit
		if err := rows.Scan(&h.ID, &h.Language, &h.Title, &h.Description, &h.Severity, &h.Status, &h.Class,
			&h.Source, &h.Path, &h.LogSource, &h.Snippet); err != nil {
			rows.Close()
			return nil, fmt.Errorf("search: %w", err)
		}
		res.Hits = append(res.Hits, h)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}

	facetSQL := map[string]string{
		"language":  `SELECT r.language, count(*) FROM rules r WHERE ` + all + ` GROUP BY 1`,
		"source":    `SELECT r.repo, count(*) FROM rules r WHERE ` + all + ` GROUP BY 1`,
		"severity":  `SELECT r.severity, count(*) FROM rules r WHERE ` + all + ` AND r.severity <> '' GROUP BY 1`,
		"status":    `SELECT r.status, count(*) FROM rules r WHERE ` + all + ` AND r.status <> '' GROUP BY 1`,
		"logsource": `SELECT ` + logSourceExpr + `, count(*) FROM rules r WHERE ` + all + ` AND ` + logSourceExpr + ` <> '' GROUP BY 1`,
		"tactic":    `SELECT t.tactic, count(DISTINCT r.pk) FROM rules r JOIN rule_tactics t ON t.rule_pk = r.pk WHERE ` + all + ` GROUP BY 1`,
		"technique": `SELECT t.technique, count(DISTINCT r.pk) FROM rules r JOIN rule_techniques t ON t.rule_pk = r.pk WHERE ` + all + ` GROUP BY 1`,
		"field":     `SELECT i.canonical, count(DISTINCT r.pk) FROM rules r JOIN indicators i ON i.rule_pk = r.pk WHERE ` + all + ` AND i.canonical <> '' GROUP BY 1`,
	}
	for _, name := range FacetNames {
		vals, err := facet(ctx, tx, facetSQL[name]+` ORDER BY 2 DESC, 1 LIMIT ?`, append(append([]any(nil), allArgs...), q.FacetLimit))
		if err != nil {
			return nil, fmt.Errorf("search facet %s: %w", name, err)
		}
		res.Facets[name] = vals
	}
	return res, nil
}

func facet(ctx context.Context, tx *sql.Tx, q string, args []any) ([]FacetValue, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []FacetValue{}
	for rows.Next() {
		var v FacetValue
		if err := rows.Scan(&v.Value, &v.Count); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
