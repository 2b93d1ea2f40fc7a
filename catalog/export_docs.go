package catalog

import (
	"context"
	"fmt"
	"strings"
)

// SearchDoc is one rule as a static site's search index holds it: what the browse
// page lists and what full-text search reads (the same columns as the FTS index).
type SearchDoc struct {
	Language    string
	ID          string
	Title       string
	Description string
	Severity    string
	Status      string
	Class       string
	Source      string
	LogSource   string
	Techniques  []string
	Tactics     []string
	Tags        string
	Fields      string
	Values      string
}

// SearchDocs lists every rule as a SearchDoc, in catalog order, from one snapshot.
func (c *Catalog) SearchDocs(ctx context.Context) ([]SearchDoc, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT r.language, r.id, r.title, r.description, r.severity, r.status, r.class, r.repo,
		`+logSourceExpr+`, coalesce(f.tags, ''), coalesce(f.fields, ''), coalesce(f.vals, ''),
		coalesce((SELECT group_concat(technique, ' ') FROM rule_techniques t WHERE t.rule_pk = r.pk), ''),
		coalesce((SELECT group_concat(tactic, ' ') FROM rule_tactics t WHERE t.rule_pk = r.pk), '')
		FROM rules r LEFT JOIN rules_fts f ON f.rowid = r.pk ORDER BY r.pk`)
	if err != nil {
		return nil, fmt.Errorf("search documents: %w", err)
	}
	defer rows.Close()
	var out []SearchDoc
	for rows.Next() {
		var d SearchDoc
		var techs, tacs string
		if err := rows.Scan(&d.Language, &d.ID, &d.Title, &d.Description, &d.Severity, &d.Status, &d.Class, &d.Source,
			&d.LogSource, &d.Tags, &d.Fields, &d.Values, &techs, &tacs); err != nil {
			return nil, fmt.Errorf("search documents: %w", err)
		}
		if d.Class == "" {
			d.Class = "detection"
		}
		d.Techniques, d.Tactics = strings.Fields(techs), strings.Fields(tacs)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search documents: %w", err)
	}
	return out, nil
}

// SharedIndicatorKeys returns the indicator keys that at least min rules test (not
// negated), counted as the rule pages count them.
func (c *Catalog) SharedIndicatorKeys(ctx context.Context, min int) (map[string]bool, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT key FROM indicator_counts WHERE negated = 0 GROUP BY key HAVING sum(rules) >= ?`, min)
	if err != nil {
		return nil, fmt.Errorf("shared indicators: %w", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("shared indicators: %w", err)
		}
		out[k] = true
	}
	return out, rows.Err()
}
