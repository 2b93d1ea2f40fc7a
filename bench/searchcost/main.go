// Command searchcost finds which searches of the cold-path load (bench/webload -cold)
// cost the server most. It serves the same distinct searches, once each and one at a
// time, through the web handler in this process (no network), after scoring the common
// words ahead as the server does, and prints the time of each kind of search and the
// slowest ones. With -dump it writes every response body (one line each, in order), so
// two builds can be compared byte for byte on the same catalog.
//
//	go run ./searchcost -db /tmp/me.db -data ../../shared/corpus
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ruledex/ruledex/attack"
	"github.com/ruledex/ruledex/bench/internal/coldset"
	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/web"
	"github.com/ruledex/ruledex/winevent"
)

func main() {
	dbPath := flag.String("db", "", "catalog of the full corpus (read only; required)")
	data := flag.String("data", "../../shared/corpus", "corpus directory (ATT&CK and event data)")
	n := flag.Int("searches", 4700, "distinct searches, as webload -cold")
	top := flag.Int("top", 25, "slowest searches listed")
	dump := flag.String("dump", "", "write every response body here, one line each")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the searches")
	memProfile := flag.String("memprofile", "", "write an allocation profile of the searches (every allocation sampled)")
	clients := flag.Int("c", 1, "searches served at once (the times then include waiting for each other)")
	heapProfile := flag.String("heapprofile", "", "write the live heap once the server is warm (what every GC cycle marks)")
	only := flag.String("shape", "", "only the searches of this shape (as the table names them, e.g. \"1 words\"), to profile one kind")
	flag.Parse()
	if *heapProfile != "" {
		runtime.MemProfileRate = 4096
	}
	if err := run(*dbPath, *data, *n, *top, *dump, *cpuProfile, *memProfile, *heapProfile, *clients, *only); err != nil {
		fmt.Fprintln(os.Stderr, "searchcost:", err)
		os.Exit(1)
	}
}

type timed struct {
	path  string
	shape string
	d     time.Duration
}

func run(dbPath, data string, n, top int, dump, cpuProfile, memProfile, heapProfile string, clients int, only string) error {
	if dbPath == "" {
		return fmt.Errorf("-db is required")
	}
	cat, err := catalog.Open(dbPath)
	if err != nil {
		return err
	}
	defer cat.Close()
	am, err := attack.Load(filepath.Join(data, "attack", "enterprise-attack.json"))
	if err != nil {
		return err
	}
	ev, err := winevent.Load(winevent.Dir(data))
	if err != nil {
		return err
	}
	srv, err := web.New(web.Options{Catalog: cat, Attack: am, Events: ev, NoPrerender: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	defer srv.Close()
	get := func(p string) (*httptest.ResponseRecorder, error) {
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, p, nil))
		if w.Code != http.StatusOK {
			return nil, fmt.Errorf("%s: status %d: %s", p, w.Code, w.Body.String())
		}
		return w, nil
	}
	// The server's state before the first search: the page cache's poller has noted the
	// catalog (its first poll counts as a change), the facet index is built (by the
	// browse requests webload lists rule pages with) and the common words are scored.
	time.Sleep(200 * time.Millisecond)
	if _, err := get("/api/search?per_page=200"); err != nil {
		return err
	}
	t0 := time.Now()
	words, hits, err := srv.WarmSearch(context.Background())
	if err != nil {
		return err
	}
	fmt.Printf("%d words scored and %d hits encoded ahead in %v\n", words, hits, time.Since(t0).Round(time.Millisecond))

	if heapProfile != "" {
		runtime.GC()
		f, err := os.Create(heapProfile)
		if err != nil {
			return err
		}
		err = pprof.Lookup("heap").WriteTo(f, 0)
		f.Close()
		if err != nil {
			return err
		}
	}
	var out io.Writer = io.Discard
	if dump != "" {
		f, err := os.Create(dump)
		if err != nil {
			return err
		}
		defer f.Close()
		out = f
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if memProfile != "" {
		// Every allocation of the searches, none of the warm-up's.
		runtime.GC()
		runtime.MemProfileRate = 1
		defer func() {
			f, err := os.Create(memProfile)
			if err == nil {
				pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	var paths []string
	for i := range n {
		if p := coldset.Search(i); only == "" || shape(p) == only {
			paths = append(paths, p)
		}
	}
	if len(paths) == 0 {
		return fmt.Errorf("no search of shape %q among the first %d", only, n)
	}
	n = len(paths)
	var all []timed
	cpu0 := cpuTime()
	start := time.Now()
	all = make([]timed, n)
	bodies := make([]string, n)
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range max(1, clients) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				p := paths[i]
				t := time.Now()
				w, err := get(p)
				d := time.Since(t)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				if dump != "" {
					bodies[i] = strings.TrimSpace(w.Body.String())
				}
				all[i] = timed{p, shape(p), d}
			}
		}()
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return err
	}
	for i, b := range bodies {
		fmt.Fprintf(out, "%s\t%s\n", all[i].path, b)
	}
	wall, cpu := time.Since(start), cpuTime()-cpu0
	fmt.Printf("%d searches in %v wall, %v CPU (%.3f ms CPU a search)\n", n, wall.Round(time.Millisecond),
		cpu.Round(time.Millisecond), float64(cpu.Microseconds())/1000/float64(n))

	byShape := map[string][]time.Duration{}
	for _, t := range all {
		byShape[t.shape] = append(byShape[t.shape], t.d)
		byShape["(all)"] = append(byShape["(all)"], t.d)
	}
	var shapes []string
	for s := range byShape {
		shapes = append(shapes, s)
	}
	slices.Sort(shapes)
	fmt.Printf("%-28s %6s %9s %9s %9s %9s %9s\n", "shape", "n", "mean", "p50", "p90", "p99", "max")
	for _, s := range shapes {
		ds := byShape[s]
		slices.Sort(ds)
		var sum time.Duration
		for _, d := range ds {
			sum += d
		}
		pct := func(p float64) time.Duration { return ds[min(len(ds)-1, int(p*float64(len(ds))))] }
		fmt.Printf("%-28s %6d %9s %9s %9s %9s %9s\n", s, len(ds), r(sum/time.Duration(len(ds))), r(pct(.5)), r(pct(.9)), r(pct(.99)), r(ds[len(ds)-1]))
	}
	slices.SortFunc(all, func(a, b timed) int { return int(b.d - a.d) })
	fmt.Printf("slowest %d:\n", top)
	for _, t := range all[:min(top, len(all))] {
		fmt.Printf("  %9s  %s\n", r(t.d), t.path)
	}
	return nil
}

func r(d time.Duration) string { return d.Round(10 * time.Microsecond).String() }

// shape groups a search URL: one or two words, which filter, first page or a later one.
func shape(p string) string {
	u, err := url.Parse(p)
	if err != nil {
		return "?"
	}
	q := u.Query()
	s := fmt.Sprintf("%d words", len(strings.Fields(q.Get("q"))))
	for _, f := range []string{"language", "severity", "tactic", "field"} {
		if v := q.Get(f); v != "" {
			s += " " + f + "=" + v
		}
	}
	if pg := q.Get("page"); pg != "" && pg != "1" {
		s += " page>1"
	}
	return s
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
