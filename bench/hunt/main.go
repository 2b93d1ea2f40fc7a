// Command hunt compares ruledex's hunting engine with github.com/bradleyjkemp/sigma-go
// v0.6.6 on the same rules (every SigmaHQ rule under rules*/windows/) and the same
// events (the SigmaHQ regression EVTX, decoded once), and measures ruledex end to end
// on EVTX files. Run it from the bench module: cd bench && go run ./hunt
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/bradleyjkemp/sigma-go"
	"github.com/bradleyjkemp/sigma-go/evaluator"
	"go.yaml.in/yaml/v3"

	"github.com/ruledex/ruledex/bench/internal/measure"
	"github.com/ruledex/ruledex/engine"
	"github.com/ruledex/ruledex/event"
	"github.com/ruledex/ruledex/internal/corpustest"
	sigmalang "github.com/ruledex/ruledex/lang/sigma"
	"github.com/ruledex/ruledex/logread"
	"github.com/ruledex/ruledex/rule"
	"github.com/ruledex/ruledex/winevent"
)

var (
	flagCorpus   = flag.String("corpus", "", "corpus root (default: ../shared/corpus beside the repository, or $RULEDEX_CORPUS)")
	flagRuledex  = flag.Duration("ruledex-time", 3*time.Second, "time budget for each ruledex throughput measurement")
	flagSigmaGo  = flag.Duration("sigmago-time", 15*time.Second, "time budget for each sigma-go throughput measurement")
	flagNoSigma  = flag.Bool("skip-sigmago", false, "measure ruledex only")
	flagVerbose  = flag.Bool("v", false, "list regression failures and skip reasons")
	flagProfile  = flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flagMaxCores = flag.Int("cores", 2, "parallel measurement uses this many goroutines and GOMAXPROCS")
)

func main() {
	flag.Parse()
	root := *flagCorpus
	if root == "" {
		var err error
		if root, err = corpustest.Find(); err != nil {
			fail("corpus not found (-corpus or RULEDEX_CORPUS): %v", err)
		}
	}
	fmt.Printf("ruledex hunt benchmark  (%s, GOMAXPROCS max %d, %d CPUs)\n", runtime.Version(), *flagMaxCores, runtime.NumCPU())
	fmt.Printf("corpus: %s\nload average: %s\n\n", root, measure.LoadAvg())
	if *flagProfile != "" {
		f, err := os.Create(*flagProfile)
		if err != nil {
			fail("%v", err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}

	ruleFiles := windowsRuleFiles(root)
	cases := regressionCases(root)
	extra := caseRulesOutside(root, ruleFiles, cases)
	ruleFiles = append(ruleFiles, extra...)
	evs, caseEvents := decodeCases(cases)
	fmt.Printf("rule files: %d (sigmahq/rules*/windows/**, plus %d regression-case rules kept elsewhere)\n", len(ruleFiles), len(extra))
	fmt.Printf("regression: %d cases, %d events decoded once\n\n", len(cases), len(evs))

	var res results
	res.events = len(evs)
	runRuledex(root, ruleFiles, cases, evs, caseEvents, &res)
	if !*flagNoSigma {
		runSigmaGo(root, ruleFiles, cases, evs, caseEvents, &res)
	}
	res.print()
}

type results struct {
	events int

	rdLoaded, rdSkipped      int
	rdCompile                time.Duration
	rdHeap                   uint64
	rd1, rdN                 rate    // events
	rdAllocs, rdQuietAllocs  float64 // per event
	rdQuiet                  int
	rdPass, rdCases          int
	rdRead, rdEVTX1, rdEVTXN throughput
	avgRecord                float64 // bytes per EVTX record in the samples
	rdWarm                   time.Duration
	rdHWM                    uint64

	sgLoaded, sgFailed int
	sgHeap             uint64
	sg1, sgN           rate
	sgAllocs, sgBytes  float64
	sgPass, sgCases    int
	sgHWM              uint64
	sgDone             bool
}

// rate is work done over wall-clock time and over the process's CPU time.
type rate struct {
	n         float64
	wall, cpu time.Duration
}

func (r rate) perWall() float64 { return r.n / r.wall.Seconds() }
func (r rate) perCPU() float64 {
	if r.cpu <= 0 {
		return 0
	}
	return r.n / r.cpu.Seconds()
}

type throughput struct {
	bytes, records int64
	elapsed, cpu   time.Duration
}

func (t throughput) mbps() float64    { return float64(t.bytes) / 1e6 / t.elapsed.Seconds() }
func (t throughput) rps() float64     { return float64(t.records) / t.elapsed.Seconds() }
func (t throughput) mbpsCPU() float64 { return float64(t.bytes) / 1e6 / t.cpu.Seconds() }

// ---- inputs ----

func windowsRuleFiles(root string) []string {
	dirs, _ := filepath.Glob(filepath.Join(root, "sigma", "sigmahq", "rules*", "windows"))
	var out []string
	for _, d := range dirs {
		filepath.WalkDir(d, func(p string, de os.DirEntry, err error) error {
			if err == nil && !de.IsDir() && (strings.HasSuffix(p, ".yml") || strings.HasSuffix(p, ".yaml")) {
				out = append(out, p)
			}
			return nil
		})
	}
	sort.Strings(out)
	if len(out) == 0 {
		fail("no Windows SigmaHQ rules under %s", root)
	}
	return out
}

// caseRulesOutside finds the rule files of regression cases whose rule is not among
// files (SigmaHQ keeps emerging-threat rules by year, not under windows/), so that the
// pass rate measures the engines rather than the rule selection.
func caseRulesOutside(root string, files []string, cases []regressionCase) []string {
	want := map[string]bool{}
	for _, c := range cases {
		want[c.ruleID] = true
	}
	ruleID := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			return ""
		}
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "id:"); ok {
				return strings.Trim(strings.TrimSpace(rest), `"'`)
			}
		}
		return ""
	}
	for _, f := range files {
		delete(want, ruleID(f))
	}
	var out []string
	if len(want) == 0 {
		return out
	}
	filepath.WalkDir(filepath.Join(root, "sigma", "sigmahq"), func(p string, de os.DirEntry, err error) error {
		if err == nil && !de.IsDir() && strings.HasSuffix(p, ".yml") && want[ruleID(p)] {
			out = append(out, p)
			delete(want, ruleID(p))
		}
		return nil
	})
	sort.Strings(out)
	return out
}

type regressionCase struct {
	ruleID     string
	evtx       string
	matchCount int
}

func regressionCases(root string) []regressionCase {
	var out []regressionCase
	filepath.WalkDir(filepath.Join(root, "regression", "regression_data"), func(p string, de os.DirEntry, err error) error {
		if err != nil || de.IsDir() || de.Name() != "info.yml" {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		var info struct {
			Meta []struct {
				ID string `yaml:"id"`
			} `yaml:"rule_metadata"`
			Tests []struct {
				Type       string `yaml:"type"`
				Path       string `yaml:"path"`
				MatchCount int    `yaml:"match_count"`
			} `yaml:"regression_tests_info"`
		}
		if yaml.Unmarshal(data, &info) != nil || len(info.Meta) == 0 {
			fmt.Fprintf(os.Stderr, "warning: %s: unreadable info.yml\n", p)
			return nil
		}
		for _, t := range info.Tests {
			if t.Type == "evtx" {
				out = append(out, regressionCase{ruleID: info.Meta[0].ID, evtx: filepath.Join(root, "regression", t.Path), matchCount: t.MatchCount})
			}
		}
		return nil
	})
	return out
}

// decodeCases reads each case's EVTX once, copying the events (readers reuse theirs).
func decodeCases(cases []regressionCase) ([]event.Event, [][]int) {
	var evs []event.Event
	idx := make([][]int, len(cases))
	for i, c := range cases {
		r, err := logread.Open(c.evtx)
		if err != nil {
			fmt.Fprintf(os.Stderr, "warning: %v\n", err)
			continue
		}
		var ev event.Event
		for {
			err := r.Next(&ev)
			if err == io.EOF {
				break
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "warning: %v\n", err)
				continue
			}
			cp := event.Event{File: ev.File, Offset: ev.Offset, Fields: make([]event.Field, len(ev.Fields))}
			for k, f := range ev.Fields {
				cp.Fields[k] = event.Field{Name: strings.Clone(f.Name), Value: strings.Clone(f.Value)}
			}
			idx[i] = append(idx[i], len(evs))
			evs = append(evs, cp)
		}
		r.Close()
	}
	return evs, idx
}

// ---- ruledex ----

func runRuledex(root string, files []string, cases []regressionCase, evs []event.Event, caseEvents [][]int, res *results) {
	fmt.Println("== ruledex ==")
	heap0 := measure.LiveHeap()
	t0 := time.Now()
	var rules []*rule.Rule
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			fail("%v", err)
		}
		rel, _ := filepath.Rel(filepath.Join(root, "sigma", "sigmahq"), p)
		rs, _ := sigmalang.Parser{}.Parse(rule.Source{Repo: "SigmaHQ/sigma", Path: filepath.ToSlash(rel)}, data)
		rules = append(rules, rs...)
	}
	cat, err := winevent.Load(filepath.Join(root, "events"))
	if err != nil {
		fail("event catalog: %v", err)
	}
	m, skipped := engine.Compile(rules, engine.Options{Router: engine.CatalogRouter{Catalog: cat}})
	res.rdCompile = time.Since(t0)
	res.rdLoaded = len(m.Rules())
	res.rdSkipped = len(skipped)
	runtime.KeepAlive(rules)
	res.rdHeap = measure.Since(heap0)
	fmt.Printf("rules: %d parsed, %d compiled, %d skipped; parse+compile %v; heap %s\n",
		len(rules), res.rdLoaded, res.rdSkipped, res.rdCompile.Round(time.Millisecond), mib(res.rdHeap))
	if *flagVerbose {
		reasons := map[string]int{}
		for _, s := range skipped {
			reasons[s.Reason]++
		}
		printCounts("  skipped", reasons)
	}

	// Regression: does the case's rule fire on its events (at least match_count times)?
	var out []engine.Match
	for i, c := range cases {
		if len(caseEvents[i]) == 0 {
			continue
		}
		res.rdCases++
		n := 0
		for _, k := range caseEvents[i] {
			out = m.Match(&evs[k], out[:0])
			for _, mt := range out {
				if mt.Rule.ID == c.ruleID {
					n++
					break
				}
			}
		}
		if n > 0 && n >= c.matchCount {
			res.rdPass++
		} else if *flagVerbose {
			fmt.Printf("  regression FAIL %s: %d matches, want %d (%s)\n", c.ruleID, n, max(1, c.matchCount), c.evtx)
		}
	}
	fmt.Printf("regression: %d/%d cases fire\n", res.rdPass, res.rdCases)

	var quiet []event.Event
	for i := range evs {
		if len(m.Match(&evs[i], out[:0])) == 0 {
			quiet = append(quiet, evs[i])
		}
	}
	res.rdQuiet = len(quiet)

	match := func(ev *event.Event, st any) any {
		o, _ := st.([]engine.Match)
		return m.Match(ev, o[:0])
	}
	res.rd1, res.rdAllocs = measureRuledex(evs, 1, *flagRuledex, match)
	res.rdN, _ = measureRuledex(evs, *flagMaxCores, *flagRuledex, match)
	if len(quiet) > 0 {
		_, res.rdQuietAllocs = measureRuledex(quiet, 1, *flagRuledex/3, match)
	}
	fmt.Printf("match: %.0f events/s on 1 core (%.0f per CPU-second), %.0f events/s on %d; %.2f allocs/event (%.2f on the %d events no rule matches)\n",
		res.rd1.perWall(), res.rd1.perCPU(), res.rdN.perWall(), *flagMaxCores, res.rdAllocs, res.rdQuietAllocs, len(quiet))

	// End to end: read and match EVTX files (regression and mdecrevoisier samples).
	var evtx []string
	for _, c := range cases {
		evtx = append(evtx, c.evtx)
	}
	more, _ := logread.Files(filepath.Join(root, "evtx"))
	evtx = append(evtx, more...)
	recBytes, recs := recordBytes(evtx)
	res.avgRecord = float64(recBytes) / float64(max(1, recs))
	fmt.Printf("EVTX samples: %d records, %.0f bytes per record on average, %.1f records per 64 KiB chunk (dense logs hold ~%.0f)\n",
		recs, res.avgRecord, float64(recs)/float64(max(1, chunksIn(evtx))), 65024/res.avgRecord)
	// The engine builds some per-route state on first sight of a channel and event ID;
	// pay it outside the timings and report it.
	t0 = time.Now()
	endToEnd(m, evtx, 1, 0)
	res.rdWarm = time.Since(t0)
	fmt.Printf("warm-up pass over the EVTX samples (first sight of each channel/event ID): %v\n", res.rdWarm.Round(time.Millisecond))
	// What the rules find in corpus/evtx (the mdecrevoisier samples), outside the
	// timings: few matches, each checked by hand in hunt.TestMdecrevoisierSamples.
	var sampleRecs, sampleMatches int64
	logread.Scan(more, 1, func(_ int, ev *event.Event) {
		sampleRecs++
		sampleMatches += int64(len(m.Match(ev, nil)))
	}, nil)
	fmt.Printf("corpus/evtx samples: %d files, %d records, %d matches\n", len(more), sampleRecs, sampleMatches)
	rd := endToEnd(nil, evtx, 1, *flagRuledex)
	fmt.Printf("EVTX read only (%d files): %.0f MB/s (%.0f per CPU-second), %.0f records/s on 1 core\n",
		len(evtx), rd.mbps(), rd.mbpsCPU(), rd.rps())
	res.rdRead = rd
	res.rdEVTX1 = endToEnd(m, evtx, 1, *flagRuledex)
	res.rdEVTXN = endToEnd(m, evtx, *flagMaxCores, *flagRuledex)
	fmt.Printf("EVTX end to end (%d files): %.0f MB/s (%.0f per CPU-second), %.0f records/s on 1 core; %.0f MB/s, %.0f records/s on %d\n",
		len(evtx), res.rdEVTX1.mbps(), res.rdEVTX1.mbpsCPU(), res.rdEVTX1.rps(), res.rdEVTXN.mbps(), res.rdEVTXN.rps(), *flagMaxCores)
	res.rdHWM = measure.PeakRSS()
	fmt.Printf("peak RSS so far (VmHWM): %s\n\n", mib(res.rdHWM))
	runtime.KeepAlive(m)
}

// endToEnd reads and matches (with m nil: only reads) files with logread.Scan on
// `workers` goroutines until budget has passed, and returns the bytes and records
// processed.
func endToEnd(m *engine.Matcher, files []string, workers int, budget time.Duration) throughput {
	var size int64
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			size += st.Size()
		}
	}
	prev := runtime.GOMAXPROCS(workers)
	defer runtime.GOMAXPROCS(prev)
	var t throughput
	start, cpu0 := time.Now(), measure.CPUTime()
	outs := make([][]engine.Match, workers)
	for time.Since(start) < budget || t.bytes == 0 {
		var records atomic.Int64
		logread.Scan(files, workers, func(w int, ev *event.Event) {
			if m != nil {
				outs[w] = m.Match(ev, outs[w][:0])
			}
			records.Add(1)
		}, nil)
		t.bytes += size
		t.records += records.Load()
	}
	t.elapsed = time.Since(start)
	t.cpu = measure.CPUTime() - cpu0
	return t
}

// recordBytes sums the sizes of the EVTX records in files (from the record headers)
// so that throughput on these sparse samples (a few records per 64 KiB chunk) can be
// restated for dense logs: records/s times bytes per record.
func recordBytes(files []string) (total, n int64) {
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil || len(b) < 4096 {
			continue
		}
		for c := 4096; c+0x10000 <= len(b); c += 0x10000 {
			for off := c + 512; off+24 <= c+0x10000; {
				if string(b[off:off+4]) != "**\x00\x00" {
					break
				}
				size := int(binary.LittleEndian.Uint32(b[off+4:]))
				if size < 28 || off+size > c+0x10000 {
					break
				}
				total += int64(size)
				n++
				off += size
			}
		}
	}
	return total, n
}

func chunksIn(files []string) int {
	n := 0
	for _, f := range files {
		if st, err := os.Stat(f); err == nil && st.Size() > 4096 {
			n += int((st.Size() - 4096 + 0xffff) / 0x10000)
		}
	}
	return n
}

// measureRate runs worker on `workers` goroutines at GOMAXPROCS workers until the
// budget is spent; each worker returns how many events it evaluated. It reports the
// rate and the allocations and bytes allocated per event, for both engines alike.
func measureRate(workers int, budget time.Duration, worker func(w int, deadline time.Time) int64) (rate, float64, float64) {
	prev := runtime.GOMAXPROCS(workers)
	defer runtime.GOMAXPROCS(prev)
	runtime.GC()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	var total atomic.Int64
	deadline := time.Now().Add(budget)
	start, cpu0 := time.Now(), measure.CPUTime()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			total.Add(worker(w, deadline))
		}(w)
	}
	wg.Wait()
	r := rate{n: float64(total.Load()), wall: time.Since(start), cpu: measure.CPUTime() - cpu0}
	runtime.ReadMemStats(&ms1)
	return r, float64(ms1.Mallocs-ms0.Mallocs) / r.n, float64(ms1.TotalAlloc-ms0.TotalAlloc) / r.n
}

// measureRuledex runs fn over evs round-robin, returning events/s and allocations per event.
func measureRuledex(evs []event.Event, workers int, budget time.Duration, fn func(*event.Event, any) any) (rate, float64) {
	r, allocs, _ := measureRate(workers, budget, func(w int, deadline time.Time) int64 {
		var st any
		i := w * 7919
		n := int64(0)
		for {
			// Check the clock every few events only: ruledex's events take microseconds.
			for k := 0; k < 16; k++ {
				st = fn(&evs[i%len(evs)], st)
				i++
				n++
			}
			if time.Now().After(deadline) {
				return n
			}
		}
	})
	return r, allocs
}

// ---- sigma-go ----

func runSigmaGo(root string, files []string, cases []regressionCase, evs []event.Event, caseEvents [][]int, res *results) {
	fmt.Println("== sigma-go v0.6.6 ==")
	heap0 := measure.LiveHeap()
	var rules []sigma.Rule
	reasons := map[string]int{}
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			fail("%v", err)
		}
		r, err := parseSigmaGo(data)
		if err != nil {
			res.sgFailed++
			msg := err.Error()
			if i := strings.IndexAny(msg, "\n"); i > 0 {
				msg = msg[:i]
			}
			if len(msg) > 90 {
				msg = msg[:90]
			}
			reasons[msg]++
			continue
		}
		rules = append(rules, r)
	}
	res.sgLoaded = len(rules)
	evals := make([]*evaluator.RuleEvaluator, len(rules))
	byID := map[string]*evaluator.RuleEvaluator{}
	for i, r := range rules {
		evals[i] = evaluator.ForRule(r)
		byID[r.ID] = evals[i]
	}
	res.sgHeap = measure.Since(heap0)
	fmt.Printf("rules: %d loaded, %d rejected by its parser; heap %s\n", res.sgLoaded, res.sgFailed, mib(res.sgHeap))
	if *flagVerbose {
		printCounts("  rejected", reasons)
	}

	// sigma-go takes map events; build them once, outside the timings.
	maps := toMaps(evs)

	ctx := context.Background()
	for i, c := range cases {
		if len(caseEvents[i]) == 0 {
			continue
		}
		res.sgCases++
		e, ok := byID[c.ruleID]
		if !ok {
			if *flagVerbose {
				fmt.Printf("  regression FAIL %s: rule not loaded\n", c.ruleID)
			}
			continue
		}
		n := 0
		for _, k := range caseEvents[i] {
			if r, err := e.Matches(ctx, maps[k]); err == nil && r.Match {
				n++
			}
		}
		if n > 0 && n >= c.matchCount {
			res.sgPass++
		} else if *flagVerbose {
			fmt.Printf("  regression FAIL %s: %d matches, want %d\n", c.ruleID, n, max(1, c.matchCount))
		}
	}
	fmt.Printf("regression: %d/%d cases fire\n", res.sgPass, res.sgCases)

	// What it finds in corpus/evtx (the mdecrevoisier samples), every rule on every
	// event, outside the timings. Events keep their own field names: Security 4688's
	// NewProcessName is not the Image that SigmaHQ's process_creation rules test,
	// which ruledex's field renames supply, so its two 4688 matches are not found here.
	var sampleCases []regressionCase
	more, _ := logread.Files(filepath.Join(root, "evtx"))
	for _, f := range more {
		sampleCases = append(sampleCases, regressionCase{evtx: f})
	}
	sampleEvs, _ := decodeCases(sampleCases)
	sampleMatches := 0
	for _, mp := range toMaps(sampleEvs) {
		for _, e := range evals {
			if r, err := e.Matches(ctx, mp); err == nil && r.Match {
				sampleMatches++
			}
		}
	}
	fmt.Printf("corpus/evtx samples: %d files, %d records, %d matches\n", len(more), len(sampleEvs), sampleMatches)

	// Evaluate every loaded rule on each event, as an embedder without its own index
	// would (sigma-go has no log-source routing without a config).
	matchAll := func(k int) {
		for _, e := range evals {
			e.Matches(ctx, maps[k])
		}
	}
	res.sg1, res.sgAllocs, res.sgBytes = measureSigmaGo(len(maps), 1, *flagSigmaGo, matchAll)
	res.sgN, _, _ = measureSigmaGo(len(maps), *flagMaxCores, *flagSigmaGo, matchAll)
	fmt.Printf("match: %.1f events/s on 1 core (%.1f per CPU-second), %.1f events/s on %d; %.0f allocs and %s per event\n",
		res.sg1.perWall(), res.sg1.perCPU(), res.sgN.perWall(), *flagMaxCores, res.sgAllocs, mib(uint64(res.sgBytes)))
	res.sgHWM = measure.PeakRSS()
	res.sgDone = true
	fmt.Printf("peak RSS (VmHWM): %s\n\n", mib(res.sgHWM))
	runtime.KeepAlive(evals)
}

// toMaps gives each event as the map sigma-go takes (the first value of a repeated name).
func toMaps(evs []event.Event) []map[string]string {
	maps := make([]map[string]string, len(evs))
	for i := range evs {
		mp := make(map[string]string, len(evs[i].Fields))
		for _, f := range evs[i].Fields {
			if _, dup := mp[f.Name]; !dup {
				mp[f.Name] = f.Value
			}
		}
		maps[i] = mp
	}
	return maps
}

// parseSigmaGo parses a rule with sigma-go, turning its panics into errors.
func parseSigmaGo(data []byte) (r sigma.Rule, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return sigma.ParseRule(data)
}

func measureSigmaGo(nEvents, workers int, budget time.Duration, fn func(int)) (rate, float64, float64) {
	return measureRate(workers, budget, func(w int, deadline time.Time) int64 {
		n := int64(0)
		for i := w * 37; time.Now().Before(deadline); i++ {
			fn(i % nEvents)
			n++
		}
		return n
	})
}

// ---- output ----

func (r *results) print() {
	fmt.Println("== summary ==")
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "\truledex\tsigma-go\truledex/sigma-go\t")
	row := func(name string, a, b float64, prec int) {
		sb, ratio := "-", "-"
		if r.sgDone {
			sb = strconv.FormatFloat(b, 'f', prec, 64)
			if b > 0 {
				ratio = strconv.FormatFloat(a/b, 'f', 0, 64) + "x"
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t\n", name, strconv.FormatFloat(a, 'f', prec, 64), sb, ratio)
	}
	fmt.Fprintf(w, "rules loaded\t%d\t%s\t\t\n", r.rdLoaded, r.sgText(strconv.Itoa(r.sgLoaded)))
	fmt.Fprintf(w, "rules skipped/rejected\t%d\t%s\t\t\n", r.rdSkipped, r.sgText(strconv.Itoa(r.sgFailed)))
	row("events/s, 1 core", r.rd1.perWall(), r.sg1.perWall(), 1)
	row("events per CPU-second, 1 core", r.rd1.perCPU(), r.sg1.perCPU(), 1)
	row(fmt.Sprintf("events/s, %d cores", *flagMaxCores), r.rdN.perWall(), r.sgN.perWall(), 1)
	fmt.Fprintf(w, "allocs/event\t%.2f\t%s\t\t\n", r.rdAllocs, r.sgText(fmt.Sprintf("%.0f", r.sgAllocs)))
	fmt.Fprintf(w, "allocs/non-matching event\t%.2f\t\t\t\n", r.rdQuietAllocs)
	fmt.Fprintf(w, "regression pass\t%d/%d (%.1f%%)\t%s\t\t\n", r.rdPass, r.rdCases, pct(r.rdPass, r.rdCases),
		r.sgText(fmt.Sprintf("%d/%d (%.1f%%)", r.sgPass, r.sgCases, pct(r.sgPass, r.sgCases))))
	fmt.Fprintf(w, "heap of compiled rules\t%s\t%s\t\t\n", mib(r.rdHeap), r.sgText(mib(r.sgHeap)))
	fmt.Fprintf(w, "first EVTX pass (warm-up)\t%v\t\t\t\n", r.rdWarm.Round(time.Millisecond))
	fmt.Fprintf(w, "EVTX read only, 1 core\t%.1f MB/s\t\t\t\n", r.rdRead.mbps())
	fmt.Fprintf(w, "EVTX end to end, 1 core\t%.1f MB/s\t\t\t\n", r.rdEVTX1.mbps())
	fmt.Fprintf(w, "EVTX per CPU-second, 1 core\t%.1f MB\t\t\t\n", r.rdEVTX1.mbpsCPU())
	fmt.Fprintf(w, "EVTX end to end, %d cores\t%.1f MB/s\t\t\t\n", *flagMaxCores, r.rdEVTXN.mbps())
	fmt.Fprintf(w, "EVTX records/s, %d cores\t%.0f\t\t\t\n", *flagMaxCores, r.rdEVTXN.rps())
	fmt.Fprintf(w, "EVTX records per CPU-second\t%.0f\t\t\t\n", float64(r.rdEVTXN.records)/r.rdEVTXN.cpu.Seconds())
	fmt.Fprintf(w, "dense-log equivalent, %d cores\t%.1f MB/s\t\t\t\n", *flagMaxCores, r.rdEVTXN.rps()*r.avgRecord/1e6)
	fmt.Fprintf(w, "dense-log equivalent per CPU-second\t%.1f MB\t\t\t\n", float64(r.rdEVTXN.records)/r.rdEVTXN.cpu.Seconds()*r.avgRecord/1e6)
	fmt.Fprintf(w, "peak RSS (VmHWM)\t%s\t%s\t\t\n", mib(r.rdHWM), r.sgText(mib(r.sgHWM)+" (whole run)"))
	w.Flush()
	if r.sgDone && r.sg1.n > 0 {
		fmt.Printf("\nruledex vs sigma-go, single core: %.0fx wall, %.0fx per CPU-second (target >= 1000x); ruledex on %d cores: %.0f events/s (target >= 50000)\n",
			r.rd1.perWall()/r.sg1.perWall(), r.rd1.perCPU()/r.sg1.perCPU(), *flagMaxCores, r.rdN.perWall())
	}
	fmt.Printf("load average at the end: %s (figures per wall-clock second suffer when it exceeds the cores in use)\n", measure.LoadAvg())
}

func (r *results) sgText(s string) string {
	if !r.sgDone {
		return "-"
	}
	return s
}

func pct(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

func printCounts(prefix string, m map[string]int) {
	type kv struct {
		k string
		n int
	}
	var l []kv
	for k, n := range m {
		l = append(l, kv{k, n})
	}
	sort.Slice(l, func(i, j int) bool { return l[i].n > l[j].n || l[i].n == l[j].n && l[i].k < l[j].k })
	for _, e := range l {
		fmt.Printf("%s %4d  %s\n", prefix, e.n, e.k)
	}
}

func mib(b uint64) string { return measure.MiB(b) }

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "hunt: "+format+"\n", args...)
	os.Exit(1)
}
