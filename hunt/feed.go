package hunt

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"unsafe"

	"github.com/ruledex/ruledex/event"
	"github.com/ruledex/ruledex/logread"
)

// A Feed reads inputs into parts, and decodes the first ones while the rules are
// still loading and compiling: start-up (rule cache, engine.Compile) leaves a core
// idle for a third of a second, time in which that core decodes several thousand
// events. Decoded-ahead parts hold their events' values in their own memory, bounded
// by FeedOptions.AheadBytes; once Run starts (or the budget is spent), parts go to
// the workers as they are read, as before.
//
// A decoded-ahead part replays exactly the reader's results, events and located
// errors in order, so a hunt reports the same whether its parts were decoded ahead or
// not (TestFeedAheadSameAsRun).
type Feed struct {
	inputs []Input
	ready  chan struct{} // closed by Run: stop decoding ahead
	stop   chan struct{} // closed by Discard: stop reading
	ahead  chan unit     // decoded ahead, closed when decoding ahead stops
	units  chan unit     // the parts after those, closed at the end of the inputs
	used   bool

	aheadDone  chan struct{} // closed when decoding ahead stops (tests)
	aheadParts atomic.Int64  // parts decoded ahead (tests)
}

// FeedOptions configure StartFeed.
type FeedOptions struct {
	// AheadBytes bounds the memory of parts decoded ahead (their events' values and
	// field lists); 0 decodes nothing ahead.
	AheadBytes int
}

// DefaultAheadBytes is enough for the idle core of a start-up over the SigmaHQ
// Windows rules (a 1 MiB batch of JSON lines decodes to about 1.5 MiB).
const DefaultAheadBytes = 16 << 20

// maxAheadParts bounds the parts decoded ahead by number as well (EVTX chunks are
// small).
const maxAheadParts = 2048

// StartFeed starts reading inputs. Its goroutines end once Run has consumed the feed,
// or after Discard.
func StartFeed(inputs []Input, o FeedOptions) *Feed {
	f := &Feed{inputs: inputs, ready: make(chan struct{}), stop: make(chan struct{}), ahead: make(chan unit, maxAheadParts), units: make(chan unit, 4), aheadDone: make(chan struct{})}
	raw := make(chan unit, 1)
	go func() {
		seq := 0
		for i, in := range inputs {
			stopped := false
			err := in.Parts(func(p Part) bool {
				select {
				case raw <- unit{seq: seq, input: i, part: p}:
					seq++
					return true
				case <-f.stop:
					stopped = true
					return false
				}
			})
			if stopped {
				break
			}
			if err != nil {
				raw <- unit{seq: seq, input: i, err: fmt.Errorf("%s: %w", in.Name(), err)}
				seq++
			}
		}
		close(raw)
	}()
	go func() {
		used, n := 0, 0
		aheadOpen := true
		for u := range raw {
			if used < o.AheadBytes && n < maxAheadParts && u.err == nil {
				select {
				case <-f.ready:
				default:
					var size int
					u, size = decodeAhead(u)
					used += size
					n++
					f.aheadParts.Add(1)
					f.ahead <- u
					continue
				}
			}
			used = o.AheadBytes // stop decoding ahead for good
			if aheadOpen {
				close(f.ahead)
				close(f.aheadDone)
				aheadOpen = false
			}
			f.units <- u
		}
		if aheadOpen {
			close(f.ahead)
			close(f.aheadDone)
		}
		close(f.units)
	}()
	return f
}

// Discard releases a feed that will not be run: reading stops, and parts read
// already are released.
func (f *Feed) Discard() {
	if f.used {
		return
	}
	f.used = true
	close(f.stop)
	close(f.ready)
	go func() {
		for u := range f.ahead {
			u.release()
		}
		for u := range f.units {
			u.release()
		}
	}()
}

// release closes a part nobody will read.
func (u unit) release() {
	if u.part.Open != nil {
		if r, err := u.part.Open(); err == nil {
			r.Close()
		}
	}
}

// decodeAhead reads a part to the end into memory of its own and returns the unit
// with a part that replays it, and the memory it holds.
func decodeAhead(u unit) (unit, int) {
	rp := &replay{}
	r, err := u.part.Open()
	if err != nil {
		rp.openErr = err
		u.part.Open = rp.open
		return u, 0
	}
	var ev event.Event
	var arena []byte
	var block []event.Field
	consecutive := 0
	for consecutive < maxConsecutiveErrors {
		err := r.Next(&ev)
		if err == io.EOF {
			break
		}
		if err != nil {
			rp.items = append(rp.items, replayItem{err: err})
			consecutive++
			continue
		}
		consecutive = 0
		it := replayItem{file: ev.File, offset: ev.Offset}
		// One copy of the event's values: the reader reuses its memory. Names are the
		// reader's interned strings, kept as they are (the engine compares them).
		need := 0
		for _, fl := range ev.Fields {
			need += len(fl.Value)
		}
		if cap(arena)-len(arena) < need {
			arena = make([]byte, 0, max(need, 256<<10))
		}
		// Field lists go into fixed blocks, never moved once written: one growing
		// slice for a part's fields (about 100,000 of them for a 1 MiB batch) spent
		// more time copying itself while doubling than decoding took.
		if cap(block)-len(block) < len(ev.Fields) {
			block = make([]event.Field, 0, max(len(ev.Fields), fieldBlock))
		}
		from := len(block)
		for _, fl := range ev.Fields {
			v := ""
			if len(fl.Value) > 0 {
				start := len(arena)
				arena = append(arena, fl.Value...)
				v = unsafe.String(&arena[start], len(fl.Value))
			}
			block = append(block, event.Field{Name: fl.Name, Value: v})
		}
		it.fields = block[from:len(block):len(block)]
		rp.size += need + len(ev.Fields)*int(unsafe.Sizeof(event.Field{}))
		rp.items = append(rp.items, it)
	}
	r.Close()
	rp.size += len(rp.items) * int(unsafe.Sizeof(replayItem{}))
	u.part.Open = rp.open
	return u, rp.size
}

// replay is a part decoded ahead.
type replay struct {
	openErr error
	items   []replayItem
	size    int
	next    int
}

type replayItem struct {
	err    error
	file   string
	offset int64
	fields []event.Field // the event's, in a block shared with the part's other events
}

// fieldBlock is the number of fields in a block of decodeAhead's field lists.
const fieldBlock = 8192

func (rp *replay) open() (logread.Reader, error) {
	if rp.openErr != nil {
		return nil, rp.openErr
	}
	return rp, nil
}

func (rp *replay) Next(ev *event.Event) error {
	if rp.next >= len(rp.items) {
		return io.EOF
	}
	it := &rp.items[rp.next]
	rp.next++
	if it.err != nil {
		return it.err
	}
	ev.Reset()
	ev.File, ev.Offset = it.file, it.offset
	ev.Fields = append(ev.Fields, it.fields...)
	return nil
}

func (rp *replay) Close() error {
	rp.items = nil
	return nil
}

var errFeedUsed = errors.New("hunt: feed already run or discarded")
