package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/ruledex/ruledex/catalog"
)

func init() {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "remove PATH|SOURCE [--json]",
		Short: "Remove the rules of an ingested path or of a source repository from the catalog",
		Long: `remove deletes from the catalog every file (with its rules) under PATH, a folder or file
given to an earlier ingest or inside one; PATH need not exist any more (a moved or deleted
folder). When nothing is stored under PATH, the argument is taken as a source repository as
ruledex stats lists it (github.com/SigmaHQ/sigma) or its URL, and every file of that source
is removed. Ingested paths at or under PATH are forgotten (ruledex stats lists them).
Event coverage and neighbors are brought up to date afterwards.

Exit status 3 when nothing in the catalog matches.`,
		Example: `  ruledex remove ../shared/corpus/sigma/mdecrevoisier
  ruledex remove github.com/mdecrevoisier/SIGMA-detection-rules --json`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cat, err := openCatalog(true)
			if err != nil {
				return err
			}
			defer cat.Close()
			useStoredDataDir(ctx, cat)
			res, err := cat.Remove(ctx, resolvePath(args[0]), args[0])
			if errors.Is(err, catalog.ErrNothingToRemove) {
				return withCode(exitNoMatch, fmt.Errorf("nothing to remove: no ingested file under %s and no source named %q (see ruledex stats)", resolvePath(args[0]), args[0]))
			}
			if err != nil {
				if ctx.Err() != nil {
					return &interruptedError{"interrupted: catalog unchanged"}
				}
				return cat.Plain(err)
			}
			if err := syncDerived(ctx, cat); err != nil {
				if ctx.Err() != nil {
					return &interruptedError{"interrupted after the rules were removed; derived data will be completed on next use"}
				}
				return cat.Plain(err)
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %d files, %d rules (by %s %s)\n", res.Files, res.Rules, res.By, res.Target)
			for _, r := range res.Roots {
				fmt.Fprintf(cmd.OutOrStdout(), "forgot ingested path %s\n", r)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print what was removed as JSON")
	root.AddCommand(cmd)
}

// resolvePath makes p absolute with symlinks resolved the way ingest records paths,
// also for a path that no longer exists (its nearest existing ancestor is resolved).
func resolvePath(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	rest := ""
	for dir := abs; ; dir = filepath.Dir(dir) {
		if _, err := os.Lstat(dir); err == nil {
			if ev, err := filepath.EvalSymlinks(dir); err == nil {
				return filepath.Join(ev, rest)
			}
			return abs
		}
		if filepath.Dir(dir) == dir {
			return abs
		}
		rest = filepath.Join(filepath.Base(dir), rest)
	}
}
