package catalog

import (
	"context"
	"fmt"
)

// webIndexes make the browse facets and filters index-only scans: without them every
// facet reads each rules row, stored IR blob included.
var webIndexes = []string{
	`CREATE INDEX IF NOT EXISTS rules_web_facets ON rules (class, language, repo, severity, status, product, category, service, title_fold, id)`,
	`CREATE INDEX IF NOT EXISTS indicators_web_field ON indicators (canonical, rule_pk)`,
	`CREATE INDEX IF NOT EXISTS indicators_web_rule ON indicators (rule_pk, canonical)`,
}

// EnsureWebIndexes creates the indexes the web pages' queries need (idempotent; a
// fraction of a second on a fresh catalog) and merges the full-text index into one
// segment: after a bulk ingest it has hundreds, and every search seeks each of them
// (10x slower). The server calls it at start-up.
func (c *Catalog) EnsureWebIndexes(ctx context.Context) error {
	for _, q := range webIndexes {
		if _, err := c.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("web indexes: %w", err)
		}
	}
	if _, err := c.db.ExecContext(ctx, `INSERT INTO rules_fts(rules_fts) VALUES('optimize')`); err != nil {
		return fmt.Errorf("optimize full-text index: %w", err)
	}
	return nil
}
