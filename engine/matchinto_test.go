package engine

import (
	"runtime"
	"slices"
	"sync"
	"testing"
	"unsafe"

	"github.com/ruledex/ruledex/event"
)

// TestMatchInto: MatchInto reports what Match reports, its fields are the event's own
// strings (not copies), carved from the caller's buffer; and callers on several
// goroutines, each with its own buffer, never see each other's fields (the matcher's
// per-goroutine state is pooled and moves between goroutines, so nothing it hands out
// may live in it).
func TestMatchInto(t *testing.T) {
	rules, cat := windowsRules(t)
	m, _ := Compile(rules, Options{Router: CatalogRouter{cat}})
	evs := regressionEvents(t)
	var fields []event.Field
	var ms []Match
	matched := 0
	for i := range evs {
		ev := &evs[i]
		want := describe(m.Match(ev, nil))
		ms, fields = m.MatchInto(ev, ms[:0], fields[:0])
		if got := describe(ms); got != want {
			t.Fatalf("event %d: MatchInto\n%s\nMatch\n%s", i, got, want)
		}
		for _, x := range ms {
			matched++
			for _, f := range x.Fields {
				if !ownString(ev, f.Value) {
					t.Fatalf("event %d, %s: field %s is a copy, not the event's string", i, x.Rule.ID, f.Name)
				}
			}
		}
	}
	if matched == 0 {
		t.Fatal("no match: nothing compared")
	}

	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var fields []event.Field
			var ms []Match
			for round := range 500 {
				ev := &evs[(g*37+round)%len(evs)]
				ms, fields = m.MatchInto(ev, ms[:0], fields[:0])
				// Let another goroutine match (with the state this one used) before the
				// fields are read.
				runtime.Gosched()
				for _, x := range ms {
					for _, f := range x.Fields {
						if !slices.Contains(ev.Fields, f) {
							errs <- x.Rule.ID + ": a field not of its event: " + f.Name + "=" + f.Value
							return
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// ownString reports whether s is one of ev's values, the same memory.
func ownString(ev *event.Event, s string) bool {
	for _, f := range ev.Fields {
		if len(f.Value) == len(s) && unsafe.StringData(f.Value) == unsafe.StringData(s) {
			return true
		}
	}
	return s == ""
}

// describe lists matches in order, with their fields and alternate log source.
func describe(ms []Match) string {
	var b []byte
	for _, m := range ms {
		b = append(b, m.Rule.ID...)
		b = append(b, " via="...)
		b = append(b, m.Via...)
		for _, f := range m.Fields {
			b = append(b, ' ')
			b = append(b, f.Name...)
			b = append(b, '=')
			b = append(b, f.Value...)
		}
		b = append(b, '\n')
	}
	return string(b)
}
