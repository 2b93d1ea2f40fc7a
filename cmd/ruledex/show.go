package main

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/spf13/cobra"

	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/page"
	"github.com/ruledex/ruledex/rule"
	"github.com/ruledex/ruledex/winevent"
)

func init() {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show RULE [--json]",
		Short: "Print a rule's page: metadata, ATT&CK, body, stages, exclusions, indicators with corpus counts",
		Long: `show prints the page of one rule, the same sections in the same order as the web page:
breadcrumb, title, metadata, description, references, ATT&CK coverage, event coverage (with
--data), the rule body, stages and predicates, exclusions, indicators with their corpus
counts ("corpus 29 (sigma 28, kusto 1)": how many rules of the catalog test the same field,
kind and value), output fields and diagnostics. Empty sections are left out.

RULE is, tried in this order: <lang>/<id> or a page path /rules/<lang>/<id>/, a rule id
(upstream id or catalog id), an exact title (case-insensitive), a file name without
extension, or a file path (absolute, relative, or inside the source repository).

--json prints the rule's IR as stored, plus "url" (its page path) and, with --data,
"event_coverage". Without --data, the folder given to the last ingest with --data is used.

Exit status 3 when RULE names no rule (closest titles are suggested) or several rules
(they are listed with their ids).`,
		Example: `  ruledex show "BITS payload downloaded via commandline"
  ruledex show sigma/d059842b-6b9d-4ed1-b5c3-5b89143c6ede
  ruledex show ../shared/corpus/sigma/mdecrevoisier/windows-bits/'win-os-BITS abuse for payload download (command).yaml'
  ruledex show "win-os-BITS abuse for payload download (command)" --json`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			cat, err := openDerived()
			if err != nil {
				return err
			}
			defer cat.Close()
			ctx := cmd.Context()
			useStoredDataDir(ctx, cat)
			r, err := cat.RuleByRef(ctx, args[0])
			var le *catalog.LookupError
			if errors.As(err, &le) {
				return withCode(exitNoMatch, err)
			}
			if err != nil {
				return err
			}
			events, err := eventCatalog()
			if err != nil {
				return err
			}
			var coverage []winevent.CoverageRow
			var absent []winevent.AbsentField
			if events != nil {
				coverage = events.Coverage(r)
				absent = events.AbsentFields(r)
			}
			if asJSON {
				out := struct {
					*rule.Rule
					URL           string                 `json:"url"`
					EventCoverage []winevent.CoverageRow `json:"event_coverage,omitempty"`
					AbsentFields  []winevent.AbsentField `json:"absent_fields,omitempty"`
				}{r, page.RuleURL(r.Language, r.ID), coverage, absent}
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				enc.SetEscapeHTML(false)
				return enc.Encode(out)
			}
			in, err := pageInput(ctx, cat, r)
			if err != nil {
				return err
			}
			p := page.BuildRule(r, in)
			p.Translations = translations(r)
			for _, c := range coverage {
				p.Events = append(p.Events, page.EventRow{Provider: c.Provider, EventID: c.EventID, Title: c.Title})
			}
			for _, a := range absent {
				p.AbsentFields = append(p.AbsentFields, page.AbsentField(a))
			}
			if p.Neighbors, err = page.LoadNeighbors(ctx, cat, r); err != nil {
				return err
			}
			return page.WriteText(cmd.OutOrStdout(), p)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the rule's IR as JSON")
	root.AddCommand(cmd)
}

// pageInput gathers what a rule page needs from the catalog: corpus counts and ATT&CK
// names (from the catalog, else from --data when the catalog was built without it).
func pageInput(ctx context.Context, cat *catalog.Catalog, r *rule.Rule) (page.Input, error) {
	in, err := page.LoadInput(ctx, cat, r)
	if err != nil {
		return in, err
	}
	if len(in.Tactics) == 0 && globals.data != "" {
		m, err := attackMatrix()
		if err != nil {
			return in, err
		}
		a := attackForCatalog(m)
		in.Tactics = a.Tactics
		in.Techniques = a.Techniques
	}
	return in, nil
}
