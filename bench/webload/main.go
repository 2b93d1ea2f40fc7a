// Command webload measures ruledex serve under concurrent load on loopback: rule pages
// and searches from N keep-alive clients, reporting throughput, latency percentiles and
// the server's resident memory. It only reads; point it at a running `ruledex serve`.
//
//	go run ./webload -url http://127.0.0.1:18099 -pid $(cat server.pid)
package main

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ruledex/ruledex/bench/internal/coldset"
)

var queries = []string{
	"bitsadmin", "powershell", "mimikatz", "lsass", "rundll32", "certutil", "schtasks", "wmic",
	"regsvr32", "mshta", "encoded command", "credential dump*", "T1059", "T1003", "scheduled task",
	"registry run key", "defender", "psexec", "net user", "whoami", "vssadmin", "cobalt", "bloodhound",
	"CommandLine", "ParentImage", "sysmon", "office macro", "lateral movement", "amsi", "kerberos",
}

// searchFilters are added to some searches so facets and filters are exercised too.
var searchFilters = []string{"", "", "&language=sigma", "&severity=high", "&tactic=execution", "&field=CommandLine"}

type result struct {
	name     string
	cpu      time.Duration // the server's CPU time over the run (0 without -pid)
	n        int
	errs     int64
	elapsed  time.Duration
	lat      []time.Duration
	firstErr string
}

func main() {
	base := flag.String("url", "http://127.0.0.1:8080", "ruledex serve base URL")
	clients := flag.Int("c", 50, "concurrent clients")
	n := flag.Int("n", 20000, "requests per scenario")
	maxTime := flag.Duration("t", 30*time.Second, "time limit per scenario")
	pid := flag.Int("pid", 0, "server process id, to report its memory")
	unique := flag.Bool("uncached", false, "also run each scenario with a unique query parameter per request, bypassing the server's page cache")
	cold := flag.Bool("cold", false, "cold path only: every rule page once, then -searches distinct searches once (no warm-up, every URL distinct)")
	nSearches := flag.Int("searches", 4700, "distinct searches in -cold mode")
	base2 := flag.String("url2", "", "with -cold: a second server (another build, on the same catalog) loaded in turn with the first, slice by slice, so both see the same machine; their responses are compared byte for byte")
	pid2 := flag.Int("pid2", 0, "the second server's process id")
	flag.Parse()

	c := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConns: *clients * 2, MaxIdleConnsPerHost: *clients * 2, IdleConnTimeout: time.Minute},
	}
	want := 2000
	if *cold {
		want = 1 << 30 // all of them
	}
	rules, err := discoverRules(c, *base, want)
	if err != nil {
		fmt.Fprintln(os.Stderr, "webload:", err)
		os.Exit(1)
	}
	if *cold && *base2 != "" {
		if err := compareCold(c, *base, *base2, *pid, *pid2, rules, *nSearches, *clients, 10*(*maxTime)); err != nil {
			fmt.Fprintln(os.Stderr, "webload:", err)
			os.Exit(1)
		}
		return
	}
	if *cold {
		// Crawlers and first-time readers: each URL once, nothing requested before.
		fmt.Printf("server %s, %d clients, cold path: %d rule pages once each, then %d distinct searches\n",
			*base, *clients, len(rules), *nSearches)
		memory(*pid, "before")
		report(run(c, *base, "rule page (cold)", func(i int) string { return rules[i] }, *clients, len(rules), 10*(*maxTime), *pid))
		report(run(c, *base, "search API (cold)", coldset.Search, *clients, *nSearches, 10*(*maxTime), *pid))
		memory(*pid, "after")
		return
	}
	fmt.Printf("server %s, %d clients, up to %d requests or %s per scenario, %d rule pages in rotation\n",
		*base, *clients, *n, *maxTime, len(rules))
	memory(*pid, "before")

	rulePath := func(i int) string { return rules[i%len(rules)] }
	searchPath := func(i int) string {
		q := queries[i%len(queries)]
		return "/api/search?q=" + url.QueryEscape(q) + searchFilters[(i/len(queries))%len(searchFilters)]
	}
	searchPage := func(i int) string {
		return "/rules/?q=" + url.QueryEscape(queries[i%len(queries)])
	}
	type scenario struct {
		name   string
		path   func(int) string
		warmup int // distinct paths to request once, unmeasured, before the run
	}
	nSearch := len(queries) * len(searchFilters)
	scenarios := []scenario{{"rule page", rulePath, len(rules)}, {"search API", searchPath, nSearch}, {"search page", searchPage, len(queries)}}
	if *unique {
		bust := func(f func(int) string) func(int) string {
			return func(i int) string {
				p := f(i)
				sep := "?"
				if strings.Contains(p, "?") {
					sep = "&"
				}
				return fmt.Sprintf("%s%suncached=%d", p, sep, i)
			}
		}
		scenarios = append(scenarios, scenario{"rule page (uncached)", bust(rulePath), 0}, scenario{"search API (uncached)", bust(searchPath), 0})
	}
	for _, s := range scenarios {
		if s.warmup > 0 {
			run(c, *base, "warm-up", s.path, *clients, s.warmup, *maxTime, 0)
		}
		r := run(c, *base, s.name, s.path, *clients, *n, *maxTime, *pid)
		report(r)
	}
	memory(*pid, "after")
}

// discoverRules lists rule page paths through the search API.
func discoverRules(c *http.Client, base string, want int) ([]string, error) {
	var out []string
	for page := 1; len(out) < want; page++ {
		resp, err := c.Get(fmt.Sprintf("%s/api/search?per_page=200&page=%d", base, page))
		if err != nil {
			return nil, err
		}
		var res struct {
			Results []struct {
				URL string `json:"url"`
			} `json:"results"`
			Pages int `json:"pages"`
		}
		err = json.NewDecoder(resp.Body).Decode(&res)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("search API: %w", err)
		}
		for _, r := range res.Results {
			out = append(out, r.URL)
		}
		if page >= res.Pages {
			break
		}
	}
	if len(out) == 0 {
		return nil, errors.New("the server lists no rules; ingest first")
	}
	return out, nil
}

func run(c *http.Client, base, name string, path func(int) string, clients, n int, maxTime time.Duration, pid int) *result {
	return runSums(c, base, name, path, clients, n, maxTime, pid, nil)
}

// runSums is run that also records a hash of each response body in sums[i] (when sums
// is not nil).
func runSums(c *http.Client, base, name string, path func(int) string, clients, n int, maxTime time.Duration, pid int, sums []uint64) *result {
	cpu0 := serverCPU(pid)
	ctx, cancel := context.WithTimeout(context.Background(), maxTime)
	defer cancel()
	var next atomic.Int64
	var errs atomic.Int64
	var firstErr atomic.Value
	lats := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t0 := time.Now()
				resp, err := get(c, base+path(i))
				if err == nil {
					if sums != nil {
						h := fnv.New64a()
						_, err = io.Copy(h, inflated(resp))
						sums[i] = h.Sum64()
					} else {
						_, err = io.Copy(io.Discard, resp.Body)
					}
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("%s: status %d", path(i), resp.StatusCode)
					}
				}
				d := time.Since(t0)
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				lats[w] = append(lats[w], d)
			}
		}(w)
	}
	wg.Wait()
	r := &result{name: name, elapsed: time.Since(start), errs: errs.Load(), cpu: serverCPU(pid) - cpu0}
	for _, l := range lats {
		r.lat = append(r.lat, l...)
	}
	r.n = len(r.lat)
	if v, ok := firstErr.Load().(string); ok {
		r.firstErr = v
	}
	return r
}

// get asks for path as a browser or crawler does, taking gzip, but does not inflate the
// body (as wrk and hey do not): inflating pages is the client's work, and on loopback
// on a 2-core machine it would take CPU from the server under test (a third of the
// client's time on rule pages). The bytes are read in full all the same.
func get(c *http.Client, url string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	// Set by hand, the header also turns off the transport's transparent inflating.
	req.Header.Set("Accept-Encoding", "gzip")
	return c.Do(req)
}

// inflated is resp's body as the page reads, for comparing two servers' answers: gzip
// output may differ where the page does not.
func inflated(resp *http.Response) io.Reader {
	if resp.Header.Get("Content-Encoding") != "gzip" {
		return resp.Body
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		return io.MultiReader(strings.NewReader("bad gzip: "+err.Error()), resp.Body)
	}
	return zr
}

func report(r *result) {
	slices.Sort(r.lat)
	pct := func(p float64) time.Duration {
		if len(r.lat) == 0 {
			return 0
		}
		return r.lat[min(len(r.lat)-1, int(p*float64(len(r.lat))))]
	}
	fmt.Printf("%-22s %7d ok %4d errors  %8.0f req/s  p50 %-9s p90 %-9s p99 %-9s max %s\n",
		r.name, r.n, r.errs, float64(r.n)/r.elapsed.Seconds(),
		pct(0.50).Round(10*time.Microsecond), pct(0.90).Round(10*time.Microsecond),
		pct(0.99).Round(10*time.Microsecond), pct(1).Round(10*time.Microsecond))
	if r.cpu > 0 && r.n > 0 {
		// Independent of what else runs on the machine, unlike the latencies: what one
		// request costs the server, and the throughput the cores would allow alone.
		per := r.cpu / time.Duration(r.n)
		fmt.Printf("  server CPU %.3f ms/request (%.0f req/s per core)\n", float64(per.Microseconds())/1000, float64(time.Second)/float64(per))
	}
	if r.firstErr != "" {
		fmt.Printf("  first error: %s\n", r.firstErr)
	}
}

// serverCPU is the server's user and system CPU time so far, from /proc (0 without a pid).
func serverCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces, in parentheses): utime and
	// stime are the 12th and 13th, in clock ticks (100 a second on Linux).
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	var ut, st int64
	fmt.Sscan(f[11], &ut)
	fmt.Sscan(f[12], &st)
	return time.Duration(ut+st) * (time.Second / 100)
}

// memory prints the server's resident set and its peak, from /proc.
func memory(pid int, when string) {
	if pid <= 0 {
		return
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		fmt.Printf("server memory %s: %v\n", when, err)
		return
	}
	var rss, hwm string
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			rss = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			hwm = strings.TrimSpace(v)
		}
	}
	fmt.Printf("server memory %s: RSS %s, peak RSS %s\n", when, rss, hwm)
}

// compareCold runs the cold path against two servers on the same catalog in turns: each
// slice of the URLs goes to one, then the other (which one first alternates), so a busy
// machine weighs on both alike. Each server still sees every URL once. The response
// bodies must be the same, byte for byte.
func compareCold(c *http.Client, a, b string, pidA, pidB int, rules []string, nSearches, clients int, maxTime time.Duration) error {
	fmt.Printf("servers A %s and B %s in turns, %d clients, cold path: %d rule pages once each, then %d distinct searches\n",
		a, b, clients, len(rules), nSearches)
	memory(pidA, "A before")
	memory(pidB, "B before")
	const slices = 20
	phase := func(name string, path func(int) string, n int) error {
		res := [2]*result{{name: name + " A"}, {name: name + " B"}}
		sums := [2][]uint64{make([]uint64, n), make([]uint64, n)}
		for k := 0; k < slices; k++ {
			lo, hi := k*n/slices, (k+1)*n/slices
			sub := func(i int) string { return path(lo + i) }
			for j := 0; j < 2; j++ {
				s := (j + k) % 2
				url, pid := a, pidA
				if s == 1 {
					url, pid = b, pidB
				}
				r := runSums(c, url, name, sub, clients, hi-lo, maxTime, pid, sums[s][lo:hi])
				res[s].n += r.n
				res[s].errs += r.errs
				res[s].elapsed += r.elapsed
				res[s].cpu += r.cpu
				res[s].lat = append(res[s].lat, r.lat...)
				if res[s].firstErr == "" {
					res[s].firstErr = r.firstErr
				}
			}
		}
		report(res[0])
		report(res[1])
		diff := 0
		for i := range sums[0] {
			if sums[0][i] != sums[1][i] {
				if diff < 5 {
					fmt.Printf("  differs: %s\n", path(i))
				}
				diff++
			}
		}
		fmt.Printf("  %d of %d responses identical on A and B\n", n-diff, n)
		if res[0].errs+res[1].errs > 0 {
			return fmt.Errorf("%s: %d errors on A, %d on B", name, res[0].errs, res[1].errs)
		}
		return nil
	}
	if err := phase("rule page (cold)", func(i int) string { return rules[i] }, len(rules)); err != nil {
		return err
	}
	if err := phase("search API (cold)", coldset.Search, nSearches); err != nil {
		return err
	}
	memory(pidA, "A after")
	memory(pidB, "B after")
	return nil
}
