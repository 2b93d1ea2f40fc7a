package main

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ruledex/ruledex/engine"
	"github.com/ruledex/ruledex/event"
	"github.com/ruledex/ruledex/lang/sigma"
	"github.com/ruledex/ruledex/logread"
	"github.com/ruledex/ruledex/rule"
)

type huntOptions struct {
	rules    []string
	json     bool
	csv      bool
	minLevel string
	workers  int
	progress bool
	// placeholders are NAME=V1,V2 values for the expand modifier.
	placeholders []string
}

func init() {
	var o huntOptions
	cmd := &cobra.Command{
		Use:   "hunt --rules PATH [--rules PATH...] [--json|--csv] [--min-level LEVEL] EVENTS...",
		Short: "Run Sigma rules over Windows event logs (EVTX, JSON, JSON lines, stdin)",
		Long: `hunt runs Sigma rules over event logs and prints one line per match.

EVENTS are .evtx files, evtx_dump-style JSON (objects, arrays), JSON lines of flat
objects ({"EventID":4688,"NewProcessName":...}), folders of those, or - for standard
input. Rules are read straight from Sigma files or folders (--rules, repeatable or
comma-separated); no catalog is needed. With --data (or RULEDEX_DATA) the Windows
logsource map routes each rule to the channels and event IDs its log source means, and
Sysmon process_creation rules also run on Security 4688 through the field renames;
without it every rule runs on every event.

Output per match: time, level, title and rule id, computer, channel and event id, file,
and the fields the rule tested. --json prints one object per line with the keys
rule_id, title, level, time, computer, channel, event_id, file, fields; --csv the same
columns. Correlations and "| count() by" aggregations are evaluated over the events
ordered by time and printed after the matches. A summary goes to stderr.

Exit status: 0 whether or not anything matched; 1 when no rule could be loaded or an
input could not be opened; 2 for a wrong command line. Damaged records inside a file
are reported with their location and hunting continues.`,
		Example: `  ruledex --data ../shared/corpus hunt --rules ../shared/corpus/sigma/sigmahq/rules/windows logs/
  ruledex hunt --rules rules/ --json --min-level high Security.evtx
  cat events.jsonl | ruledex hunt --rules rule.yml -`,
		Args: func(cmd *cobra.Command, args []string) error {
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
			if o.minLevel != "" && levelRank(o.minLevel) < 0 {
				return withCode(exitUsage, fmt.Errorf("--min-level %q: want informational, low, medium, high or critical", o.minLevel))
			}
			return runHunt(cmd.OutOrStdout(), newEscaper(os.Stderr), args, o)
		},
	}
	cmd.Flags().StringArrayVar(&o.rules, "rules", nil, "Sigma rule file or folder (repeatable, or comma-separated)")
	cmd.Flags().BoolVar(&o.json, "json", false, "one JSON object per match")
	cmd.Flags().BoolVar(&o.csv, "csv", false, "CSV with a header row")
	cmd.Flags().StringVar(&o.minLevel, "min-level", "", "only rules of this level or above (informational, low, medium, high, critical)")
	cmd.Flags().StringArrayVar(&o.placeholders, "placeholder", nil,
		"values of a %NAME% placeholder for |expand rules: NAME=V1,V2 (repeatable); rules with unset placeholders are skipped")
	cmd.Flags().IntVar(&o.workers, "workers", runtime.GOMAXPROCS(0), "files read and matched in parallel")
	cmd.Flags().BoolVar(&o.progress, "progress", true, "progress bar on stderr when it is a terminal")
	root.AddCommand(cmd)
}

var levels = []string{"informational", "low", "medium", "high", "critical"}

// levelRank orders Sigma levels; -1 for unknown or empty.
func levelRank(l string) int {
	for i, x := range levels {
		if strings.EqualFold(x, strings.TrimSpace(l)) {
			return i
		}
	}
	return -1
}

// huntSummary is what the stderr summary reports.
type huntSummary struct {
	files, events, matches, alerts int
	readErrors                     int
	openFailures                   int
	rulesLoaded                    int
	skipped                        []string
}

// maxRuleFile is ingest's size limit (ingest.DefaultMaxFileSize): no rule file comes close.
const maxRuleFile = 8 << 20

// loadHuntRules parses every Sigma file under the paths.
func loadHuntRules(paths []string, stderr io.Writer, sum *huntSummary) ([]*rule.Rule, error) {
	var files []string
	for _, arg := range paths {
		for _, p := range strings.Split(arg, ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			st, err := os.Stat(p)
			if err != nil {
				return nil, fmt.Errorf("--rules %s: %w", p, err)
			}
			if !st.IsDir() {
				files = append(files, p)
				continue
			}
			err = filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if d.IsDir() {
					if strings.HasPrefix(d.Name(), ".") && q != p {
						return filepath.SkipDir
					}
					return nil
				}
				switch strings.ToLower(filepath.Ext(q)) {
				case ".yml", ".yaml":
					files = append(files, q)
				}
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("--rules %s: %w", p, err)
			}
		}
	}
	// Parse in parallel, keeping file order so rule order (and output) is stable.
	type parsed struct {
		rules []*rule.Rule
		errs  []string
	}
	res := make([]parsed, len(files))
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(files) {
					return
				}
				f := files[i]
				if st, err := os.Stat(f); err == nil && st.Size() > maxRuleFile {
					res[i].errs = append(res[i].errs, fmt.Sprintf("%s: skipped: larger than %d MiB", f, maxRuleFile>>20))
					continue
				}
				data, err := os.ReadFile(f)
				if err != nil {
					res[i].errs = append(res[i].errs, fmt.Sprintf("%s: %v", f, err))
					continue
				}
				rs, diags := sigma.Parser{}.Parse(rule.Source{Repo: filepath.Dir(f), Path: filepath.ToSlash(f)}, data)
				for _, d := range diags {
					if d.Severity == rule.Error {
						res[i].errs = append(res[i].errs, d.String())
					}
				}
				res[i].rules = rs
			}
		}()
	}
	wg.Wait()
	var rules []*rule.Rule
	for _, p := range res {
		sum.skipped = append(sum.skipped, p.errs...)
		rules = append(rules, p.rules...)
	}
	return rules, nil
}

// filterLevel keeps the rules at or above min, and every rule a kept correlation reads.
func filterLevel(rules []*rule.Rule, min string) []*rule.Rule {
	if min == "" {
		return rules
	}
	lim := levelRank(min)
	need := map[string]bool{}
	for _, r := range rules {
		if r.Correlation != nil && levelRank(r.Severity) >= lim {
			for _, ref := range r.Correlation.Rules {
				need[ref] = true
			}
		}
	}
	var out []*rule.Rule
	for _, r := range rules {
		if levelRank(r.Severity) >= lim || need[r.ID] || (r.Name != "" && need[r.Name]) {
			out = append(out, r)
		}
	}
	return out
}

// huntRecord is one output row: a match or a correlation alert.
type huntRecord struct {
	RuleID   string        `json:"rule_id"`
	Title    string        `json:"title"`
	Level    string        `json:"level"`
	Time     string        `json:"time"`
	Computer string        `json:"computer"`
	Channel  string        `json:"channel"`
	EventID  any           `json:"event_id"`
	File     string        `json:"file"`
	Fields   orderedFields `json:"fields"`
	// via names the alternate log source a match came through (text output only).
	via string
}

// orderedFields marshals as a JSON object keeping the rule's field order.
type orderedFields []event.Field

func (f orderedFields) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	seen := map[string]bool{}
	for _, x := range f {
		if seen[x.Name] {
			continue
		}
		seen[x.Name] = true
		if len(b) > 1 {
			b = append(b, ',')
		}
		k, _ := json.Marshal(x.Name)
		v, _ := json.Marshal(x.Value)
		b = append(append(append(b, k...), ':'), v...)
	}
	return append(b, '}'), nil
}

func (f orderedFields) text() string {
	parts := make([]string, 0, len(f))
	for _, x := range f {
		parts = append(parts, x.Name+"="+oneLine(x.Value))
	}
	return strings.Join(parts, "; ")
}

func eventRecord(m engine.Match, ev *event.Event, file string) huntRecord {
	get := func(n string) string { v, _ := ev.Get(n); return strings.Clone(v) }
	rec := huntRecord{RuleID: m.Rule.ID, Title: m.Rule.Title, Level: m.Rule.Severity, Time: get("TimeCreated"),
		Computer: get("Computer"), Channel: get("Channel"), File: file, Fields: m.Fields, via: m.Via}
	if rec.Time == "" {
		if t, ok := engine.EventTime(ev); ok {
			rec.Time = t.Format(time.RFC3339Nano)
		}
	}
	id := get("EventID")
	if n, err := strconv.Atoi(id); err == nil {
		rec.EventID = n
	} else if id != "" {
		rec.EventID = id
	}
	return rec
}

// corrEvent is a copied event whose matches feed the correlator after the scan.
type corrEvent struct {
	ev      event.Event
	matches []engine.Match
	time    time.Time
	order   int64
}

type fileResult struct {
	idx     int
	records []huntRecord
	corr    []corrEvent
	events  int
	errs    []string
	failed  bool
}

// huntFiles expands the EVENTS arguments into files (folders walked, "-" kept).
func huntFiles(args []string, sum *huntSummary, stderr io.Writer) ([]string, int64) {
	var files []string
	var total int64
	for _, a := range args {
		if a == "-" {
			files = append(files, a)
			continue
		}
		st, err := os.Stat(a)
		if err != nil {
			fmt.Fprintf(stderr, "ruledex hunt: %v\n", err)
			sum.openFailures++
			continue
		}
		if !st.IsDir() {
			files = append(files, a)
			total += st.Size()
			continue
		}
		fs, err := logread.Files(a)
		if err != nil {
			fmt.Fprintf(stderr, "ruledex hunt: %s: %v\n", a, err)
			sum.openFailures++
		}
		for _, f := range fs {
			if st, err := os.Stat(f); err == nil {
				total += st.Size()
			}
			files = append(files, f)
		}
	}
	return files, total
}

// maxConsecutiveErrors stops reading a file that yields nothing but errors.
const maxConsecutiveErrors = 1000

func huntFile(idx int, path string, m *engine.Matcher, co *engine.Correlator, corrRules map[*rule.Rule]bool, events *atomic.Int64) fileResult {
	res := fileResult{idx: idx}
	var r logread.Reader
	var err error
	if path == "-" {
		r = logread.NewJSONReader("-", os.Stdin)
	} else {
		r, err = logread.Open(path)
	}
	if err != nil {
		res.errs = append(res.errs, err.Error())
		res.failed = true
		return res
	}
	defer r.Close()
	var ev event.Event
	var ms []engine.Match
	consecutive := 0
	for seq := int64(0); ; seq++ {
		err := r.Next(&ev)
		if err == io.EOF {
			break
		}
		if err != nil {
			res.errs = append(res.errs, err.Error())
			if consecutive++; consecutive >= maxConsecutiveErrors {
				res.errs = append(res.errs, fmt.Sprintf("%s: giving up after %d errors in a row", path, consecutive))
				break
			}
			continue
		}
		consecutive = 0
		res.events++
		events.Add(1)
		ms = m.Match(&ev, ms[:0])
		if len(ms) == 0 {
			continue
		}
		file := ev.File
		if file == "" {
			file = path
		}
		var forCorr []engine.Match
		for _, x := range ms {
			if corrRules[x.Rule] {
				forCorr = append(forCorr, x)
			}
			if !co.Suppressed(x.Rule) {
				res.records = append(res.records, eventRecord(x, &ev, file))
			}
		}
		if len(forCorr) > 0 {
			t, _ := engine.EventTime(&ev)
			ce := corrEvent{matches: forCorr, time: t, order: int64(idx)<<40 | seq}
			ce.ev.File = file
			for _, f := range ev.Fields {
				ce.ev.Add(strings.Clone(f.Name), strings.Clone(f.Value))
			}
			res.corr = append(res.corr, ce)
		}
	}
	return res
}

func runHunt(stdout, stderr io.Writer, args []string, o huntOptions) error {
	start := time.Now()
	var sum huntSummary
	rules, err := loadHuntRules(o.rules, stderr, &sum)
	if err != nil {
		return err
	}
	rules = filterLevel(rules, o.minLevel)
	var opts engine.Options
	for _, p := range o.placeholders {
		name, vals, ok := strings.Cut(p, "=")
		name = strings.Trim(strings.TrimSpace(name), "%")
		if !ok || name == "" {
			return withCode(exitUsage, fmt.Errorf("--placeholder %q: want NAME=VALUE[,VALUE...]", p))
		}
		if opts.Placeholders == nil {
			opts.Placeholders = map[string][]string{}
		}
		opts.Placeholders[name] = append(opts.Placeholders[name], strings.Split(vals, ",")...)
	}
	wc, err := eventCatalog()
	if err != nil {
		return err
	}
	if wc != nil {
		opts.Router = engine.CatalogRouter{Catalog: wc}
	} else {
		fmt.Fprintln(stderr, "ruledex hunt: no --data: log-source routing is off, every rule runs on every event")
	}
	m, skipped := engine.Compile(rules, opts)
	co, cskipped := engine.NewCorrelator(m)
	skipped = append(skipped, cskipped...)
	for _, s := range skipped {
		sum.skipped = append(sum.skipped, fmt.Sprintf("%s (%s): %s", s.Rule.Source.Path, s.Rule.Title, s.Reason))
	}
	sum.rulesLoaded = len(m.Rules()) + len(m.Correlations()) - len(cskipped)
	if sum.rulesLoaded == 0 {
		printHuntSummary(stderr, &sum, time.Since(start))
		return withCode(exitFailure, errors.New("no rule could be loaded"))
	}
	corrRules := map[*rule.Rule]bool{}
	for _, r := range m.Rules() {
		if co.Suppressed(r) {
			corrRules[r] = true
		}
	}
	// Rules referenced by generating correlations are not suppressed but still feed them.
	for _, r := range m.Correlations() {
		for _, ref := range r.Correlation.Rules {
			for _, b := range m.Rules() {
				if b.ID == ref || (b.Name != "" && b.Name == ref) {
					corrRules[b] = true
				}
			}
		}
	}

	files, totalBytes := huntFiles(args, &sum, stderr)
	sum.files = len(files)
	out := newHuntWriter(stdout, o)

	var bar *progressbar.ProgressBar
	if o.progress && term.IsTerminal(int(os.Stderr.Fd())) && totalBytes > 0 {
		bar = progressbar.NewOptions64(totalBytes, progressbar.OptionSetWriter(os.Stderr),
			progressbar.OptionSetDescription("hunt"), progressbar.OptionShowBytes(true),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
	}
	var events atomic.Int64
	workers := max(1, o.workers)
	jobs := make(chan int)
	results := make(chan fileResult)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				results <- huntFile(i, files[i], m, co, corrRules, &events)
			}
		}()
	}
	go func() {
		for i := range files {
			jobs <- i
		}
		close(jobs)
		wg.Wait()
		close(results)
	}()
	// Print in file order as results arrive, so output does not depend on scheduling.
	pending := map[int]fileResult{}
	next := 0
	var corr []corrEvent
	for res := range results {
		pending[res.idx] = res
		for {
			r, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			if bar != nil && files[r.idx] != "-" {
				if st, err := os.Stat(files[r.idx]); err == nil {
					bar.Add64(st.Size())
				}
				bar.Describe(fmt.Sprintf("hunt: %d events", events.Load()))
			}
			for _, e := range r.errs {
				if bar != nil {
					bar.Clear()
				}
				fmt.Fprintf(stderr, "ruledex hunt: %s\n", e)
			}
			if r.failed {
				sum.openFailures++
			} else {
				sum.readErrors += len(r.errs)
			}
			sum.events += r.events
			for _, rec := range r.records {
				if err := out.write(rec); err != nil {
					return err
				}
			}
			sum.matches += len(r.records)
			corr = append(corr, r.corr...)
		}
	}
	if bar != nil {
		bar.Finish()
	}
	// Correlations run over the matched events in time order (stable: file, record).
	sort.SliceStable(corr, func(i, j int) bool {
		if !corr[i].time.Equal(corr[j].time) {
			return corr[i].time.Before(corr[j].time)
		}
		return corr[i].order < corr[j].order
	})
	var alerts []engine.Alert
	for i := range corr {
		alerts = co.Observe(&corr[i].ev, corr[i].matches, alerts)
	}
	alerts = co.Flush(alerts)
	for _, a := range alerts {
		if o.minLevel != "" && levelRank(a.Rule.Severity) < levelRank(o.minLevel) {
			continue
		}
		if err := out.write(alertRecord(a)); err != nil {
			return err
		}
		sum.alerts++
	}
	if err := out.flush(); err != nil {
		return err
	}
	printHuntSummary(stderr, &sum, time.Since(start))
	if sum.openFailures > 0 {
		return withCode(exitFailure, fmt.Errorf("%d input(s) could not be read", sum.openFailures))
	}
	return nil
}

func alertRecord(a engine.Alert) huntRecord {
	rec := huntRecord{RuleID: a.Rule.ID, Title: a.Rule.Title, Level: a.Rule.Severity, Time: a.Time.Format(time.RFC3339Nano)}
	for _, g := range a.Group {
		rec.Fields = append(rec.Fields, g)
		if strings.EqualFold(g.Name, "Computer") {
			rec.Computer = g.Value
		}
	}
	kind := "count"
	if a.Rule.Correlation != nil {
		kind = a.Rule.Correlation.Type
	}
	rec.Fields = append(rec.Fields, event.Field{Name: kind, Value: strconv.FormatFloat(a.Value, 'g', -1, 64)},
		event.Field{Name: "events", Value: strconv.Itoa(a.Events)},
		event.Field{Name: "first", Value: a.First.Format(time.RFC3339Nano)})
	return rec
}

func printHuntSummary(w io.Writer, s *huntSummary, d time.Duration) {
	fmt.Fprintf(w, "hunt: %d %s, %d %s, %d %s, %d correlation %s in %s\n", s.files, plural(s.files, "file", "files"),
		s.events, plural(s.events, "event", "events"), s.matches, plural(s.matches, "match", "matches"), s.alerts, plural(s.alerts, "alert", "alerts"),
		d.Round(time.Millisecond))
	fmt.Fprintf(w, "rules: %d loaded, %d skipped\n", s.rulesLoaded, len(s.skipped))
	for _, x := range s.skipped {
		fmt.Fprintf(w, "  skipped %s\n", x)
	}
	if s.readErrors > 0 || s.openFailures > 0 {
		fmt.Fprintf(w, "errors: %d damaged records or values, %d inputs not readable\n", s.readErrors, s.openFailures)
	}
}

// huntWriter renders records as text, JSON lines or CSV.
type huntWriter struct {
	o   huntOptions
	bw  *bufio.Writer
	cw  *csv.Writer
	enc *json.Encoder
}

func newHuntWriter(w io.Writer, o huntOptions) *huntWriter {
	h := &huntWriter{o: o, bw: bufio.NewWriterSize(w, 64<<10)}
	switch {
	case o.json:
		h.enc = json.NewEncoder(h.bw)
		h.enc.SetEscapeHTML(false)
	case o.csv:
		h.cw = csv.NewWriter(h.bw)
		h.cw.Write([]string{"rule_id", "title", "level", "time", "computer", "channel", "event_id", "file", "fields"})
	}
	return h
}

func (h *huntWriter) write(r huntRecord) error {
	eid := ""
	if r.EventID != nil {
		eid = fmt.Sprint(r.EventID)
	}
	switch {
	case h.enc != nil:
		if r.Fields == nil {
			r.Fields = orderedFields{}
		}
		return h.enc.Encode(r)
	case h.cw != nil:
		return h.cw.Write([]string{r.RuleID, r.Title, r.Level, r.Time, r.Computer, r.Channel, eid, r.File, r.Fields.text()})
	}
	where := r.Channel
	if eid != "" {
		where += "/" + eid
	}
	if r.via != "" {
		where += " [native-audit route]"
	}
	_, err := fmt.Fprintf(h.bw, "%s  %-8s  %s [%s]\n    %s  %s  %s\n    %s\n", r.Time, r.Level, oneLine(r.Title), r.RuleID,
		oneLine(r.Computer), where, r.File, r.Fields.text())
	return err
}

func (h *huntWriter) flush() error {
	if h.cw != nil {
		h.cw.Flush()
		if err := h.cw.Error(); err != nil {
			return err
		}
	}
	return h.bw.Flush()
}
