package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/fieldmap"
	"github.com/ruledex/ruledex/page"
	"github.com/ruledex/ruledex/rule"
	"github.com/ruledex/ruledex/translate"
)

// readBack parses a translation with ruledex's own parsers, as `ingest` would read the
// file: the round trip that proves it.
func readBack(lang rule.Language, name string, data []byte) ([]*rule.Rule, error) {
	for _, p := range parsers() {
		if p.Language() != lang {
			continue
		}
		if !p.Detect(name, data) {
			continue
		}
		rs, diags := p.Parse(rule.Source{Repo: "translation", Path: name}, data)
		for _, d := range diags {
			if d.Severity == rule.Error {
				return nil, errors.New(d.String())
			}
		}
		return rs, nil
	}
	return nil, fmt.Errorf("no %s parser recognizes %s", lang, name)
}

// translations is the rule pages' "In other languages" section: every target,
// verified with readBack.
func translations(r *rule.Rule) []page.Translation {
	return page.Translations(r, translate.All(fieldmap.Default(), r, readBack))
}

func init() {
	var (
		to, schema, file, outDir string
		queryOnly, asJSON, lossy bool
		all                      bool
	)
	cmd := &cobra.Command{
		Use:   "convert (RULE | --file PATH | --all --out DIR) --to LANG [--schema S] [--query-only] [--lossy] [--json]",
		Short: "Translate a rule into another language, proved by reading the result back",
		Long: `convert writes a single-event rule in another language: sigma (SigmaHQ YAML), kql (a
Defender XDR query; --schema sentinel for SecurityEvent), spl (an ESCU-style detection with a
CIM tstats search), eql and esql (an Elastic TOML rule on ECS fields), yaral (a YARA-L 2.0 rule
on UDM fields).

Every translation is parsed back with ruledex's own parser for the target and compared with
the source in canonical form (the same comparison neighbors uses for "equivalent"): a
translation that does not read back as the same rule is never printed. What the target cannot
express (a glob in KQL, a case-sensitive test in an SPL search, a field the target schema has no
column for) fails with the reason; --lossy prints the translation anyway, without what it could
not express, and lists it (such output is marked unverified).

RULE is anything show accepts; --file PATH reads a rule file that is not in the catalog.
--all writes every translatable rule of the catalog under --out DIR, one file each in the
target's usual layout, and prints a summary of what was skipped and why.

Exit status: 0 written, 1 not translatable (the reason is printed), 2 bad command line,
3 RULE names no rule.`,
		Example: `  ruledex convert "BITS payload downloaded via commandline" --to kql
  ruledex convert "BITS payload downloaded via commandline" --to yaral --query-only
  ruledex convert --file ../shared/corpus/sigma/sigmahq/rules/windows/process_creation/proc_creation_win_bitsadmin_download.yml --to spl
  ruledex convert --all --to sigma --out /tmp/ruledex-sigma`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return withCode(exitUsage, errors.New("--to LANG is required: sigma, kql, spl, eql, esql or yaral"))
			}
			t, ok := translate.ParseTarget(to)
			if !ok {
				return withCode(exitUsage, fmt.Errorf("--to %q: want one of sigma, kql, spl, eql, esql, yaral", to))
			}
			if _, err := translate.SchemaNames(t, schema); err != nil {
				return withCode(exitUsage, err)
			}
			opts := translate.Options{Schema: schema, Lossy: lossy}
			fm := fieldmap.Default()
			if all {
				if len(args) > 0 || file != "" {
					return withCode(exitUsage, errors.New("--all converts the whole catalog: give no RULE and no --file"))
				}
				if outDir == "" {
					return withCode(exitUsage, errors.New("--all needs --out DIR"))
				}
				return convertAll(cmd, fm, t, opts, outDir, asJSON)
			}
			if (len(args) == 1) == (file != "") {
				return withCode(exitUsage, errors.New("give either RULE or --file PATH"))
			}
			r, err := convertSource(cmd, args, file)
			if err != nil {
				return err
			}
			res, err := translate.Convert(fm, r, t, opts, readBack)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			switch {
			case asJSON:
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				enc.SetEscapeHTML(false)
				return enc.Encode(res)
			case queryOnly:
				_, err = fmt.Fprintln(w, res.Query)
			default:
				_, err = io.WriteString(w, res.File)
			}
			if err == nil && len(res.Dropped) > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "lossy: %d part(s) left out, not verified:\n  %s\n", len(res.Dropped), strings.Join(res.Dropped, "\n  "))
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&to, "to", "", "target language: sigma, kql, spl, eql, esql or yaral (required)")
	f.StringVar(&schema, "schema", "", "target schema (kql: defender, sentinel; spl: cim; eql/esql: ecs; yaral: udm; sigma: sigmahq)")
	f.StringVar(&file, "file", "", "read the rule from this file instead of the catalog")
	f.StringVar(&outDir, "out", "", "with --all: the folder to write translations into")
	f.BoolVar(&all, "all", false, "convert every translatable rule of the catalog (with --out)")
	f.BoolVar(&queryOnly, "query-only", false, "print only the query, not the whole rule file")
	f.BoolVar(&asJSON, "json", false, "print the translation as JSON (file, query, schema, assumptions)")
	f.BoolVar(&lossy, "lossy", false, "translate anyway, leaving out what the target cannot express (listed; unverified)")
	root.AddCommand(cmd)
}

// convertSource finds the rule to translate: from the catalog, or parsed from --file.
func convertSource(cmd *cobra.Command, args []string, file string) (*rule.Rule, error) {
	if file == "" {
		cat, err := openCatalog(true)
		if err != nil {
			return nil, err
		}
		defer cat.Close()
		r, err := cat.RuleByRef(cmd.Context(), args[0])
		var le *catalog.LookupError
		if errors.As(err, &le) {
			return nil, withCode(exitNoMatch, err)
		}
		return r, err
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	name := filepath.Base(file)
	for _, p := range parsers() {
		if !p.Detect(name, data) {
			continue
		}
		rs, diags := p.Parse(rule.Source{Repo: filepath.Dir(file), Path: name}, data)
		for _, d := range diags {
			if d.Severity == rule.Error {
				return nil, fmt.Errorf("%s: %s", file, d.String())
			}
		}
		switch len(rs) {
		case 0:
			return nil, fmt.Errorf("%s: no rule in the file", file)
		case 1:
			return rs[0], nil
		}
		var titles []string
		for _, r := range rs {
			titles = append(titles, fmt.Sprintf("%q (%s)", r.Title, r.ID))
		}
		return nil, withCode(exitUsage, fmt.Errorf("%s holds %d rules; convert one from the catalog by id: %s", file, len(rs), strings.Join(titles, ", ")))
	}
	return nil, fmt.Errorf("%s: not a rule file ruledex reads (Sigma, KQL, SPL, Elastic or YARA-L)", file)
}

// convertSummary is what --all reports.
type convertSummary struct {
	Target     string         `json:"target"`
	Rules      int            `json:"rules"`
	Written    int            `json:"written"`
	Skipped    int            `json:"skipped"`
	Reasons    map[string]int `json:"skipped_by_reason"`
	ByLanguage map[string]int `json:"written_by_language"`
	Out        string         `json:"out"`
}

func convertAll(cmd *cobra.Command, fm *fieldmap.Map, t translate.Target, opts translate.Options, outDir string, asJSON bool) error {
	cat, err := openCatalog(true)
	if err != nil {
		return err
	}
	defer cat.Close()
	rules, err := cat.AllRules(cmd.Context())
	if err != nil {
		return err
	}
	if len(rules) == 0 {
		return errors.New("the catalog holds no rules: run `ruledex ingest PATH...` first")
	}
	sum := convertSummary{Target: string(t), Rules: len(rules), Reasons: map[string]int{}, ByLanguage: map[string]int{}, Out: outDir}
	for _, r := range rules {
		if err := cmd.Context().Err(); err != nil {
			return err
		}
		res, err := translate.Convert(fm, r, t, opts, readBack)
		if err != nil {
			sum.Skipped++
			sum.Reasons[translate.ReasonClass(err)]++
			continue
		}
		dir := filepath.Join(outDir, string(r.Language))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		name := translate.FileName(r, res)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(res.File), 0o644); err != nil {
			return err
		}
		sum.Written++
		sum.ByLanguage[string(r.Language)]++
	}
	w := cmd.OutOrStdout()
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(sum)
	}
	fmt.Fprintf(w, "%d of %d rules written as %s under %s\n", sum.Written, sum.Rules, t.Display(), outDir)
	langs := make([]string, 0, len(sum.ByLanguage))
	for l := range sum.ByLanguage {
		langs = append(langs, l)
	}
	sort.Strings(langs)
	for _, l := range langs {
		fmt.Fprintf(w, "  from %-8s %6d\n", l, sum.ByLanguage[l])
	}
	fmt.Fprintf(w, "%d skipped:\n", sum.Skipped)
	type kv struct {
		k string
		v int
	}
	var rs []kv
	for k, v := range sum.Reasons {
		rs = append(rs, kv{k, v})
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].v > rs[j].v || rs[i].v == rs[j].v && rs[i].k < rs[j].k })
	for _, x := range rs {
		fmt.Fprintf(w, "  %6d  %s\n", x.v, x.k)
	}
	return nil
}
