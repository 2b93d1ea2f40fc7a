//go:build linux

package hugeheap

import (
	"os"
	"strings"
	"testing"
)

var sink []byte

// A heap grown by 64 MiB has a new anonymous mapping of 4 MiB or more to advise, and
// a mapping is advised once: a second call right after finds nothing new.
func TestAdviseNewHeap(t *testing.T) {
	if b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled"); err != nil || strings.Contains(string(b), "[never]") {
		t.Logf("transparent huge pages unavailable here (%v); madvise is still accepted", err)
	}
	Advise()
	sink = make([]byte, 64<<20)
	for i := 0; i < len(sink); i += 4096 {
		sink[i] = 1
	}
	if n := Advise(); n == 0 {
		t.Fatal("Advise after the heap grew by 64 MiB advised no mapping")
	}
	if n := Advise(); n != 0 {
		t.Fatalf("Advise advised %d mappings twice", n)
	}
}
