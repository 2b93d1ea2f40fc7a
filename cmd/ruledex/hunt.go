package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ruledex/ruledex/engine"
	huntpkg "github.com/ruledex/ruledex/hunt"
	"github.com/ruledex/ruledex/ingest"
	"github.com/ruledex/ruledex/internal/hugeheap"
	"github.com/ruledex/ruledex/rule"
	"github.com/ruledex/ruledex/winevent"
)

type huntOptions struct {
	rules    []string
	json     bool
	csv      bool
	minLevel string
	status   []string
	tags     []string
	exclude  []string
	from, to string
	output   string
	summary  string // --json-summary FILE
	timeline string // csv or jsonl
	workers  int
	progress bool
	verbose  bool
	cpuprof  string // --cpuprofile FILE (hidden): where hunt's time goes, start-up included
	noCache  bool
	// placeholders are NAME=V1,V2 values for the expand modifier.
	placeholders []string
	kafka        kafkaOptions // --kafka: hunt.go only routes to huntkafka.go
}

func init() {
	var o huntOptions
	cmd := &cobra.Command{
		Use:   "hunt --rules PATH [--rules PATH...] [--json|--csv] [filters] EVENTS...",
		Short: "Run detection rules over Windows event logs (EVTX, JSON, JSON lines, stdin)",
		Long: `hunt runs detection rules over event logs and prints one line per match as it is found.

EVENTS are .evtx files, evtx_dump-style JSON (objects, arrays), JSON lines of flat
objects ({"EventID":4688,"NewProcessName":...}), folders of those (symbolic links
followed), or - for standard input. Rules are read straight from files or folders
(--rules, repeatable or comma-separated) with every language ruledex parses; rules the
engine cannot run yet are listed as skipped with the reason. The Windows log-source map
is built in: each rule runs only on the channels and event IDs its log source means
(Sysmon process_creation rules also on Security 4688 through the field renames), rules
of another product never run on Windows logs. --data (or RULEDEX_DATA) replaces the
built-in map with the one of a data folder.

Parsed rules are kept in the user cache folder, keyed by each rule file's content and
the ruledex build: the next hunt over unchanged rules starts without parsing them.
--no-cache parses every file and neither reads nor writes the cache.

Output per match: time, level, title and rule id, computer, channel and event id, file,
and the fields the rule tested. --json prints one object per line with the keys
rule_id, title, level, time, computer, channel, event_id, file, fields; --csv the same
columns. Matches stream in input order (within a file, by event time); --timeline csv
or --timeline jsonl instead prints all matches sorted by time at the end. Correlations
and "| count() by" aggregations are evaluated over the events ordered by time and
printed after the matches. A summary (matches per level and per rule, skipped rules,
read problems, and with --data the rules testing fields their Sysmon events never
carry, such as CommandLine on Sysmon 3) goes to stderr; --json-summary FILE also
writes it as JSON.

Exit status: 0 whether or not anything matched; 1 when no rule could be loaded, an
input could not be read, or no event at all was read; 2 for a wrong command line.
Damaged records inside a file are reported with their location and hunting continues;
a path that yields no event gets a warning.`,
		Example: `  ruledex hunt --rules ../shared/corpus/sigma/sigmahq/rules/windows ../shared/corpus/regression/regression_data
  ruledex hunt --rules ../shared/corpus/sigma/mdecrevoisier --json --min-level high ../shared/corpus/evtx
  ruledex hunt --rules ../shared/corpus/sigma/mdecrevoisier --technique T1197 --timeline csv ../shared/corpus/evtx/mdecrevoisier
  ruledex hunt --rules ../shared/corpus/elastic --status production --from 2020-01-01 ../shared/corpus/evtx`,
		Args: func(cmd *cobra.Command, args []string) error {
			if o.kafka.brokers != "" {
				return kafkaArgs(cmd, args)
			}
			if len(args) == 0 {
				return withCode(exitUsage, errors.New("hunt needs EVENTS: .evtx or JSON files, folders, or - for standard input"))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(o.rules) == 0 {
				return withCode(exitUsage, errors.New("hunt needs --rules PATH"))
			}
			if o.json && o.csv {
				return withCode(exitUsage, errors.New("--json and --csv exclude each other"))
			}
			if o.minLevel != "" && huntpkg.LevelRank(o.minLevel) < 0 {
				return withCode(exitUsage, fmt.Errorf("--min-level %q: want informational, low, medium, high or critical", o.minLevel))
			}
			if o.timeline != "" && o.timeline != "csv" && o.timeline != "jsonl" {
				return withCode(exitUsage, fmt.Errorf("--timeline %q: want csv or jsonl", o.timeline))
			}
			if o.kafka.brokers != "" {
				return runHuntKafka(cmd, newEscaper(os.Stderr), o)
			}
			return runHunt(cmd.OutOrStdout(), newEscaper(os.Stderr), args, o)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.rules, "rules", nil, "rule file or folder (repeatable, or comma-separated)")
	f.BoolVar(&o.json, "json", false, "one JSON object per match")
	f.BoolVar(&o.csv, "csv", false, "CSV with a header row")
	f.StringVar(&o.minLevel, "min-level", "", "only rules of this level or above (informational, low, medium, high, critical)")
	f.StringSliceVar(&o.status, "status", nil, "only rules of these statuses (stable, test, experimental, ...; repeatable or comma-separated)")
	f.StringSliceVar(&o.tags, "tag", nil, "only rules with one of these tags, ATT&CK techniques (T1197 includes T1197.001) or tactics")
	f.StringSliceVar(&o.tags, "technique", nil, "same as --tag")
	f.StringArrayVar(&o.exclude, "exclude", nil, "leave out a rule by id or title, or the rules under a path or matching a glob (repeatable)")
	f.StringVar(&o.from, "from", "", "only events at or after this time (RFC 3339, or YYYY-MM-DD[THH:MM:SS] in UTC)")
	f.StringVar(&o.to, "to", "", "only events before this time (same forms as --from)")
	f.StringVarP(&o.output, "output", "o", "", "write matches to FILE instead of standard output")
	f.StringVar(&o.summary, "json-summary", "", "also write the final summary as a JSON object to FILE")
	f.StringVar(&o.timeline, "timeline", "", "print all matches sorted by time at the end, as csv or jsonl")
	f.StringArrayVar(&o.placeholders, "placeholder", nil,
		"values of a %NAME% placeholder for |expand rules: NAME=V1,V2 (repeatable); rules with unset placeholders are skipped")
	f.IntVar(&o.workers, "workers", runtime.GOMAXPROCS(0), "parts (EVTX chunks, JSON-lines batches) decoded and matched in parallel")
	f.BoolVar(&o.progress, "progress", true, "progress on stderr when it is a terminal")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "list every skipped rule and every rule in the summary")
	f.BoolVar(&o.noCache, "no-cache", false, "parse every rule file, without reading or writing the rule cache")
	f.StringVar(&o.cpuprof, "cpuprofile", "", "write a CPU profile of the hunt to FILE")
	f.MarkHidden("cpuprofile")
	addKafkaFlags(cmd, &o.kafka)
	root.AddCommand(cmd)
}

// parseWhen reads a --from/--to time: RFC 3339, else a date or date-time in UTC.
func parseWhen(flag, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, l := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, withCode(exitUsage, fmt.Errorf("%s %q: want RFC 3339 (2021-02-22T23:00:00Z) or YYYY-MM-DD[THH:MM:SS]", flag, s))
}

func huntParsers() []huntpkg.Parser {
	var out []huntpkg.Parser
	for _, p := range parsers() {
		out = append(out, p)
	}
	return out
}

func runHunt(stdout, stderr io.Writer, args []string, o huntOptions) error {
	if o.cpuprof != "" {
		f, err := os.Create(o.cpuprof)
		if err != nil {
			return withCode(exitFailure, fmt.Errorf("--cpuprofile: %w", err))
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return withCode(exitFailure, fmt.Errorf("--cpuprofile: %w", err))
		}
		defer pprof.StopCPUProfile()
	}
	from, err := parseWhen("--from", o.from)
	if err != nil {
		return err
	}
	to, err := parseWhen("--to", o.to)
	if err != nil {
		return err
	}
	opts, err := huntEngineOptions(o)
	if err != nil {
		return err
	}

	start := time.Now()
	defer hugeheap.Keep(5 * time.Millisecond)()
	// Loading and compiling the rules grows the heap from nothing to its working size
	// (60 MB for SigmaHQ's Windows rules), and at the default GOGC the collector ran
	// six times on the way, marking 150 MB: a quarter of start-up's CPU (205 vs 152
	// CPU-ms with GOGC=400, six interleaved pairs). Matching then runs at the default.
	restoreGC := tuneGC(huntStartGCPercent, math.MaxInt64)
	defer func() { restoreGC() }()
	// Inputs are read, and the first parts decoded, while the rules load and compile
	// (a core is idle for much of that).
	inputs, bad := huntpkg.Expand(args, os.Stdin)
	feed := huntpkg.StartFeed(inputs, huntpkg.FeedOptions{AheadBytes: huntpkg.DefaultAheadBytes})
	defer feed.Discard()
	lo := huntpkg.LoadOptions{Parsers: huntParsers(), Filter: huntpkg.Filter{MinLevel: o.minLevel, Status: o.status, Tags: o.tags, Exclude: o.exclude}}
	if !o.noCache {
		lo.CacheDir = huntpkg.DefaultCacheDir()
		lo.Fingerprint = ingest.Fingerprint(parsers()) + ";" + huntpkg.BuildFingerprint()
		lo.CacheError = func(err error) { fmt.Fprintf(stderr, "ruledex hunt: warning: %v\n", err) }
	}
	loaded, err := huntpkg.Load(o.rules, lo)
	if err != nil {
		return withCode(exitFailure, err)
	}
	h := huntpkg.New(loaded.Rules, opts)
	restoreGC()
	restoreGC = func() {}
	for _, e := range bad {
		fmt.Fprintf(stderr, "ruledex hunt: %v\n", e)
	}

	if o.output != "" {
		f, err := os.Create(o.output)
		if err != nil {
			return withCode(exitFailure, fmt.Errorf("-o: %w", err))
		}
		defer f.Close()
		stdout = f
	}
	format := huntpkg.Text
	switch {
	case o.json || o.timeline == "jsonl":
		format = huntpkg.JSON
	case o.csv || o.timeline == "csv":
		format = huntpkg.CSV
	}
	var out huntpkg.Output
	if o.timeline != "" {
		out = huntpkg.NewTimeline(stdout, format)
	} else {
		out = huntpkg.NewOutput(stdout, format)
	}

	var bar *progressbar.ProgressBar
	if o.progress && isTerminal(stderr) {
		bar = progressbar.NewOptions64(-1, progressbar.OptionSetWriter(stderr), progressbar.OptionSetDescription("hunt"),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
	}
	hopts := huntpkg.Options{Workers: o.workers, From: from, To: to, MinLevel: o.minLevel,
		Report: func(err error) {
			if bar != nil {
				bar.Clear()
			}
			fmt.Fprintf(stderr, "ruledex hunt: %v\n", err)
		}}
	if bar != nil {
		hopts.Progress = func(n int64) { bar.Describe(fmt.Sprintf("hunt: %d events", n)) }
	}
	var sum *huntpkg.Summary
	if h.Loaded() > 0 {
		sum, err = h.RunFeed(feed, out, hopts)
		if err != nil {
			return fmt.Errorf("writing matches: %w", err)
		}
	} else {
		sum = &huntpkg.Summary{Files: len(inputs), ByLevel: map[string]int{}}
		for _, s := range h.Skipped() {
			sum.RulesSkipped = append(sum.RulesSkipped, fmt.Sprintf("%s (%s): %s", s.Rule.Source.Path, s.Rule.Title, s.Reason))
		}
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("writing matches: %w", err)
	}
	if bar != nil {
		bar.Finish()
	}
	sum.RulesSkipped = append(loaded.Skipped, sum.RulesSkipped...)
	sum.Filtered = loaded.Filtered
	sum.RuleWarnings = loaded.Warnings
	if cr, ok := opts.Router.(engine.CatalogRouter); ok {
		sum.AbsentFields = absentFieldRules(cr.Catalog, loaded.Rules)
	}
	sum.OpenFailures += len(bad)
	sum.Seconds = time.Since(start).Seconds()
	sum.WriteTable(stderr, o.verbose)
	if o.summary != "" {
		f, err := os.Create(o.summary)
		if err == nil {
			err = sum.WriteJSON(f)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			return withCode(exitFailure, fmt.Errorf("--json-summary: %w", err))
		}
	}
	switch {
	case h.Loaded() == 0:
		return withCode(exitFailure, errors.New("no rule could be loaded"))
	case sum.OpenFailures > 0:
		return withCode(exitFailure, fmt.Errorf("%d input(s) could not be read", sum.OpenFailures))
	case sum.Events == 0:
		return withCode(exitFailure, errors.New("no event was read from the inputs"))
	}
	return nil
}

// absentFieldRules names the rules that test fields none of their Sysmon events carries,
// with the fields: "path (title): CommandLine, ParentImage not in Microsoft-Windows-Sysmon 3".
func absentFieldRules(wc *winevent.Catalog, rules []*rule.Rule) []string {
	var out []string
	for _, r := range rules {
		absent := wc.AbsentFields(r)
		if len(absent) == 0 {
			continue
		}
		var fields []string
		for _, a := range absent {
			fields = append(fields, a.Field)
		}
		out = append(out, fmt.Sprintf("%s (%s): %s not in %s", r.Source.Path, r.Title, strings.Join(fields, ", "),
			strings.Join(absent[0].Events, ", ")))
	}
	return out
}

// huntStartGCPercent is GOGC while the rules load and compile (see runHunt).
const huntStartGCPercent = 400

// huntEngineOptions are the engine options of the hunt flags: placeholders and the
// log-source map.
func huntEngineOptions(o huntOptions) (engine.Options, error) {
	var opts engine.Options
	for _, p := range o.placeholders {
		name, vals, ok := strings.Cut(p, "=")
		name = strings.Trim(strings.TrimSpace(name), "%")
		if !ok || name == "" {
			return opts, withCode(exitUsage, fmt.Errorf("--placeholder %q: want NAME=VALUE[,VALUE...]", p))
		}
		if opts.Placeholders == nil {
			opts.Placeholders = map[string][]string{}
		}
		opts.Placeholders[name] = append(opts.Placeholders[name], strings.Split(vals, ",")...)
	}
	wc, err := eventCatalog()
	if err != nil {
		return opts, err
	}
	if wc == nil {
		if wc, err = winevent.Routing(); err != nil {
			return opts, fmt.Errorf("built-in log-source map: %w", err)
		}
	}
	opts.Router = engine.CatalogRouter{Catalog: wc}
	return opts, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
