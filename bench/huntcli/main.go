// Command huntcli measures `ruledex hunt --json` end to end, as a user runs it: the
// binary built from this tree against one built from an older commit (the baseline),
// in the same run so that a busy machine weighs on both alike.
//
// Input: the SigmaHQ regression events (evtx_dump JSON, corpus/regression) compacted
// to one JSON object per line and repeated to -events lines, in one file. Rules: every
// rule under corpus/sigma/sigmahq/rules/windows. The baseline gets --data (it had no
// built-in log-source map); this tree routes with its embedded map.
//
//	cd bench && go run ./huntcli -baseline e359bd4
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/ruledex/ruledex/bench/internal/measure"
	"github.com/ruledex/ruledex/internal/corpustest"
)

var (
	flagCorpus   = flag.String("corpus", "", "corpus root (default: ../shared/corpus beside the repository, or $RULEDEX_CORPUS)")
	flagBaseline = flag.String("baseline", "e359bd4", "git commit of the baseline ruledex (empty: measure this tree only)")
	flagEvents   = flag.Int("events", 200_000, "JSON lines in the input file")
	flagRuns     = flag.Int("runs", 3, "runs per binary (alternating); the best is reported")
	flagWork     = flag.String("work", "", "work folder for binaries and the input (default: a temporary folder)")
)

func main() {
	flag.Parse()
	corpus := *flagCorpus
	if corpus == "" {
		var err error
		if corpus, err = corpustest.Find(); err != nil {
			fail("corpus not found (-corpus or RULEDEX_CORPUS): %v", err)
		}
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		fail("%v", err)
	}
	work := *flagWork
	if work == "" {
		if work, err = os.MkdirTemp("", "ruledex-huntcli-"); err != nil {
			fail("%v", err)
		}
		defer os.RemoveAll(work)
	}
	fmt.Printf("ruledex hunt CLI benchmark  (%s, %d CPUs, load average %s)\n", runtime.Version(), runtime.NumCPU(), measure.LoadAvg())

	cur := filepath.Join(work, "ruledex-current")
	build(repo, cur)
	type bin struct {
		name, path string
		extra      []string
	}
	bins := []bin{{"this tree", cur, nil}}
	if *flagBaseline != "" {
		src := filepath.Join(work, "baseline-src")
		if err := os.MkdirAll(src, 0o755); err != nil {
			fail("%v", err)
		}
		archive := exec.Command("sh", "-c", fmt.Sprintf("git -C %q archive %q | tar -x -C %q", repo, *flagBaseline, src))
		if out, err := archive.CombinedOutput(); err != nil {
			fail("git archive %s: %v\n%s", *flagBaseline, err, out)
		}
		old := filepath.Join(work, "ruledex-baseline")
		build(src, old)
		bins = append(bins, bin{"baseline " + *flagBaseline, old, []string{"--data", corpus}})
	}

	input := filepath.Join(work, "events.jsonl")
	n, size := writeEvents(filepath.Join(corpus, "regression"), input, *flagEvents)
	fmt.Printf("input: %d JSON lines, %.1f MB (regression events repeated)\n", n, float64(size)/1e6)
	rules := filepath.Join(corpus, "sigma", "sigmahq", "rules", "windows")

	// The rule cache lives in the work folder: runs never read or fill the user's.
	os.Setenv("XDG_CACHE_HOME", filepath.Join(work, "cache"))
	one := filepath.Join(work, "one.jsonl")
	writeEvents(filepath.Join(corpus, "regression"), one, 1)

	// Start-up: a hunt over one event is rule loading and compiling and nothing else.
	// The first run of each binary fills this tree's rule cache; the best of the next
	// runs is reported, and for this tree also a run without the cache (--no-cache).
	type startup struct {
		name string
		best result
	}
	var starts []startup
	for i, b := range bins {
		variants := [][]string{nil}
		if i == 0 {
			variants = append(variants, []string{"--no-cache"})
		}
		for _, v := range variants {
			args := append(append(append([]string{}, b.extra...), "hunt", "--json", "--progress=false"), v...)
			args = append(args, "--rules", rules, one)
			runOnce(b.path, args)
			st := startup{name: b.name}
			if len(v) > 0 {
				st.name += " " + strings.Join(v, " ")
			}
			for run := 0; run < max(3, *flagRuns); run++ {
				if r := runOnce(b.path, args); run == 0 || r.wall < st.best.wall {
					st.best = r
				}
			}
			starts = append(starts, st)
		}
	}
	fmt.Printf("\nstart-up (hunt over 1 event, best of %d):\n%-32s %10s %9s %10s\n", max(3, *flagRuns), "binary", "wall", "CPU s", "peak RSS")
	for _, st := range starts {
		fmt.Printf("%-32s %10s %9.2f %10s\n", st.name, st.best.wall.Round(time.Millisecond), st.best.cpu.Seconds(), measure.MiB(st.best.rss))
	}

	best := make([]result, len(bins))
	for run := 0; run < *flagRuns; run++ {
		for i, b := range bins {
			args := append(append([]string{}, b.extra...), "hunt", "--json", "--progress=false", "--rules", rules, input)
			r := runOnce(b.path, args)
			if run == 0 || r.wall < best[i].wall {
				best[i] = r
			}
		}
	}
	fmt.Printf("\n%d events (best of %d):\n%-22s %10s %12s %9s %9s %10s %9s\n", n, *flagRuns, "binary", "wall", "events/s", "MB/s", "CPU s", "peak RSS", "matches")
	for i, b := range bins {
		r := best[i]
		fmt.Printf("%-22s %10s %12.0f %9.1f %9.2f %10s %9d\n", b.name, r.wall.Round(time.Millisecond),
			float64(n)/r.wall.Seconds(), float64(size)/1e6/r.wall.Seconds(), r.cpu.Seconds(), measure.MiB(r.rss), r.matches)
	}
	if len(bins) == 2 {
		fmt.Printf("\nthis tree / baseline: %.2fx events/s, %.2fx CPU time, peak RSS %.2fx\n",
			best[1].wall.Seconds()/best[0].wall.Seconds(), best[0].cpu.Seconds()/best[1].cpu.Seconds(), float64(best[0].rss)/float64(best[1].rss))
		if best[0].matches != best[1].matches {
			fmt.Printf("note: match counts differ (%d vs %d)\n", best[0].matches, best[1].matches)
		}
	}
}

func build(dir, out string) {
	cmd := exec.Command("go", "build", "-o", out, "./cmd/ruledex")
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		fail("go build in %s: %v\n%s", dir, err, b)
	}
}

// writeEvents compacts every evtx_dump event of the regression folder to one line and
// repeats them to n lines.
func writeEvents(dir, path string, n int) (int, int64) {
	var lines [][]byte
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".json") {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		for {
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				break
			}
			var objs []json.RawMessage
			if len(v) > 0 && v[0] == '[' {
				json.Unmarshal(v, &objs)
			} else {
				objs = []json.RawMessage{v}
			}
			for _, o := range objs {
				var b bytes.Buffer
				if json.Compact(&b, o) == nil {
					lines = append(lines, b.Bytes())
				}
			}
		}
		return nil
	})
	if len(lines) == 0 {
		fail("no events under %s", dir)
	}
	f, err := os.Create(path)
	if err != nil {
		fail("%v", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := 0; i < n; i++ {
		w.Write(lines[i%len(lines)])
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		fail("%v", err)
	}
	f.Close()
	st, _ := os.Stat(path)
	return n, st.Size()
}

type result struct {
	wall    time.Duration
	cpu     time.Duration
	rss     uint64
	matches int
}

func runOnce(bin string, args []string) result {
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		fail("%v", err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		fail("%s: %v", bin, err)
	}
	matches := 0
	br := bufio.NewReaderSize(stdout, 1<<20)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			matches++
		}
		if err == io.EOF {
			break
		}
		if err != nil && err != bufio.ErrBufferFull {
			fail("%v", err)
		}
	}
	if err := cmd.Wait(); err != nil {
		fail("%s %s: %v\n%s", bin, strings.Join(args, " "), err, stderr.String())
	}
	wall := time.Since(start)
	ru, _ := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	r := result{wall: wall, matches: matches, cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}
	if ru != nil {
		r.rss = uint64(ru.Maxrss) * 1024 // kilobytes on Linux
	}
	return r
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "huntcli: "+format+"\n", args...)
	os.Exit(1)
}
