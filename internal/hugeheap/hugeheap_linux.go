//go:build linux

// Package hugeheap asks Linux to back the Go heap with transparent huge pages.
//
// On the paravirtualized machines ruledex is benchmarked on, a page fault costs
// 13-15 µs of CPU: a hunt's 33,000 first touches of fresh heap pages (rules compiled,
// events decoded, output) were about a sixth of its CPU time. Where transparent huge
// pages are enabled in "madvise" mode (the default of most distributions), a region
// advised MADV_HUGEPAGE is faulted in 2 MiB at a time. The Go runtime advises only
// some of its metadata; it maps the heap in 4 MiB steps as it grows, each a new
// mapping without the advice, so Advise runs again as the heap grows.
package hugeheap

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// minRegion is the smallest anonymous mapping advised: smaller ones cannot hold a
// huge page.
const minRegion = 4 << 20

var (
	mu      sync.Mutex
	advised = map[[2]uint64]bool{}
)

// Advise advises every anonymous read-write mapping of 4 MiB or more not advised
// yet, and reports how many it advised. Errors (no /proc, a kernel without THP) are
// ignored: the advice is only ever an optimization.
func Advise() int {
	mu.Lock()
	defer mu.Unlock()
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "start-end perms offset dev inode [path]": anonymous mappings have inode 0
		// and no path.
		fs := bytes.Fields(sc.Bytes())
		if len(fs) != 5 || string(fs[1]) != "rw-p" || string(fs[4]) != "0" {
			continue
		}
		lo, hi, ok := bytes.Cut(fs[0], []byte{'-'})
		if !ok {
			continue
		}
		a, err1 := strconv.ParseUint(string(lo), 16, 64)
		b, err2 := strconv.ParseUint(string(hi), 16, 64)
		if err1 != nil || err2 != nil || b-a < minRegion || advised[[2]uint64{a, b}] {
			continue
		}
		advised[[2]uint64{a, b}] = true
		if _, _, e := syscall.Syscall(syscall.SYS_MADVISE, uintptr(a), uintptr(b-a), 14 /* MADV_HUGEPAGE */); e == 0 {
			n++
		}
	}
	return n
}

// Keep advises now, then again after period until stop is called: for a process
// whose heap grows while it works. Each look costs about 30 µs (reading
// /proc/self/maps), so the wait doubles, up to maxPeriod, while the heap stays put,
// and is back to period once it grows again.
func Keep(period time.Duration) (stop func()) {
	Advise()
	done := make(chan struct{})
	go func() {
		wait := period
		t := time.NewTimer(wait)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if Advise() > 0 {
					wait = period
				} else {
					wait = min(2*wait, max(period, maxPeriod))
				}
				t.Reset(wait)
			}
		}
	}()
	return func() { close(done) }
}

// maxPeriod is Keep's longest wait between looks.
const maxPeriod = time.Second
