package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ruledex/ruledex/ingest"
)

func init() {
	var o ingestOptions
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ingest [--source-url URL] [--json] PATH...",
		Short: "Read rule files under PATHs into the catalog (incremental)",
		Long: `ingest walks each PATH (a folder or a file), recognizes rule files by content (Sigma
YAML; more languages as parsers are registered), parses them and stores rules, stages,
predicates, indicators, ATT&CK links and diagnostics in the catalog (--db).

Re-ingesting is incremental: files with the same size and modification time are not read
again, touched files with the same content are not parsed again, changed files replace
their rules, and files deleted under an ingested PATH disappear from the catalog. The
whole ingest is one transaction: if it fails or is interrupted (Ctrl-C), the catalog stays
as it was, and readers (ruledex serve) see the old or the new catalog, never a mix.

The upstream repository of each file is --source-url when given, else the remote of the
enclosing git checkout, else a SOURCES.md table (folder | commit | source) in the folder or
an ancestor, else the folder path. With --data, ATT&CK technique and tactic names are stored
too.

Exit status is 0 when the ingest committed, even if some rules have diagnostics (see
ruledex stats), and non-zero when it failed.`,
		Example: `  ruledex --data ../shared/corpus ingest ../shared/corpus/sigma
  ruledex ingest --source-url https://github.com/SigmaHQ/sigma ~/src/sigma-fork/rules
  ruledex ingest --json ../shared/corpus/sigma/mdecrevoisier`,
		Args: usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			cat, err := openCatalog(false)
			if err != nil {
				return err
			}
			defer cat.Close()
			o.progress = true
			sum, err := ingestPaths(ctx, cat, args, o)
			if err != nil {
				return withCode(exitFailure, err)
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(sum)
			}
			printIngestSummary(cmd.OutOrStdout(), sum)
			return nil
		},
	}
	cmd.Flags().StringVar(&o.sourceURL, "source-url", "", "upstream repository URL of the files (e.g. https://github.com/SigmaHQ/sigma)")
	cmd.Flags().BoolVar(&o.force, "force", false, "parse every file again, even unchanged ones")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the summary as JSON")
	root.AddCommand(cmd)
}

func printIngestSummary(w io.Writer, s *ingest.Summary) {
	fmt.Fprintf(w, "files:     %d seen, %d changed, %d unchanged, %d deleted, %d skipped (not rules)\n",
		s.Files, s.Changed, s.Unchanged, s.Deleted, s.Skipped)
	langs := make([]string, 0, len(s.ByLanguage))
	for l := range s.ByLanguage {
		langs = append(langs, l)
	}
	sort.Strings(langs)
	per := ""
	for _, l := range langs {
		per += fmt.Sprintf(", %s %d", l, s.ByLanguage[l])
	}
	fmt.Fprintf(w, "rules:     %d parsed%s; %d in the catalog\n", s.Rules, per, s.TotalRules)
	fmt.Fprintf(w, "problems:  %d with errors, %d warnings (details: ruledex stats)\n", s.Errors, s.Warnings)
	for _, n := range s.Notes {
		fmt.Fprintf(w, "note:      %s\n", n)
	}
	rate := ""
	if s.Rules > 0 {
		rate = fmt.Sprintf(", %.0f rules/s", s.RulesPerS)
	}
	fmt.Fprintf(w, "time:      %.2fs%s\n", s.Seconds, rate)
}
