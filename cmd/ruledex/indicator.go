package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/fieldmap"
	"github.com/ruledex/ruledex/page"
	"github.com/ruledex/ruledex/rule"
)

// indicatorResult is the --json shape.
type indicatorResult struct {
	Field      string         `json:"field"`
	Canonical  string         `json:"canonical"`
	Kind       rule.Kind      `json:"kind"`
	Value      string         `json:"value"`
	Transforms []string       `json:"transforms,omitempty"`
	Key        string         `json:"key"`
	Total      int            `json:"total"`       // rules testing it (positive tests)
	ByLanguage map[string]int `json:"by_language"` // the same, per language
	Excluded   int            `json:"excluded"`    // rules excluding it (in a negated stage)
	Rules      []indicatorUse `json:"rules"`
	// Suggestions, when no rule has the indicator: existing keys of the same field
	// whose value contains the one asked for.
	Suggestions []catalog.NearIndicator `json:"suggestions,omitempty"`
}

type indicatorUse struct {
	Language rule.Language `json:"language"`
	ID       string        `json:"id"`
	Title    string        `json:"title"`
	URL      string        `json:"url"`
	Repo     string        `json:"repo,omitempty"`
	Path     string        `json:"path,omitempty"`
	Field    string        `json:"field"`
	Kind     rule.Kind     `json:"kind"`
	Value    string        `json:"value"`
	Negated  bool          `json:"negated,omitempty"`
}

func init() {
	var asJSON bool
	var transforms []string
	cmd := &cobra.Command{
		Use:   "indicator FIELD KIND VALUE [--json]",
		Short: "List the rules testing one field/kind/value, with counts by language",
		Long: `indicator looks up one indicator across the whole catalog: the rules that test FIELD with
KIND and VALUE, counted by language. Field names count together across languages
(Image, NewProcessName, FolderPath are one field; a file-name field such as FileName eq
x.exe counts as Image ends_with \x.exe), and values are case-folded unless --transform cased.

KIND is one of eq, ne, match, starts_with, ends_with, glob, regex, cidr, in, gt, ge, lt, le,
is_null, is_not_null, keyword, fieldref, term, term_prefix, term_suffix. The spellings
users type are accepted too: Sigma modifiers with or without the bar (contains, endswith,
|endswith, startswith, re, exists), KQL has, hasprefix, hassuffix, and ends-with.

--transform takes cased, windash, base64, base64offset, utf16le, utf16be, utf16, wide,
expand, i, m, s, elem, minute, hour, day, week, month, year.

Rules that exclude the indicator (in a negated stage) are listed after the others and
counted separately. Exit status 3 when no rule has the indicator; the nearest indicators
that exist (same field, value containing VALUE) are suggested.`,
		Example: `  ruledex indicator NewProcessName ends_with '\bitsadmin.exe'
  ruledex indicator Image endswith '\bitsadmin.exe' --json | jq .by_language
  ruledex indicator Image '|endswith' '\bitsadmin.exe'
  ruledex indicator CommandLine contains /transfer`,
		Args: usageArgs(cobra.ExactArgs(3)),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, ok := rule.ParseKind(args[1])
			if !ok {
				var ks []string
				for _, k := range rule.Kinds {
					ks = append(ks, string(k))
				}
				return withCode(exitUsage, fmt.Errorf("unknown kind %q; use one of %s", args[1], strings.Join(ks, ", ")))
			}
			for i, t := range transforms {
				transforms[i] = strings.ToLower(strings.TrimSpace(t))
				if !slices.Contains(rule.Transforms, transforms[i]) {
					return withCode(exitUsage, fmt.Errorf("unknown transform %q; use one of %s", t, strings.Join(rule.Transforms, ", ")))
				}
			}
			cat, err := openCatalog(true)
			if err != nil {
				return err
			}
			defer cat.Close()
			field, value := args[0], args[2]
			canon, key := fieldmap.Default().IndicatorKey(nil, field, kind, transforms, value)
			uses, err := cat.RulesByIndicatorKey(cmd.Context(), key, 0)
			if err != nil {
				return err
			}
			res := indicatorResult{Field: field, Canonical: canon, Kind: kind, Value: value, Transforms: transforms, Key: key,
				ByLanguage: map[string]int{}, Rules: []indicatorUse{}}
			seen := map[string]bool{}
			for _, u := range uses {
				res.Rules = append(res.Rules, indicatorUse{Language: u.Language, ID: u.ID, Title: u.Title,
					URL: page.RuleURL(u.Language, u.ID), Repo: u.Repo, Path: u.Path, Field: u.Field, Kind: u.Kind, Value: u.Value, Negated: u.Negated})
				id := string(u.Language) + "/" + u.ID
				if u.Negated {
					res.Excluded++
				} else if !seen[id] {
					seen[id] = true
					res.Total++
					res.ByLanguage[string(u.Language)]++
				}
			}
			if len(uses) == 0 && value != "" {
				// Nothing exact: the nearest keys that exist (a missing backslash, another kind).
				near, err := cat.NearIndicators(cmd.Context(), canon, strings.TrimLeft(value, `\/*`), 5)
				if err != nil {
					return err
				}
				res.Suggestions = near
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				enc.SetEscapeHTML(false)
				if err := enc.Encode(res); err != nil {
					return err
				}
			} else {
				printIndicator(cmd.OutOrStdout(), &res)
			}
			if len(uses) == 0 {
				msg := fmt.Sprintf("no rule tests %s %s %q (canonical field %s)", field, kind, value, canon)
				if len(res.Suggestions) > 0 {
					msg += "; nearest indicators that exist:"
					for _, n := range res.Suggestions {
						tr := ""
						if n.Transforms != "" {
							tr = " (" + n.Transforms + ")"
						}
						msg += fmt.Sprintf("\n  %s %s %s%s — %d %s", n.Field, n.Kind, n.Value, tr, n.Rules, plural(n.Rules, "rule", "rules"))
					}
				}
				return withCode(exitNoMatch, errors.New(msg))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	cmd.Flags().StringSliceVar(&transforms, "transform", nil, "transforms of the test, e.g. cased, windash, base64offset (comma-separated)")
	root.AddCommand(cmd)
}

func printIndicator(w io.Writer, r *indicatorResult) {
	desc := fmt.Sprintf("%s %s %s", r.Field, r.Kind, r.Value)
	if len(r.Transforms) > 0 {
		desc += " (" + strings.Join(r.Transforms, ", ") + ")"
	}
	fmt.Fprintln(w, "Indicator "+desc)
	if !strings.EqualFold(r.Canonical, r.Field) {
		fmt.Fprintf(w, "Field %s counts as %s\n", r.Field, r.Canonical)
	}
	var langs []catalog.LangCount
	for l, n := range r.ByLanguage {
		langs = append(langs, catalog.LangCount{Language: rule.Language(l), Rules: n})
	}
	catalog.SortLangCounts(langs)
	var parts []string
	for _, lc := range langs {
		parts = append(parts, fmt.Sprintf("%s %d", lc.Language, lc.Rules))
	}
	by := ""
	if len(parts) > 0 {
		by = " (" + strings.Join(parts, ", ") + ")"
	}
	fmt.Fprintf(w, "%d rules test it%s; %d exclude it\n", r.Total, by, r.Excluded)
	if len(r.Rules) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "Language\tRule\tAs written\tId")
	for _, u := range r.Rules {
		as := fmt.Sprintf("%s %s %s", u.Field, u.Kind, u.Value)
		if u.Negated {
			as = "excludes: " + as
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Language, u.Title, as, u.ID)
	}
	tw.Flush()
}
