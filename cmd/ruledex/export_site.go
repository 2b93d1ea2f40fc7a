package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/ruledex/ruledex/staticsite"
	"github.com/ruledex/ruledex/web"
)

// siteCommand is `ruledex export site DIR`.
func siteCommand() *cobra.Command {
	var baseURL string
	var asJSON, noTranslations, allIndicators bool
	var workers int
	var cpuprof string
	cmd := &cobra.Command{
		Use:   "site DIR [--base-url URL] [--json]",
		Short: "Write the whole wiki as static files (works from any host, path or file://)",
		Long: `site writes every page the wiki has (home, browse by language, source, technique and
the other facets, every rule, equivalence classes, indicator pages, techniques, tactics,
the matrix, Windows event providers and events, the Navigator layer) into DIR as static
files with relative links: copy DIR to any web server, bucket or CDN, or open
DIR/index.html from disk. Pages are rendered by the same templates as ruledex serve,
with the same escaping.

Search and filter combinations are answered in the browser by a small script from a
prebuilt index (DIR/search/index.js); every page reads fine without scripts. The JSON
API is not part of the export.

Indicator pages are written for indicators at least two rules test; a value only
its own rule tests (blank corpus count on the rule page) is shown without a link, unless
--all-indicators.

--base-url is the address the site will be published at: the Navigator layer's
technique links point there (without it the layer has no links to the wiki).`,
		Example: `  ruledex --data ../shared/corpus export site /tmp/ruledex-site --base-url https://rules.example.org --json | jq .pages`,
		Args:    usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if cpuprof != "" {
				f, err := os.Create(cpuprof)
				if err != nil {
					return withCode(exitFailure, fmt.Errorf("--cpuprofile: %w", err))
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return withCode(exitFailure, fmt.Errorf("--cpuprofile: %w", err))
				}
				defer pprof.StopCPUProfile()
			}
			defer tuneGC(exportGCPercent, exportMemoryLimit)()
			cat, err := openDerived()
			if err != nil {
				return err
			}
			defer cat.Close()
			useStoredDataDir(ctx, cat)
			am, err := loadAttack()
			if err != nil {
				return err
			}
			events, err := eventCatalog()
			if err != nil {
				return err
			}
			o := web.Options{Catalog: cat, Attack: am, Events: events, BaseURL: baseURL, NoPrerender: true, Export: true,
				Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
			if !noTranslations {
				o.Translate = translations
			}
			srv, err := web.New(o)
			if err != nil {
				return err
			}
			defer srv.Close()

			paths, err := cat.RulePaths(ctx)
			if err != nil {
				return cat.Plain(err)
			}
			seeds := make([]string, len(paths))
			for i, p := range paths {
				seeds[i] = web.RuleURL(p[0], p[1])
			}
			docs, err := cat.SearchDocs(ctx)
			if err != nil {
				return cat.Plain(err)
			}
			index, err := staticsite.SearchIndex(docs)
			if err != nil {
				return err
			}
			m, err := web.CoverageMatrix(ctx, cat, am, web.CoverageFilter{})
			if err != nil {
				return cat.Plain(err)
			}
			layer, err := json.MarshalIndent(web.NavigatorLayer(m, baseURL), "", "  ")
			if err != nil {
				return err
			}
			so := staticsite.Options{Handler: srv, Dir: args[0], Seeds: seeds, Workers: workers,
				Files: map[string][]byte{staticsite.IndexFile: index, "attack/navigator.json": append(layer, '\n')}}
			if !allIndicators {
				shared, err := cat.SharedIndicatorKeys(ctx, 2)
				if err != nil {
					return cat.Plain(err)
				}
				so.Skip = staticsite.OnlySharedIndicators(shared)
			}
			var bar *progressbar.ProgressBar
			if isTerminal(os.Stderr) {
				so.Progress = func(done, known int) {
					if bar == nil {
						bar = progressbar.NewOptions(known, progressbar.OptionSetWriter(os.Stderr),
							progressbar.OptionSetDescription("export"), progressbar.OptionShowCount(),
							progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
					}
					// Pages are found while crawling: the total grows.
					bar.ChangeMax(known)
					bar.Set(done)
				}
			}
			sum, err := staticsite.Export(ctx, so)
			if bar != nil {
				bar.Finish()
			}
			if err != nil {
				return err
			}
			sum.Searchable = len(docs)
			if asJSON {
				b, err := json.MarshalIndent(sum, "", "  ")
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), string(b))
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %d pages (%d rule pages), %d files, %.1f MB in %.1fs; open %s\n",
					sum.Dir, sum.Pages, sum.RulePages, sum.Files, float64(sum.Bytes)/1e6, sum.Seconds, sum.Dir+string(os.PathSeparator)+"index.html")
			}
			for _, f := range sum.Failed {
				fmt.Fprintln(os.Stderr, "page not rendered:", f)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&baseURL, "base-url", "", "address the site will be published at (for the Navigator layer's links)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the summary as JSON")
	cmd.Flags().BoolVar(&noTranslations, "no-translations", false, "leave the rule pages' \"In other languages\" section out (faster)")
	cmd.Flags().BoolVar(&allIndicators, "all-indicators", false, "also write the pages of indicators only one rule tests (five times as many indicator pages)")
	cmd.Flags().StringVar(&cpuprof, "cpuprofile", "", "write a CPU profile of the export to FILE")
	cmd.Flags().MarkHidden("cpuprofile")
	cmd.Flags().IntVar(&workers, "workers", runtime.GOMAXPROCS(0)*2, "pages rendered in parallel")
	return cmd
}

// exportGCPercent and exportMemoryLimit tune the collector for an export: rendering
// every page allocates tens of GB that die with the page, against a live heap of a
// few hundred MB, so at the default GOGC the collector ran all the time (a third of
// the export's CPU). Collecting at 8x the live heap does a tenth of the work; the
// limit keeps the heap (not SQLite's page caches, which are outside it) well under
// 1.5 GB whatever the catalog.
const (
	exportGCPercent   = 800
	exportMemoryLimit = 1 << 30
)
