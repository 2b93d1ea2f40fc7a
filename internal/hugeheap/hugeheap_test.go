//go:build linux

package hugeheap

import (
	"os"
	"testing"
)

var sink []byte

// A heap grown by 64 MiB has a new anonymous mapping of 4 MiB or more to advise, and
// a mapping is advised once: a second call right after finds nothing new.
func TestAdviseNewHeap(t *testing.T) {
	Advise()
	sink = make([]byte, 64<<20)
	for i := 0; i < len(sink); i += 4096 {
		sink[i] = 1
	}
	if n := Advise(); n == 0 {
		// MADV_HUGEPAGE fails only on a kernel built without THP, where the
		// sysfs file is missing too.
		_, err := os.Stat("/sys/kernel/mm/transparent_hugepage/enabled")
		t.Fatalf("Advise after the heap grew by 64 MiB advised no mapping (THP in this kernel: %v)", err)
	}
	if n := Advise(); n != 0 {
		t.Fatalf("Advise advised %d mappings twice", n)
	}
}
