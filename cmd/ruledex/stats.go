package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"

	"github.com/spf13/cobra"

	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/rule"
)

func init() {
	var asJSON, listErrors bool
	cmd := &cobra.Command{
		Use:   "stats [--json]",
		Short: "Summarize the catalog: files, rules, errors by diagnostic code, per language and source",
		Long: `stats reports what the catalog holds: files seen (and how many no parser recognized),
rules, rules with error diagnostics broken down by diagnostic code, warnings, and the same
per language and per upstream source.

JSON keys: files, rule_files, skipped, rules, errors (rules with an error diagnostic),
file_errors (files with an error outside any rule), errors_by_code, warnings and
warnings_by_code (rules or files with a warning, once per code), warning_diagnostics (every
warning diagnostic, as ingest counts them), warning_rules (rules or files with a warning),
by_language and by_source (each {files, rules, errors, errors_by_code}), by_folder (rules and
errors per source and top-level folder), roots (the ingested paths: {path, files, rules,
exists}).

--errors lists every error diagnostic instead, as file:line:col: error: message [code].`,
		Example: `  ruledex stats
  ruledex stats --json | jq '.by_source'
  ruledex stats --json | jq '.roots'
  ruledex stats --errors`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			cat, err := openCatalog(true)
			if err != nil {
				return err
			}
			defer cat.Close()
			st, err := cat.Stats(cmd.Context())
			if err != nil {
				return err
			}
			if listErrors {
				ds, err := cat.Diagnostics(cmd.Context(), catalog.DiagFilter{Severity: rule.Error})
				if err != nil {
					return err
				}
				if asJSON {
					enc := json.NewEncoder(cmd.OutOrStdout())
					enc.SetIndent("", "  ")
					return enc.Encode(ds)
				}
				for _, d := range ds {
					fmt.Fprintf(cmd.OutOrStdout(), "%s\t(%s)\n", d.Diagnostic.String(), d.Path)
				}
				return nil
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			printStats(cmd.OutOrStdout(), st)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	cmd.Flags().BoolVar(&listErrors, "errors", false, "list every error diagnostic with its location instead")
	root.AddCommand(cmd)
}

func pct(n, of int) string {
	if of == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f%%", 100*float64(n)/float64(of))
}

func printStats(w io.Writer, st *catalog.Stats) {
	fmt.Fprintf(w, "files:  %d seen (%d rule files, %d skipped)\n", st.Files, st.RuleFiles, st.Skipped)
	fmt.Fprintf(w, "rules:  %d, %d rules with errors (%s clean), %d files with file-level errors, %d warning diagnostics in %d rules or files\n",
		st.Rules, st.Errors, pct(st.Rules-st.Errors, st.Rules), st.FileErrors, st.WarningDiagnostics, st.WarningRules)
	printRoots(w, st.Roots)
	printCodes(w, "rules or files with errors, by code", st.ErrorsByCode)
	printCodes(w, "rules or files with warnings, by code", st.WarningsByCode)
	printGroups(w, "by language", st.ByLanguage)
	printGroups(w, "by source", st.BySource)
	printGroups(w, "by folder", st.ByFolder)
}

func printRoots(w io.Writer, roots []catalog.Root) {
	if len(roots) == 0 {
		return
	}
	fmt.Fprintf(w, "\ningested paths:\n")
	for _, r := range roots {
		gone := ""
		if !r.Exists {
			gone = "  (no longer exists: ruledex remove or ingest it to forget it)"
		}
		fmt.Fprintf(w, "  %s  %d files, %d rules%s\n", r.Path, r.Files, r.Rules, gone)
	}
}

func printCodes(w io.Writer, title string, m map[string]int) {
	if len(m) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%s:\n", title)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	for _, k := range keys {
		fmt.Fprintf(w, "  %6d  %s\n", m[k], k)
	}
}

func printGroups(w io.Writer, title string, m map[string]*catalog.GroupStats) {
	if len(m) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%s:\n", title)
	keys := make([]string, 0, len(m))
	width, files := 0, false
	for k, g := range m {
		keys = append(keys, k)
		width = max(width, len(k))
		files = files || g.Files > 0
	}
	sort.Strings(keys)
	for _, k := range keys {
		g := m[k]
		fmt.Fprintf(w, "  %-*s ", width, k)
		if files {
			fmt.Fprintf(w, "%6d files ", g.Files)
		}
		fmt.Fprintf(w, "%6d rules %5d with errors (%s clean)\n", g.Rules, g.Errors, pct(g.Rules-g.Errors, g.Rules))
	}
}
