package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/ruledex/ruledex/rule"
	"github.com/ruledex/ruledex/web"
)

func init() {
	export := &cobra.Command{
		Use:   "export",
		Short: "Export catalog data in other tools' formats",
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
"Open Existing Layer". The same layer is served at /attack/navigator.json.`,
		Example: `  ruledex --data ../shared/corpus export navigator --out coverage.json
  ruledex --data ../shared/corpus export navigator --language sigma --severity high`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, ok := rule.ParseLanguage(f.Language); f.Language != "" && !ok {
				return withCode(exitUsage, fmt.Errorf("unknown language %q (want one of %s)", f.Language, rule.LanguageIDs()))
			}
			am, err := loadAttack()
			if err != nil {
				return err
			}
			cat, err := openCatalog(true)
			if err != nil {
				return err
			}
			defer cat.Close()
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
				_, err = os.Stdout.Write(b)
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
	root.AddCommand(export)
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
