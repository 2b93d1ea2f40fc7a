package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/rule"
	"github.com/ruledex/ruledex/web"
)

func init() {
	export := &cobra.Command{
		Use:   "export FORMAT",
		Short: "Export catalog data in other tools' formats",
		Long: `export writes catalog data in another tool's format. FORMAT is:

  navigator   an ATT&CK Navigator layer of the rules' technique coverage
  site        the whole wiki as static files`,
		Example: `  ruledex export navigator --out layer.json`,
		// Without a known FORMAT the command line is wrong: say so (exit 2), never
		// print help with success.
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return withCode(exitUsage, fmt.Errorf("export needs a FORMAT: navigator or site (see %s --help)", cmd.CommandPath()))
			}
			return withCode(exitUsage, fmt.Errorf("unknown export format %q; use navigator or site (see %s --help)", args[0], cmd.CommandPath()))
		},
		RunE: func(cmd *cobra.Command, args []string) error { return nil },
	}
	var out, baseURL string
	var f web.CoverageFilter
	nav := &cobra.Command{
		Use:   "navigator [--out FILE] [--language L] [--source REPO] [--severity S]",
		Short: "Write an ATT&CK Navigator layer (format 4.5) of detection-rule coverage",
		Long: `navigator writes the ATT&CK coverage of the catalog's detection rules as an ATT&CK
Navigator layer (layer format 4.5, domain enterprise-attack): one entry per technique and
tactic with at least one rule, the score being the number of rules (sub-techniques fold into
their parent's score, as on the wiki's matrix page). Load the file in the Navigator with
"Open Existing Layer". The same layer is served at /attack/navigator.json.

--language, --source and --severity take the values the catalog holds (any case); an
unknown value is refused with the list of valid ones. Without --data, the folder given
to the last ingest with --data is used.`,
		Example: `  ruledex --data ../shared/corpus export navigator --out coverage.json
  ruledex export navigator --language sigma --severity high
  ruledex export navigator --source github.com/SigmaHQ/sigma | jq '.techniques | length'`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			cat, err := openDerived()
			if err != nil {
				return err
			}
			defer cat.Close()
			ctx := cmd.Context()
			useStoredDataDir(ctx, cat)
			for _, fl := range []struct {
				flag, column string
				v            *string
			}{{"language", "language", &f.Language}, {"source", "repo", &f.Source}, {"severity", "severity", &f.Severity}} {
				if err := checkFilter(ctx, cat, fl.flag, fl.column, fl.v); err != nil {
					return err
				}
			}
			am, err := loadAttack()
			if err != nil {
				return err
			}
			m, err := web.CoverageMatrix(cmd.Context(), cat, am, f)
			if err != nil {
				return err
			}
			b, err := json.MarshalIndent(web.NavigatorLayer(m, baseURL), "", "  ")
			if err != nil {
				return err
			}
			b = append(b, '\n')
			if out == "" || out == "-" {
				_, err = cmd.OutOrStdout().Write(b)
				return err
			}
			if err := os.WriteFile(out, b, 0o644); err != nil {
				return fmt.Errorf("export: %w", err)
			}
			fmt.Fprintf(os.Stderr, "wrote %s: %d technique entries, %d rules\n", out, countEntries(m), m.Rules)
			return nil
		},
	}
	nav.Flags().StringVarP(&out, "out", "o", "", "file to write (default: standard output)")
	nav.Flags().StringVar(&f.Language, "language", "", "count only rules of this language ("+rule.LanguageIDs()+")")
	nav.Flags().StringVar(&f.Source, "source", "", "count only rules of this source repository (as shown on pages)")
	nav.Flags().StringVar(&f.Severity, "severity", "", "count only rules of this severity")
	nav.Flags().StringVar(&baseURL, "base-url", "http://127.0.0.1:8080", "wiki URL the layer's technique links point to (empty: no links to the wiki)")
	export.AddCommand(nav)
	export.AddCommand(siteCommand())
	root.AddCommand(export)
}

// checkFilter resolves a filter flag's value to the spelling the catalog stores
// (case-insensitively), or fails with the valid values.
func checkFilter(ctx context.Context, cat *catalog.Catalog, flag, column string, v *string) error {
	if *v == "" {
		return nil
	}
	valid, err := cat.Distinct(ctx, column)
	if err != nil {
		return err
	}
	for _, x := range valid {
		if strings.EqualFold(x, strings.TrimSpace(*v)) {
			*v = x
			return nil
		}
	}
	return withCode(exitUsage, fmt.Errorf("unknown --%s %q; the catalog has %s", flag, *v, strings.Join(valid, ", ")))
}

func countEntries(m *web.Matrix) int {
	n := 0
	for _, col := range m.Tactics {
		for _, c := range col.Techniques {
			if c.Count > 0 {
				n++
			}
			for _, s := range c.Subs {
				if s.Count > 0 {
					n++
				}
			}
		}
	}
	return n
}
