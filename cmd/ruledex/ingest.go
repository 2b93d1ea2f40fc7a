package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

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
YAML, Kusto/KQL in .kql files, Markdown fences and Sentinel YAML, Splunk ESCU YAML, and
every other language listed by ruledex stats), parses them and stores rules, stages,
predicates, indicators, ATT&CK links and diagnostics in the catalog (--db). Files larger
than 8 MiB are skipped unread and listed.

Re-ingesting is incremental: files with the same size and modification time are not read
again, touched files with the same content are not parsed again, changed files replace
their rules, and files deleted under an ingested PATH disappear from the catalog. The
whole ingest is one transaction: if it fails or is interrupted (Ctrl-C) before it saves
the rules, the catalog stays as it was ("interrupted: catalog unchanged"), and readers
(ruledex serve) see the old or the new catalog, never a mix. Event coverage and neighbors
are derived after the rules are saved; an interrupt there keeps the new rules ("interrupted
after the rules were saved; ...") and the next command that needs them completes them.
A PATH ingested before that no longer exists (moved, deleted) is emptied: its files leave
the catalog. ruledex stats lists the ingested PATHs; ruledex remove forgets one.

The upstream repository of each file is --source-url when given, else the remote of the
enclosing git checkout, else a SOURCES.md table (folder | commit | source) in the folder or
an ancestor, else the folder path. With --data, ATT&CK technique and tactic names are stored
too.

Exit status is 0 when the ingest committed, even if some rules have diagnostics (see
ruledex stats), 1 when it failed and 130 when it was interrupted.`,
		Example: `  ruledex --data ../shared/corpus ingest ../shared/corpus/sigma
  ruledex ingest --source-url https://github.com/mdecrevoisier/SIGMA-detection-rules ../shared/corpus/sigma/mdecrevoisier
  ruledex ingest --json ../shared/corpus/sigma/mdecrevoisier`,
		Args: usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cat, err := openCatalog(false)
			if err != nil {
				return err
			}
			defer cat.Close()
			o.progress = true
			sum, err := ingestPaths(ctx, cat, args, o)
			if err != nil {
				if ctx.Err() != nil {
					return interrupted(sum, err)
				}
				return withCode(exitFailure, cat.Plain(err))
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

// interrupted is the one-line account of an ingest stopped by a signal: whether the
// catalog is unchanged or the rules were saved before the derived steps.
func interrupted(sum *ingest.Summary, err error) error {
	if errors.Is(err, errDerived) && sum != nil && sum.Changed+sum.Deleted > 0 {
		return &interruptedError{"interrupted after the rules were saved; derived data will be completed on next use"}
	}
	return &interruptedError{"interrupted: catalog unchanged"}
}

func printIngestSummary(w io.Writer, s *ingest.Summary) {
	large := len(s.TooLarge)
	skipped := fmt.Sprintf("%d skipped (not rules)", s.Skipped)
	if large > 0 {
		skipped = fmt.Sprintf("%d skipped (%d not rules, %d larger than %d MiB)", s.Skipped, s.Skipped-large, large, s.MaxFileSize>>20)
	}
	fmt.Fprintf(w, "files:     %d seen, %d changed, %d unchanged, %d deleted, %s\n",
		s.Files, s.Changed, s.Unchanged, s.Deleted, skipped)
	for _, f := range s.TooLarge {
		fmt.Fprintf(w, "skipped:   %s: %s (%d bytes)\n", f.Path, f.Reason, f.Size)
	}
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
	fmt.Fprintf(w, "problems:  %d rules with errors, %d files with file-level errors, %d warning diagnostics (details: ruledex stats)\n",
		s.RuleErrors, s.FileErrors, s.Warnings)
	for _, n := range s.Notes {
		fmt.Fprintf(w, "note:      %s\n", n)
	}
	rate := ""
	if s.Rules > 0 {
		rate = fmt.Sprintf(", %.0f rules/s", s.RulesPerS)
	}
	steps := ""
	for _, st := range s.Steps {
		steps += fmt.Sprintf(", %s %.2fs", st.Name, st.Seconds)
	}
	if steps != "" {
		steps = " (of which" + strings.TrimPrefix(steps, ",") + ")"
	}
	fmt.Fprintf(w, "time:      %.2fs%s%s\n", s.Seconds, steps, rate)
}
