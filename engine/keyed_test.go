package engine

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ruledex/ruledex/event"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/internal/regression"
	"github.com/ruledex/ruledex/lang/sigma"
	"github.com/ruledex/ruledex/rule"
)

// keyedSet is rules and the events they correlate.
type keyedSet struct {
	name   string
	rules  []*rule.Rule
	events []*event.Event
}

// syntheticSets are the Correlator's own cases (correlate_test.go) plus a legacy
// aggregation, each as a set.
func syntheticSets(t *testing.T) []keyedSet {
	var sets []keyedSet
	for _, c := range correlationCases {
		text := baseRules + "---\ntitle: corr\nid: 00000000-0000-0000-0000-0000000000cc\n" + c.correlation + "\n"
		sets = append(sets, keyedSet{c.name, parseAll(t, text), c.events})
	}
	agg := "title: agg\nid: 00000000-0000-0000-0000-0000000000dd\nlogsource:\n  product: windows\ndetection:\n  sel:\n    Image|endswith: '.exe'\n  timeframe: 1m\n  condition: sel | count(Image) by Computer > 1\n"
	sets = append(sets, keyedSet{"legacy count(Image) by", parseAll(t, agg), []*event.Event{
		proc(0, `C:\x.exe`, "pc1"), proc(1, `C:\x.exe`, "pc1"), proc(2, `C:\y.exe`, "pc2"), proc(3, `C:\z.exe`, "pc2"),
		proc(70, `C:\y.exe`, "pc2"), proc(80, `C:\z.exe`, "pc2"), proc(81, `C:\w.exe`, "pc2")}})
	return sets
}

// regressionSet is testdata/keyed_correlations.yml over the SigmaHQ rules it names
// and the SigmaHQ regression events (JSON twins) of the shared corpus.
func regressionSet(t *testing.T) keyedSet {
	t.Helper()
	corr, err := os.ReadFile("testdata/keyed_correlations.yml")
	if err != nil {
		t.Fatal(err)
	}
	rs := parseAll(t, string(corr))
	want := map[string]bool{}
	for _, r := range rs {
		for _, ref := range r.Correlation.Rules {
			want[ref] = true
		}
	}
	root := corpustest.Path(t, "sigma", "sigmahq", "rules", "windows")
	err = filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() || !strings.HasSuffix(p, ".yml") {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for id := range want {
			if bytes.Contains(data, []byte("\nid: "+id)) {
				got, diags := sigma.Parser{}.Parse(rule.Source{Repo: "sigmahq", Path: p}, data)
				if len(diags) > 0 {
					return fmt.Errorf("%s: %v", p, diags)
				}
				rs = append(rs, got...)
				delete(want, id)
				break
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(want) > 0 {
		t.Fatalf("rules not found in the corpus: %v", want)
	}
	var evs []*event.Event
	for _, c := range regression.Cases(t) {
		got, err := regression.ReadEvents(c.JSON())
		if err != nil {
			t.Fatalf("%s: %v", c.JSON(), err)
		}
		for i := range got {
			evs = append(evs, &got[i])
		}
	}
	return keyedSet{"sigmahq regression events", rs, evs}
}

// correlatorAlerts is the reference: the Correlator over the events that feed a
// correlation, sorted by time (stable), as hunt runs it.
func correlatorAlerts(t *testing.T, m *Matcher, events []*event.Event) []string {
	t.Helper()
	co, skipped := NewCorrelator(m)
	if len(skipped) > 0 {
		t.Fatalf("skipped: %s: %s", skipped[0].Rule.Title, skipped[0].Reason)
	}
	k := co.Keyed(0)
	type fed struct {
		ev *event.Event
		ms []Match
		t  time.Time
	}
	var feds []fed
	for _, e := range events {
		ms := m.Match(e, nil)
		if len(k.Inputs(e, ms, "", 0, nil)) == 0 {
			continue
		}
		tm, _ := EventTime(e)
		feds = append(feds, fed{e, ms, tm})
	}
	sort.SliceStable(feds, func(i, j int) bool { return feds[i].t.Before(feds[j].t) })
	var alerts []Alert
	for _, f := range feds {
		alerts = co.Observe(f.ev, f.ms, alerts)
	}
	return alertKeys(co.Flush(alerts))
}

func alertKeys(as []Alert) []string {
	var out []string
	for _, a := range as {
		out = append(out, alertKey(a))
	}
	sort.Strings(out)
	return out
}

func alertKey(a Alert) string {
	var g []string
	for _, f := range a.Group {
		g = append(g, f.Name+"="+f.Value)
	}
	return fmt.Sprintf("%s %s %g events=%d first=%s time=%s", a.Rule.Title, strings.Join(g, ","), a.Value, a.Events,
		a.First.Format(time.RFC3339Nano), a.Time.Format(time.RFC3339Nano))
}

// arrival is one input in the order a shard receives it.
type arrival struct {
	in Input
	at time.Time // event time (or, for events without one, zero)
}

// keyedRun feeds arrivals to nshards shards (by key hash, as a repartition topic
// would), releasing after each, and flushes at the end. With restart, every shard is
// encoded after each arrival and replaced by one restored from the encodings, as a
// worker taking over from the changelog would.
func keyedRun(t *testing.T, k *Keyed, arrivals []arrival, nshards int, restart bool) (alerts []string, late int64) {
	t.Helper()
	shards := make([]*Shard, nshards)
	logs := make([]map[string][]byte, nshards)
	metas := make([][]byte, nshards)
	for i := range shards {
		shards[i] = k.NewShard()
		logs[i] = map[string][]byte{}
	}
	var out []KeyedAlert
	for pos, a := range arrivals {
		h := fnv.New32a()
		h.Write([]byte(a.in.Key()))
		i := int(h.Sum32() % uint32(nshards))
		s := shards[i]
		oc, err := s.Add(a.in, int64(pos))
		if err != nil {
			t.Fatal(err)
		}
		if os.Getenv("KDEBUG") != "" {
			t.Logf("add %s %v -> %v stream %v", a.in.Key(), a.at, oc, s.Stream)
		}
		out = s.Release(out)
		s.Sweep()
		if restart {
			for _, key := range s.Dirty() {
				if b := s.Encode(key); b != nil {
					logs[i][key] = b
				} else {
					delete(logs[i], key)
				}
			}
			metas[i] = s.EncodeMeta()
			fresh := k.NewShard()
			for key, b := range logs[i] {
				if err := fresh.Restore(key, b); err != nil {
					t.Fatal(err)
				}
			}
			if err := fresh.RestoreMeta(metas[i]); err != nil {
				t.Fatal(err)
			}
			shards[i] = fresh
		}
	}
	var last time.Time
	for _, s := range shards {
		if s.Stream.After(last) {
			last = s.Stream
		}
		late += s.Late
	}
	for _, s := range shards {
		out = s.Flush(last, out)
	}
	var as []Alert
	for _, a := range out {
		as = append(as, a.Alert)
	}
	return alertKeys(as), late
}

// inputsOf returns the inputs of the events, sorted by time, as read from sources
// partitions: the k-th event in time is read from partition k%sources, so each
// partition is in time order and the interleaving is free, as in a topic.
func inputsOf(t *testing.T, m *Matcher, k *Keyed, events []*event.Event, sources int) []arrival {
	type evIns struct {
		at  time.Time
		ins []Input
	}
	var evs []evIns
	for _, e := range events {
		tm, _ := EventTime(e)
		if ins := k.Inputs(e, m.Match(e, nil), "", 0, nil); len(ins) > 0 {
			evs = append(evs, evIns{tm, ins})
		}
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].at.Before(evs[j].at) })
	var arr []arrival
	for rank, e := range evs {
		for _, in := range e.ins {
			in.Src, in.Off = fmt.Sprintf("events/%d", rank%sources), int64(rank/sources)
			// Through the wire format, as a repartition topic carries it.
			got, err := DecodeInput(in.Encode())
			if err != nil {
				t.Fatal(err)
			}
			arr = append(arr, arrival{got, e.at})
		}
	}
	return arr
}

// TestKeyedEqualsCorrelator: keyed state, in any arrival order within grace, spread
// over shards, restored from its encoding after every input or not, raises what the
// Correlator raises on time-sorted input.
func TestKeyedEqualsCorrelator(t *testing.T) {
	sets := append(syntheticSets(t), regressionSet(t))
	const grace = 10 * time.Minute
	for _, set := range sets {
		m, skipped := Compile(set.rules, Options{})
		if len(skipped) > 0 {
			t.Fatalf("%s: skipped %s: %s", set.name, skipped[0].Rule.Title, skipped[0].Reason)
		}
		want := correlatorAlerts(t, m, set.events)
		if os.Getenv("KDEBUG") != "" {
			t.Logf("%s: %q", set.name, want)
		}
		// Every correlation of the set must fire, or the set does not test it.
		for _, r := range set.rules {
			if r.Correlation == nil && !strings.HasPrefix(r.Title, "agg") {
				continue
			}
			if !slices.ContainsFunc(want, func(a string) bool { return strings.HasPrefix(a, r.Title+" ") }) {
				t.Fatalf("%s: %q raises nothing on the set's events: the set does not test it", set.name, r.Title)
			}
		}
		co, _ := NewCorrelator(m)
		k := co.Keyed(grace)
		sorted := inputsOf(t, m, k, set.events, 3)
		rng := rand.New(rand.NewPCG(1, uint64(len(sorted))))
		orders := map[string][]arrival{"sorted": sorted}
		for n := range 3 {
			// Each input arrives at its event time plus a delay below grace, never before
			// the one read before it from the same partition: never late.
			arrive := make([]time.Time, len(sorted))
			last := map[string]time.Time{}
			for i, a := range sorted {
				at := a.at.Add(time.Duration(rng.Int64N(int64(grace))))
				if l := last[a.in.Src]; at.Before(l) {
					at = l
				}
				arrive[i], last[a.in.Src] = at, at
			}
			idx := make([]int, len(sorted))
			for i := range idx {
				idx[i] = i
			}
			sort.SliceStable(idx, func(a, b int) bool { return arrive[idx[a]].Before(arrive[idx[b]]) })
			var shuffled []arrival
			for _, i := range idx {
				shuffled = append(shuffled, sorted[i])
			}
			orders[fmt.Sprintf("shuffled within grace #%d", n)] = shuffled
		}
		for name, arr := range orders {
			for _, restart := range []bool{false, true} {
				got, late := keyedRun(t, k, arr, 3, restart)
				if late != 0 {
					t.Errorf("%s, %s, restart %v: %d late inputs, want none", set.name, name, restart, late)
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s, %s, restart %v:\n got %q\nwant %q", set.name, name, restart, got, want)
				}
			}
		}
		// Every input twice (a producer retried): the second copies are dropped.
		var twice []arrival
		for _, a := range sorted {
			twice = append(twice, a, a)
		}
		if got, _ := keyedRun(t, k, twice, 2, false); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s, every input twice:\n got %q\nwant %q", set.name, got, want)
		}
	}
}

// TestKeyedLate: an input older than the stream time minus grace is counted, not
// applied, and the rest still correlates.
func TestKeyedLate(t *testing.T) {
	rs := parseAll(t, baseRules+`---
title: corr
id: 00000000-0000-0000-0000-0000000000cc
correlation:
  type: event_count
  rules: [failed_logon]
  group-by: [TargetUserName]
  timespan: 5m
  condition: {gte: 2}
`)
	m, _ := Compile(rs, Options{})
	co, _ := NewCorrelator(m)
	cases := []struct {
		name  string
		grace time.Duration
		secs  []int // arrival order of alice's failures
		late  int64
		want  []string
	}{
		{"in order", 0, []int{0, 10, 400, 410}, 0, []string{"0..10", "400..410"}},
		{"behind by less than grace", 30 * time.Second, []int{10, 0, 410, 400}, 0, []string{"0..10", "400..410"}},
		{"behind by more than grace", 5 * time.Second, []int{10, 0, 410, 400}, 2, nil},
		{"one late, the others pair", 5 * time.Second, []int{0, 400, 10, 410}, 1, []string{"400..410"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k := co.Keyed(c.grace)
			s := k.NewShard()
			var out []KeyedAlert
			for i, sec := range c.secs {
				e := failed(sec, "alice", "1")
				for _, in := range k.Inputs(e, m.Match(e, nil), "events/0", int64(i), nil) {
					if _, err := s.Add(in, int64(i)); err != nil {
						t.Fatal(err)
					}
				}
				out = s.Release(out)
			}
			out = s.Flush(s.Stream, out)
			var got []string
			for _, a := range out {
				got = append(got, fmt.Sprintf("%d..%d", int(a.First.Sub(t0).Seconds()), int(a.Time.Sub(t0).Seconds())))
			}
			if s.Late != c.late || fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("late %d, alerts %v; want %d, %v", s.Late, got, c.late, c.want)
			}
		})
	}
}

// TestKeyedExpire: a window decided at its end (lt) closes once the stream time is
// grace past the end, at the end, without waiting for its key's next event.
func TestKeyedExpire(t *testing.T) {
	rs := parseAll(t, baseRules+`---
title: corr
id: 00000000-0000-0000-0000-0000000000cc
correlation:
  type: event_count
  rules: [failed_logon]
  group-by: [TargetUserName]
  timespan: 1m
  condition: {lt: 2}
`)
	m, _ := Compile(rs, Options{})
	co, _ := NewCorrelator(m)
	k := co.Keyed(10 * time.Second)
	s := k.NewShard()
	var out []KeyedAlert
	for i, e := range []*event.Event{failed(0, "erin", "1"), failed(5, "frank", "1"), failed(6, "frank", "1"), failed(69, "zed", "1"), failed(71, "zed", "1")} {
		for _, in := range k.Inputs(e, m.Match(e, nil), "", 0, nil) {
			if _, err := s.Add(in, int64(i)); err != nil {
				t.Fatal(err)
			}
		}
		out = s.Expire(s.Release(out))
	}
	// At stream time 71 the watermark is 61: erin's window (0..60) is over, frank's
	// (5..65) is not.
	var got []string
	for _, a := range out {
		got = append(got, fmt.Sprintf("%s@%d", a.Group[0].Value, int(a.Time.Sub(t0).Seconds())))
	}
	if want := []string{"erin@60"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("expired %v, want %v", got, want)
	}
}

// TestKeyedBadState: damaged or foreign encodings are errors naming the key, never a
// panic or a silently empty state.
func TestKeyedBadState(t *testing.T) {
	rs := parseAll(t, baseRules+"---\ntitle: corr\nid: 00000000-0000-0000-0000-0000000000cc\n"+correlationCases[0].correlation+"\n")
	m, _ := Compile(rs, Options{})
	co, _ := NewCorrelator(m)
	k := co.Keyed(0)
	s := k.NewShard()
	for _, c := range []struct{ value, want string }{
		{`{`, "unexpected end"},
		{`{"v":9,"a":"c:00000000-0000-0000-0000-0000000000cc","g":["x"]}`, "version 9"},
		{`{"v":1,"a":"c:other","g":["x"]}`, `"c:other" is not loaded`},
		{`{"v":1,"a":"c:00000000-0000-0000-0000-0000000000cc","g":[]}`, "0 group-by values"},
		{`{"v":1,"a":"c:00000000-0000-0000-0000-0000000000cc","g":["x"],"w":{"f":0,"t":[0,1],"i":["a"]}}`, "different lengths"},
	} {
		err := s.Restore("the-key", []byte(c.value))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "the-key") {
			t.Errorf("Restore(%s) = %v, want an error with %q and the key", c.value, err, c.want)
		}
	}
	if _, err := DecodeInput([]byte(`{"v":1}`)); err == nil {
		t.Error("an input without correlation id decodes")
	}
	if _, err := s.Add(Input{Agg: "c:nope"}, 0); err == nil || !strings.Contains(err.Error(), "not loaded") {
		t.Errorf("Add of an unknown correlation: %v", err)
	}
}

// keyedBenchSetup: failed logons of 1000 users, one a second, for an event_count
// correlation by user (5 minutes, 3 or more).
func keyedBenchSetup(b *testing.B) (*Matcher, *Correlator, []*event.Event) {
	rs, diags := sigma.Parser{}.Parse(rule.Source{Path: "b.yml"}, []byte(baseRules+"---\ntitle: corr\nid: 00000000-0000-0000-0000-0000000000cc\n"+correlationCases[0].correlation+"\n"))
	if len(diags) > 0 {
		b.Fatal(diags)
	}
	m, _ := Compile(rs, Options{})
	co, _ := NewCorrelator(m)
	var evs []*event.Event
	for i := range 10000 {
		evs = append(evs, failed(i, fmt.Sprintf("user%d", i%1000), "10.0.0.1"))
	}
	return m, co, evs
}

func BenchmarkCorrelatorObserve(b *testing.B) {
	m, co, evs := keyedBenchSetup(b)
	ms := make([][]Match, len(evs))
	for i, e := range evs {
		ms[i] = m.Match(e, nil)
	}
	b.ResetTimer()
	var out []Alert
	for i := 0; i < b.N; i++ {
		j := i % len(evs)
		out = co.Observe(evs[j], ms[j], out[:0])
	}
}

// BenchmarkShardAddRelease: one input through a shard (held for a minute of grace,
// then applied), the engine's share of the Kafka path per correlated event.
func BenchmarkShardAddRelease(b *testing.B) {
	m, co, evs := keyedBenchSetup(b)
	k := co.Keyed(time.Minute)
	var ins []Input
	for i, e := range evs {
		ins = k.Inputs(e, m.Match(e, nil), "events/0", int64(i), ins)
	}
	b.ResetTimer()
	s := k.NewShard()
	var out []KeyedAlert
	for i := 0; i < b.N; i++ {
		in := ins[i%len(ins)]
		in.Time += int64(i/len(ins)) * int64(len(ins)) * int64(time.Second)
		in.Off = int64(i)
		if _, err := s.Add(in, int64(i)); err != nil {
			b.Fatal(err)
		}
		out = s.Release(out[:0])
		if i%1000 == 0 {
			s.Dirty()
		}
	}
}

// BenchmarkShardEncode: one key's state to its changelog value and back.
func BenchmarkShardEncode(b *testing.B) {
	m, co, evs := keyedBenchSetup(b)
	k := co.Keyed(time.Minute)
	s := k.NewShard()
	for i, e := range evs[:2000] {
		for _, in := range k.Inputs(e, m.Match(e, nil), "events/0", int64(i), nil) {
			s.Add(in, int64(i))
		}
	}
	s.Release(nil)
	key := s.Keys()[0]
	v := s.Encode(key)
	in := k.Inputs(evs[0], m.Match(evs[0], nil), "events/0", 0, nil)[0]
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Restore(key, s.Encode(key)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(v)), "state-bytes")
	b.ReportMetric(float64(len(in.Encode())), "input-bytes")
}

// FuzzShardRestore: whatever a changelog or repartition record holds, restoring and
// adding never panic, and a restored state encodes to what restores to itself.
func FuzzShardRestore(f *testing.F) {
	rs, diags := sigma.Parser{}.Parse(rule.Source{Path: "f.yml"}, []byte(baseRules+"---\ntitle: corr\nid: 00000000-0000-0000-0000-0000000000cc\n"+correlationCases[4].correlation+"\n"))
	if len(diags) > 0 {
		f.Fatal(diags)
	}
	m, _ := Compile(rs, Options{})
	co, _ := NewCorrelator(m)
	k := co.Keyed(time.Minute)
	s := k.NewShard()
	for i, e := range []*event.Event{proc(0, `C:\a.exe`, "pc1"), proc(90, `C:\b.exe`, "pc1"), proc(200, `C:\b.exe`, "pc1")} {
		for _, in := range k.Inputs(e, m.Match(e, nil), "events/0", int64(i), nil) {
			s.Add(in, int64(i))
			f.Add(in.Encode(), []byte(nil))
		}
		s.Release(nil)
		for _, key := range s.Keys() {
			f.Add([]byte(key), s.Encode(key))
		}
	}
	f.Add([]byte("c:00000000-0000-0000-0000-0000000000cc\x00pc1"), []byte(`{"v":1,"a":"c:00000000-0000-0000-0000-0000000000cc","g":["pc1"],"w":{"f":5,"t":[0,-7],"r":[9,1]},"p":[{"t":-1,"q":2}],"pos":3}`))
	f.Fuzz(func(t *testing.T, key, value []byte) {
		s := k.NewShard()
		if in, err := DecodeInput(key); err == nil {
			s.Add(in, 0)
			s.Release(nil)
			s.Expire(nil)
			s.Sweep()
		}
		if err := s.Restore(string(key), value); err != nil || value == nil {
			return
		}
		s.Release(nil)
		once := s.Encode(string(key))
		if once == nil {
			return
		}
		s2 := k.NewShard()
		if err := s2.Restore(string(key), once); err != nil {
			t.Fatalf("an encoding does not restore: %v\n%s", err, once)
		}
		if twice := s2.Encode(string(key)); !bytes.Equal(once, twice) {
			t.Fatalf("encoding changed by a restore:\n%s\n%s", once, twice)
		}
		s2.Flush(s2.Stream, nil)
	})
}
