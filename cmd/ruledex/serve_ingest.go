package main

import (
	"context"
	"fmt"
	"os"

	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/ingest"
	"github.com/ruledex/ruledex/lang/sigma"
)

// ingestForServe ingests paths before serving.
// TODO(web): switch to the ingest command's shared helper once it lands.
func ingestForServe(ctx context.Context, cat *catalog.Catalog, paths []string) error {
	sum, err := ingest.Run(ctx, cat, paths, ingest.Options{Parsers: []ingest.Parser{sigma.Parser{}}})
	if err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	fmt.Fprintf(os.Stderr, "ingested %d files (%d changed), %d rules in catalog\n", sum.Files, sum.Changed, sum.TotalRules)
	return nil
}
