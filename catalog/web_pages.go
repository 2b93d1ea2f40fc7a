package catalog

import (
	"context"
	"fmt"
)

// RulePaths lists every rule as (language, id), the web server's pre-rendering list.
func (c *Catalog) RulePaths(ctx context.Context) ([][2]string, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT language, id FROM rules ORDER BY pk`)
	if err != nil {
		return nil, fmt.Errorf("rule paths: %w", err)
	}
	defer rows.Close()
	var out [][2]string
	for rows.Next() {
		var l, id string
		if err := rows.Scan(&l, &id); err != nil {
			return nil, fmt.Errorf("rule paths: %w", err)
		}
		out = append(out, [2]string{l, id})
	}
	return out, rows.Err()
}
