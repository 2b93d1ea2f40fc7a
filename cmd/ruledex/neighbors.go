package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/derive"
	"github.com/ruledex/ruledex/page"
	"github.com/ruledex/ruledex/rule"
)

// syncNeighbors brings the stored neighbors up to date (see derive.Neighbors), scoped by
// event coverage when the reference data is known.
func syncNeighbors(ctx context.Context, cat *catalog.Catalog) (bool, error) {
	useStoredDataDir(ctx, cat)
	wc, err := eventCatalog()
	if err != nil {
		return false, err
	}
	return derive.Neighbors(ctx, cat, wc)
}

// neighborItem is one neighbor in `ruledex neighbors --json`.
type neighborItem struct {
	ID         string        `json:"id"`
	Title      string        `json:"title"`
	Language   rule.Language `json:"language"`
	URL        string        `json:"url"`
	Basis      string        `json:"basis"`
	Difference string        `json:"difference"`
}

func neighborItems(ns []catalog.Neighbor) []neighborItem {
	out := make([]neighborItem, 0, len(ns))
	for _, n := range ns {
		out = append(out, neighborItem{ID: n.ID, Title: n.Title, Language: n.Language, URL: page.RuleURL(n.Language, n.ID), Basis: n.Basis, Difference: n.Difference})
	}
	return out
}

func init() {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "neighbors RULE [--json]",
		Short: "List rules equivalent to, stricter than or broader than a rule, in any language",
		Long: `neighbors compares a rule's logic with every rule of the catalog, after field
equivalence across languages (Image = NewProcessName = FolderPath = process_path):

  equivalent  same canonical form: the same tests, in any order or spelling
  stricter    matches a subset of this rule's events ("adds 2 filters")
  broader     matches a superset of this rule's events ("drops 1 filter this rule applies")

Relations are proved from the rules' logic, never guessed from similar words: when a
relation cannot be proved (opaque parts, aggregations, different events) none is listed.
With --data, rules are compared only within the concrete events they can match.
Results are computed once per catalog change and stored.

Each relation has a basis: "same-telemetry" (both rules read the same fields of the
same events) or "field-map" (proved through field and telemetry mappings such as
Defender FileName ≈ file name of Image, DeviceProcessEvents ≈ Sysmon 1 / Security
4688; the difference names the mappings used).

RULE is anything 'ruledex show' accepts. JSON: {"equivalent": [...], "stricter": [...],
"broader": [...]} with id, title, language, url, basis and difference per item.`,
		Example: `  ruledex neighbors "New PowerShell Instance Created"
  ruledex neighbors "Alternate PowerShell Hosts Pipe" --json`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			cat, err := openDerived()
			if err != nil {
				return err
			}
			defer cat.Close()
			ctx := cmd.Context()
			r, err := cat.RuleByRef(ctx, args[0])
			var le *catalog.LookupError
			if errors.As(err, &le) {
				return withCode(exitNoMatch, err)
			}
			if err != nil {
				return err
			}
			if _, err := syncNeighbors(ctx, cat); err != nil {
				return err
			}
			ns, err := cat.Neighbors(ctx, r.Language, r.ID)
			if err != nil {
				return err
			}
			if asJSON {
				out := struct {
					ID         string         `json:"id"`
					Title      string         `json:"title"`
					Class      string         `json:"class,omitempty"`
					ClassURL   string         `json:"class_url,omitempty"`
					ClassBasis string         `json:"class_basis,omitempty"`
					Equivalent []neighborItem `json:"equivalent"`
					Stricter   []neighborItem `json:"stricter"`
					Broader    []neighborItem `json:"broader"`
				}{r.ID, r.Title, ns.ClassID, classURL(ns.ClassID), ns.ClassBasis, neighborItems(ns.Equivalent), neighborItems(ns.Stricter), neighborItems(ns.Broader)}
				return writeJSON(cmd.OutOrStdout(), out)
			}
			return writeNeighbors(cmd.OutOrStdout(), r, ns)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	root.AddCommand(cmd)

	var overlapJSON bool
	var largest int
	ocmd := &cobra.Command{
		Use:   "overlap [--json]",
		Short: "Report duplication across the catalog: equivalence classes, cross-source duplicates, stricter/broader chains",
		Long: `overlap summarizes how much the catalog repeats itself: the number of equivalence
classes and their sizes, equivalent rules shared between sources (e.g. SigmaHQ rules that
an mdecrevoisier rule duplicates), classes that span languages, related rule pairs
across languages (JSON: cross_language_relations, each pair once, and by_language_pair,
per pair of languages and basis), and the longest chains of ever stricter rules.`,
		Example: `  ruledex overlap
  ruledex overlap --top 5 --json | jq '.largest_classes'
  ruledex overlap --json | jq '.cross_language_relations, .by_language_pair'`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			cat, err := openDerived()
			if err != nil {
				return err
			}
			defer cat.Close()
			ctx := cmd.Context()
			if _, err := syncNeighbors(ctx, cat); err != nil {
				return err
			}
			rep, err := cat.Overlap(ctx, largest)
			if err != nil {
				return err
			}
			if overlapJSON {
				return writeJSON(cmd.OutOrStdout(), rep)
			}
			return writeOverlap(cmd.OutOrStdout(), rep)
		},
	}
	ocmd.Flags().BoolVar(&overlapJSON, "json", false, "print JSON")
	ocmd.Flags().IntVar(&largest, "top", 10, "how many of the largest classes to list")
	root.AddCommand(ocmd)
}

func classURL(id string) string {
	if id == "" {
		return ""
	}
	return "/rules/eq/" + id + "/"
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func writeNeighbors(w io.Writer, r *rule.Rule, ns *catalog.NeighborSet) error {
	fmt.Fprintf(w, "Neighbors of %s (%s/%s)\n", r.Title, r.Language, r.ID)
	if ns.ClassID != "" {
		fmt.Fprintf(w, "Equivalence class %s: %d rules, %s, %s\n", ns.ClassID, ns.ClassSize, ns.Shape, ns.ClassBasis)
	}
	section := func(name, none string, items []catalog.Neighbor) {
		fmt.Fprintf(w, "\n%s\n\n", name)
		if len(items) == 0 {
			fmt.Fprintf(w, "  %s\n", none)
			return
		}
		tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
		for _, n := range items {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s/%s\n", n.Title, n.Basis, n.Difference, n.Language, n.ID)
		}
		tw.Flush()
	}
	section("Equivalent rules", "none", ns.Equivalent)
	section("Stricter alternatives (match a subset of this rule's events)", "none found", ns.Stricter)
	section("Broader alternatives (match a superset of this rule's events)", "none found", ns.Broader)
	return nil
}

func writeOverlap(w io.Writer, rep *catalog.OverlapReport) error {
	fmt.Fprintf(w, "%d rules in %d equivalence classes; %d classes hold two or more rules, %d span languages\n",
		rep.Rules, rep.Classes, rep.SharedClasses, rep.CrossLanguage)
	fmt.Fprintf(w, "%d stricter/broader pairs; %d related pairs across languages\n", rep.StricterPairs, rep.CrossLanguageRelations)
	if len(rep.ByLanguagePair) > 0 {
		fmt.Fprintln(w, "\nRelated pairs by language pair and basis")
		var keys []string
		for k := range rep.ByLanguagePair {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			m := rep.ByLanguagePair[k]
			fmt.Fprintf(w, "  %-22s same-telemetry %6d  field-map %6d\n", k, m["same-telemetry"], m["field-map"])
		}
	}
	var sizes []int
	for s := range rep.SizeHistogram {
		sizes = append(sizes, s)
	}
	sort.Ints(sizes)
	fmt.Fprintln(w, "\nClass sizes")
	for _, s := range sizes {
		fmt.Fprintf(w, "  %3d rule(s): %d classes\n", s, rep.SizeHistogram[s])
	}
	if len(rep.CrossSource) > 0 {
		fmt.Fprintln(w, "\nEquivalent pairs by source")
		var keys []string
		for k := range rep.CrossSource {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool {
			return rep.CrossSource[keys[i]] > rep.CrossSource[keys[j]] || rep.CrossSource[keys[i]] == rep.CrossSource[keys[j]] && keys[i] < keys[j]
		})
		for _, k := range keys {
			fmt.Fprintf(w, "  %5d  %s\n", rep.CrossSource[k], k)
		}
	}
	if len(rep.LargestClasses) > 0 {
		fmt.Fprintln(w, "\nLargest classes")
		for _, c := range rep.LargestClasses {
			var langs []string
			for l, n := range c.Languages {
				langs = append(langs, fmt.Sprintf("%s %d", l, n))
			}
			sort.Strings(langs)
			fmt.Fprintf(w, "  %s  %d rules (%s)  e.g. %s\n", classURL(c.ID), c.Size, strings.Join(langs, ", "), c.Example)
		}
	}
	if len(rep.LongestChains) > 0 {
		fmt.Fprintln(w, "\nLongest stricter chains (broadest first)")
		for _, ch := range rep.LongestChains {
			var titles []string
			for _, s := range ch {
				titles = append(titles, s.Title)
			}
			fmt.Fprintf(w, "  %s\n", strings.Join(titles, "  ⊃  "))
		}
	}
	if len(rep.MostBroadened) > 0 {
		fmt.Fprintln(w, "\nRules with the most stricter alternatives")
		for _, c := range rep.MostBroadened {
			fmt.Fprintf(w, "  %3d  %s (%s/%s)\n", c.Stricter, c.Title, c.Language, c.ID)
		}
	}
	return nil
}
