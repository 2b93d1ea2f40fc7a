package catalog

import (
	"context"
	"fmt"

	"github.com/ruledex/ruledex/rule"
)

// AllRules returns every stored rule's IR, in storage order, with the catalog's
// (deduplicated) ids: for whole-catalog work such as `ruledex convert --all`.
func (c *Catalog) AllRules(ctx context.Context) ([]*rule.Rule, error) {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	defer tx.Rollback()
	stored, err := allRules(ctx, tx)
	if err != nil {
		return nil, fmt.Errorf("catalog: reading rules: %w", err)
	}
	out := make([]*rule.Rule, len(stored))
	for i, s := range stored {
		out[i] = s.Rule
	}
	return out, nil
}
