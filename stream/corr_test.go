package stream

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ruledex/ruledex/engine"
	"github.com/ruledex/ruledex/event"
	"github.com/ruledex/ruledex/hunt"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/lang/sigma"
	"github.com/ruledex/ruledex/logread"
	"github.com/ruledex/ruledex/winevent"
)

// corrFixture: the acceptance fixture's events with the SigmaHQ rules plus the keyed
// correlation test set (engine/testdata), and the correlation alerts `ruledex hunt
// --json` prints for the files.
type corrFixture struct {
	*fixture
	hunter *hunt.Hunter
	want   []string // hunt's correlation alert lines, sorted
	// inputs counts the correlation inputs each value feeds (index of values).
	inputs []int
	// feeds tells the files (index of files) with an event that feeds a correlation.
	feeds map[int]bool
}

var (
	corrOnce sync.Once
	corrFix  *corrFixture
	corrErr  error
)

// correlationSet is shared with the engine's keyed-state tests: correlations over
// SigmaHQ rules that fire on the regression events.
const correlationSet = "../engine/testdata/keyed_correlations.yml"

// windowEndOnly is the set's correlation decided at its window's end (lt): a file hunt
// closes it at the end of the input, a stream (which has no end) at the window's end
// (Shard.Expire), so their alert times differ; the engine tests cover it.
const windowEndOnly = "6c0c7e3e-0000-4000-8000-000000000005"

func loadCorrFixture(t *testing.T) *corrFixture {
	t.Helper()
	f := loadFixture(t)
	rules := []string{corpustest.Path(t, "sigma", "sigmahq", "rules", "windows"),
		corpustest.Path(t, "sigma", "sigmahq", "rules-emerging-threats"), correlationSet}
	corrOnce.Do(func() {
		corrFix, corrErr = buildCorrFixture(f, rules)
	})
	if corrErr != nil {
		t.Fatal(corrErr)
	}
	return corrFix
}

func buildCorrFixture(f *fixture, rulePaths []string) (*corrFixture, error) {
	loaded, err := hunt.LoadRules(rulePaths, []hunt.Parser{sigma.Parser{}}, hunt.Filter{Exclude: []string{windowEndOnly}})
	if err != nil {
		return nil, err
	}
	wc, err := winevent.Routing()
	if err != nil {
		return nil, err
	}
	h := hunt.New(loaded.Rules, engine.Options{Router: engine.CatalogRouter{Catalog: wc}})
	var inputs []hunt.Input
	for _, p := range f.files {
		inputs = append(inputs, hunt.FileInput(p))
	}
	var out bytes.Buffer
	o := hunt.NewOutput(&out, hunt.JSON)
	if _, err := h.Run(inputs, o, hunt.Options{Workers: 2}); err != nil {
		return nil, err
	}
	o.Close()
	cf := &corrFixture{fixture: f, hunter: h, inputs: make([]int, len(f.values)), feeds: map[int]bool{}}
	// What each record feeds, so that a test can wait for a poll with something to lose.
	k := h.Correlator().Keyed(0)
	for i, v := range f.values {
		rd := logread.NewJSONReader(f.files[v.file], bytes.NewReader(v.b))
		var ev event.Event
		err := rd.Next(&ev)
		rd.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.files[v.file], err)
		}
		_, _, fed := h.MatchEvent(&ev, f.files[v.file], nil, nil)
		if fed == nil {
			continue
		}
		cf.inputs[i] = len(k.Inputs(&fed.Event, fed.Matches, "events/0", int64(i), nil))
		cf.feeds[v.file] = cf.inputs[i] > 0
	}
	corrs := 0
	for _, r := range loaded.Rules {
		if r.Correlation != nil {
			corrs++
		}
	}
	fired := map[string]bool{}
	for _, line := range strings.SplitAfter(out.String(), "\n") {
		var r struct {
			ID   string `json:"rule_id"`
			File string `json:"file"`
		}
		if line == "" || json.Unmarshal([]byte(line), &r) != nil || r.File != "" {
			continue
		}
		cf.want = append(cf.want, line)
		fired[r.ID] = true
	}
	sort.Strings(cf.want)
	if corrs != 4 || len(fired) != corrs {
		return nil, fmt.Errorf("the reference hunt raises alerts for %d of %d correlations (want 4 of 4): the fixture is broken", len(fired), corrs)
	}
	return cf, nil
}

// corrWorker runs one group member with keyed correlations.
func startCorrWorker(t *testing.T, addrs []string, f *corrFixture, crash func(string, pollState) bool) (*worker, *KeyedCorrelations) {
	t.Helper()
	kc, err := NewKeyedCorrelations(CorrConfig{Brokers: addrs, Group: "hunters", Hunter: f.hunter,
		// The events are produced file by file, not in time order, and workers read
		// their partitions at their own pace: a grace wider than the data's time span
		// (months) makes any arrival order correlate as hunt does.
		Grace: 3 * 365 * 24 * time.Hour, Idle: 300 * time.Millisecond,
		Report: func(err error) { t.Logf("correlations: %v", err) }})
	if err != nil {
		t.Fatal(err)
	}
	w, err := New(Config{Brokers: addrs, Topic: "events", Group: "hunters", Alerts: "alerts", FromBeginning: true,
		// A kill closes the client, which leaves the group at once; the session
		// timeout only has to outlast a heartbeat starved by a loaded machine.
		Hunter: f.hunter, Correlations: kc, MaxPoll: 7, Parallel: 2, SessionTimeout: 3 * time.Second, crash: crash,
		Report: func(err error) { t.Logf("worker: %v", err) },
		Opts:   []kgo.Opt{kgo.AllowAutoTopicCreation(), kgo.FetchMaxWait(100 * time.Millisecond)}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	wk := &worker{w: w, cancel: cancel, done: make(chan error, 1)}
	go func() { wk.done <- w.Run(ctx) }()
	t.Cleanup(func() { wk.stop(t); kc.Close() })
	return wk, kc
}

// corrLines returns the distinct correlation alerts read so far (those that name the
// repartition topic), as `hunt --json` lines: the added keys dropped.
func (a *alerts) corrLines(t *testing.T) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	rep, _ := CorrTopics("hunters")
	var out []string
	for id, line := range a.byID {
		if !strings.Contains(line, `"topic":"`+rep+`"`) {
			continue
		}
		cut := strings.LastIndex(line, `,"alert_id":`)
		if cut < 0 {
			t.Fatalf("alert %s: %s", id, line)
		}
		out = append(out, line[:cut]+"}\n")
	}
	sort.Strings(out)
	return out
}

func createCorrTopics(t *testing.T, addrs []string, partitions int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := CreateCorrTopics(ctx, kadm.NewClient(cl), "hunters", partitions, 1); err != nil {
		t.Fatal(err)
	}
	// Again: existing topics are fine.
	if err := CreateCorrTopics(ctx, kadm.NewClient(cl), "hunters", partitions, 1); err != nil {
		t.Fatalf("creating existing topics: %v", err)
	}
}

// TestCorrelationsGroup: correlation alerts whose events were spread over the events
// partitions (and read by three workers) arrive exactly as `ruledex hunt --json`
// prints them for the same files, once each by alert_id — also when a worker is
// killed mid-stream and another restores its state from the changelog.
func TestCorrelationsGroup(t *testing.T) {
	f := loadCorrFixture(t)
	half := len(f.values) / 2
	tests := []struct {
		name string
		run  func(t *testing.T, addrs []string, a *alerts) []*KeyedCorrelations
	}{
		{"three workers", func(t *testing.T, addrs []string, a *alerts) []*KeyedCorrelations {
			var kcs []*KeyedCorrelations
			var ws []*worker
			for range 3 {
				w, kc := startCorrWorker(t, addrs, f, nil)
				kcs, ws = append(kcs, kc), append(ws, w)
			}
			// All three in the group before the events come, or the first may read
			// them all.
			settleCorr(t, ws)
			produceValues(t, addrs, f.values)
			waitCorr(t, a, f)
			// The correlated events were read by several workers and brought together.
			fed := 0
			for _, kc := range kcs {
				if kc.Stats().Inputs.Load() > 0 {
					fed++
				}
			}
			if fed < 2 {
				t.Errorf("%d of 3 workers fed correlation inputs: the events were not spread", fed)
			}
			return kcs
		}},
		// Killed after its correlation state was written to the changelog, before its
		// alerts were acknowledged: the restored state must still raise them (re-emitted)
		// and not count the re-read inputs twice.
		{"killed after the changelog write, restarted", func(t *testing.T, addrs []string, a *alerts) []*KeyedCorrelations {
			return killedCorr(t, addrs, a, f, "produced", half)
		}},
		// A worker joining mid-stream takes repartition partitions whose inputs are
		// still held (the grace is wide): it must restore them from the changelog.
		{"worker added mid-stream", func(t *testing.T, addrs []string, a *alerts) []*KeyedCorrelations {
			w1, kc1 := startCorrWorker(t, addrs, f, nil)
			settleCorr(t, []*worker{w1})
			produceValues(t, addrs, f.values[:half])
			waitApplied(t, f, []*KeyedCorrelations{kc1}, half)
			w2, kc2 := startCorrWorker(t, addrs, f, nil)
			settleCorr(t, []*worker{w1, w2})
			// Which partitions move is the group's choice: if one with state went to the
			// joining worker, it must have restored it (Assigned runs after the
			// assignment shows in the metrics, so wait for it).
			rep, _ := CorrTopics("hunters")
			keyed := keyedPartitions(t, f, half)
			var took []int32
			for _, p := range w2.w.Metrics().held(rep) {
				if keyed[p] {
					took = append(took, p)
				}
			}
			deadline := time.Now().Add(30 * time.Second)
			for len(took) > 0 && kc2.Stats().Restored.Load() == 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if len(took) > 0 && kc2.Stats().Restored.Load() == 0 {
				t.Errorf("the joining worker took repartition partitions %v with state and restored no key from the changelog", took)
			}
			t.Logf("the joining worker took keyed partitions %v and restored %d keys", took, kc2.Stats().Restored.Load())
			produceValues(t, addrs, f.values[half:])
			waitCorr(t, a, f)
			return []*KeyedCorrelations{kc1, kc2}
		}},
		// Killed before feeding the repartition topic.
		{"killed before feeding, restarted", func(t *testing.T, addrs []string, a *alerts) []*KeyedCorrelations {
			return killedCorr(t, addrs, a, f, "matched", half)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := cluster(t, 6)
			createCorrTopics(t, c.ListenAddrs(), 4)
			a := readAlerts(t, c.ListenAddrs(), 1)
			kcs := tc.run(t, c.ListenAddrs(), a)
			got := a.corrLines(t)
			if fmt.Sprint(got) != fmt.Sprint(f.want) {
				t.Errorf("correlation alerts:\n%s\nhunt prints:\n%s", strings.Join(got, ""), strings.Join(f.want, ""))
			}
			for _, kc := range kcs {
				s := kc.Stats()
				if n := s.Late.Load() + s.BadRecords.Load(); n > 0 {
					t.Errorf("%d late or bad correlation records", n)
				}
			}
		})
	}
}

// waitCorr waits until every correlation alert hunt prints has arrived, then a little
// longer for any extra one.
func waitCorr(t *testing.T, a *alerts, f *corrFixture) {
	t.Helper()
	a.until(90*time.Second, func(int) bool { return len(a.corrLines(t)) >= len(f.want) })
	end := time.Now().Add(time.Second)
	a.until(5*time.Second, func(int) bool { return time.Now().After(end) })
}

// settleCorr waits until every partition (6 events, 4 repartition) is held and
// each worker holds one.
func settleCorr(t *testing.T, ws []*worker) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, each := 0, true
		for _, w := range ws {
			k := w.w.Metrics().Snapshot().AssignedPartitions
			n += k
			each = each && k > 0
		}
		if n == 6+4 && each {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the group did not settle: %d partitions assigned", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// held returns the partitions of topic a worker holds.
func (m *Metrics) held(topic string) []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []int32
	for p := range m.assigned {
		if p.Topic == topic {
			out = append(out, p.Partition)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// killedCorr kills a worker at step of a poll that has something to lose, then starts
// two others. The kill is decided by what the poll holds, never by timing or by how
// the group happened to assign the partitions.
//
// With "produced", the worker runs alone and is killed in the first poll whose
// Consume returned correlation alerts, after their state went to the changelog and
// before they were acknowledged: only re-emission from the restored state can deliver
// them.
//
// With "matched", three workers share the stream. Once the first half's inputs are
// applied, the victim is a worker holding an events partition (one that holds
// correlation state if any does); the second half's events that feed correlations
// are produced to that partition, and the victim is killed in the first poll that
// matched some, before it feeds them.
func killedCorr(t *testing.T, addrs []string, a *alerts, f *corrFixture, step string, half int) []*KeyedCorrelations {
	var crashed atomic.Bool
	victimAt := atomic.Int32{}
	victimAt.Store(-1)
	var ws []*worker
	var kcs []*KeyedCorrelations
	n := 1
	if step == "matched" {
		n = 3
	}
	for i := range n {
		me := int32(i)
		crash := func(s string, p pollState) bool {
			if victimAt.Load() != me || s != step {
				return false
			}
			if step == "produced" && p.CorrAlerts == 0 || step == "matched" && p.Fed == 0 {
				return false
			}
			return !crashed.Swap(true)
		}
		w, kc := startCorrWorker(t, addrs, f, crash)
		ws, kcs = append(ws, w), append(kcs, kc)
	}
	settleCorr(t, ws)
	victim, victimHadState := 0, false
	if step == "produced" {
		victimAt.Store(0)
		victimHadState = true // it holds every partition
		produceValues(t, addrs, f.values)
	} else {
		produceValues(t, addrs, f.values[:half])
		waitApplied(t, f, kcs, half)
		victim = -1
		for i, w := range ws {
			if len(w.w.Metrics().held("events")) == 0 {
				continue
			}
			has := kcs[i].Stats().Applied.Load() > 0
			if victim < 0 || has && !victimHadState {
				victim, victimHadState = i, has
			}
		}
		if victim < 0 {
			t.Fatal("no worker holds an events partition")
		}
		to := ws[victim].w.Metrics().held("events")[0]
		victimAt.Store(int32(victim))
		produceRouted(t, addrs, f.values[half:], func(v value) (int32, bool) { return to, f.feeds[v.file] })
	}
	deadline := time.Now().Add(60 * time.Second)
	for !crashed.Load() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !crashed.Load() {
		t.Fatalf("worker %d was never killed at %q although the poll it waits for was produced to it", victim, step)
	}
	if err := ws[victim].stop(t); err != errCrashed {
		t.Fatalf("killed worker: %v", err)
	}
	others := append(slices.Clone(kcs[:victim]), kcs[victim+1:]...)
	for range 2 {
		_, k := startCorrWorker(t, addrs, f, nil)
		others = append(others, k)
	}
	waitCorr(t, a, f)
	var restored, reemitted int64
	for _, k := range others {
		restored += k.Stats().Restored.Load()
		reemitted += k.Stats().Reemitted.Load()
	}
	// The killed worker's correlation state must reach its successors. (A victim with
	// no state — the group gave the keyed partitions to the others — has none to hand
	// over; the alerts compared by the caller still check nothing was lost.)
	if (step == "produced" || victimHadState) && restored == 0 {
		t.Error("no worker restored any key from the changelog after the kill")
	}
	if step == "produced" && reemitted == 0 {
		t.Error("the alerts the killed worker had not delivered were not re-emitted")
	}
	t.Logf("victim %d (state: %v), %d keys restored, %d alerts re-emitted by the others", victim, victimHadState, restored, reemitted)
	return append(others, kcs[victim])
}

// waitApplied waits until the correlation inputs of the first n values were taken
// into keyed state (and so written to the changelog) by kcs.
func waitApplied(t *testing.T, f *corrFixture, kcs []*KeyedCorrelations, n int) {
	t.Helper()
	want := 0
	for _, k := range f.inputs[:n] {
		want += k
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var applied int64
		for _, kc := range kcs {
			s := kc.Stats()
			applied += s.Applied.Load() + s.Duplicates.Load() + s.Late.Load()
		}
		if applied >= int64(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of the %d correlation inputs of the first %d events applied", applied, want, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// keyedPartitions are the repartition partitions (of 4) the first n values put
// correlation state in.
func keyedPartitions(t *testing.T, f *corrFixture, n int) map[int32]bool {
	t.Helper()
	k := f.hunter.Correlator().Keyed(0)
	out := map[int32]bool{}
	for _, v := range f.values[:n] {
		rd := logread.NewJSONReader(f.files[v.file], bytes.NewReader(v.b))
		var ev event.Event
		err := rd.Next(&ev)
		rd.Close()
		if err != nil {
			t.Fatal(err)
		}
		_, _, fed := f.hunter.MatchEvent(&ev, f.files[v.file], nil, nil)
		if fed == nil {
			continue
		}
		for _, in := range k.Inputs(&fed.Event, fed.Matches, "events/0", 0, nil) {
			out[keyPartition(in.Key(), 4)] = true
		}
	}
	return out
}

// produceRouted produces events like produceValues, except those route sends to a
// partition of its choosing.
func produceRouted(t *testing.T, addrs []string, vs []value, route func(value) (int32, bool)) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	byKey := kgo.StickyKeyPartitioner(nil).ForTopic("events")
	var rs []*kgo.Record
	for _, v := range vs {
		r := &kgo.Record{Topic: "events", Key: []byte(strconv.Itoa(v.file)), Value: v.b}
		if p, ok := route(v); ok {
			r.Partition = p
		} else {
			r.Partition = int32(byKey.Partition(r, 6))
		}
		rs = append(rs, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// produceValues produces events, one record each, keyed by file (the key spreads
// them over the partitions).
func produceValues(t *testing.T, addrs []string, vs []value) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var rs []*kgo.Record
	for _, v := range vs {
		rs = append(rs, &kgo.Record{Topic: "events", Key: []byte(strconv.Itoa(v.file)), Value: v.b})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// TestCorrTopicsChecked: missing or mismatched internal topics are refused, naming them.
func TestCorrTopicsChecked(t *testing.T) {
	f := loadCorrFixture(t)
	c := cluster(t, 2)
	addrs := c.ListenAddrs()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	for _, c := range []struct {
		group    string
		rep, chl int32 // partitions; 0: no topic
		want     string
	}{
		{"nochangelog", 4, 0, "nochangelog-corr-changelog is missing"},
		{"mismatch", 4, 3, "need the same count"},
		{"fine", 4, 4, ""},
	} {
		rep, chl := CorrTopics(c.group)
		for _, tp := range []struct {
			name string
			n    int32
		}{{rep, c.rep}, {chl, c.chl}} {
			if tp.n == 0 {
				continue
			}
			if r, err := adm.CreateTopic(ctx, tp.n, 1, nil, tp.name); err != nil || r.Err != nil {
				t.Fatal(err, r.Err)
			}
		}
		kc, err := NewKeyedCorrelations(CorrConfig{Brokers: addrs, Group: c.group, Hunter: f.hunter})
		if err != nil {
			t.Fatal(err)
		}
		n, err := kc.partitionCount(ctx)
		kc.Close()
		switch {
		case c.want == "" && (err != nil || n != c.rep):
			t.Errorf("%s: %d partitions, %v; want %d", c.group, n, err, c.rep)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want an error with %q", c.group, err, c.want)
		}
	}
}

// TestCorrConsume: on one repartition partition, an event older than the stream time
// by more than the grace is counted and reported with its location, a duplicate and
// an undecodable record are counted, nothing stops; a second instance restores the
// same state from the changelog.
func TestCorrConsume(t *testing.T) {
	f := loadCorrFixture(t)
	c := cluster(t, 1)
	addrs := c.ListenAddrs()
	createCorrTopics(t, addrs, 1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var reports []string
	newKC := func() *KeyedCorrelations {
		kc, err := NewKeyedCorrelations(CorrConfig{Brokers: addrs, Group: "hunters", Hunter: f.hunter, Grace: time.Minute,
			Idle: 10 * time.Millisecond, Report: func(err error) { reports = append(reports, err.Error()) }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(kc.Close)
		return kc
	}
	rep, _ := CorrTopics("hunters")
	kc := newKC()
	if err := kc.Assigned(ctx, cl, []Partition{{rep, 0}}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2025, 12, 11, 6, 0, 0, 0, time.UTC)
	in := func(sec int, off int64) []byte {
		x := engine.Input{Agg: "c:6c0c7e3e-0000-4000-8000-000000000001", Group: []string{"pc1"},
			Time: t0.Add(time.Duration(sec) * time.Second).UnixNano(), Src: "events/0", Off: off}
		return x.Encode()
	}
	values := [][]byte{in(0, 0), in(600, 1), in(100, 2), in(0, 0), []byte("{"), in(610, 3)}
	var recs []*kgo.Record
	for i, v := range values {
		recs = append(recs, &kgo.Record{Topic: rep, Partition: 0, Offset: int64(i), Value: v})
	}
	if _, err := kc.Consume(ctx, cl, recs); err != nil {
		t.Fatal(err)
	}
	// The worker commits the poll.
	if _, err := kadm.NewClient(cl).CommitOffsets(ctx, "hunters", kadm.Offsets{rep: {0: {Topic: rep, Partition: 0, At: int64(len(values)), LeaderEpoch: -1}}}); err != nil {
		t.Fatal(err)
	}
	s := kc.Stats()
	if s.Late.Load() != 1 || s.Duplicates.Load() != 1 || s.BadRecords.Load() != 1 || s.Applied.Load() != 3 {
		t.Errorf("late %d, duplicates %d, bad %d, applied %d; want 1, 1, 1, 3",
			s.Late.Load(), s.Duplicates.Load(), s.BadRecords.Load(), s.Applied.Load())
	}
	for _, want := range []string{rep + "/0@2: event of events/0 at 2025-12-11T06:01:40Z came 8m20s after", rep + "/0@4: correlation input"} {
		found := false
		for _, r := range reports {
			found = found || strings.Contains(r, want)
		}
		if !found {
			t.Errorf("no report with %q in %q", want, reports)
		}
	}
	key := "c:6c0c7e3e-0000-4000-8000-000000000001\x00pc1"
	before := kc.shards[0].s.Encode(key)
	if before == nil {
		t.Fatal("no state for the key")
	}
	kc2 := newKC()
	if err := kc2.Assigned(ctx, cl, []Partition{{rep, 0}}); err != nil {
		t.Fatal(err)
	}
	if after := kc2.shards[0].s.Encode(key); !bytes.Equal(before, after) {
		t.Errorf("restored state\n%s\nwritten\n%s", after, before)
	}
	if got, want := kc2.shards[0].s.Stream, t0.Add(610*time.Second); !got.Equal(want) {
		t.Errorf("restored stream time %v, want %v", got, want)
	}
	// A worker that restored the held inputs and releases them on a tick, before
	// reading any record, raises an alert that no commit has covered yet: whoever
	// restores after it must raise it again.
	kcT := newKC()
	if err := kcT.Assigned(ctx, cl, []Partition{{rep, 0}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if as, err := kcT.Consume(ctx, cl, nil); err != nil || len(as) != 1 {
		t.Fatalf("tick after restore: %d alerts, %v; want 1", len(as), err)
	}
	kcU := newKC()
	if err := kcU.Assigned(ctx, cl, []Partition{{rep, 0}}); err != nil {
		t.Fatal(err)
	}
	if n := kcU.Stats().Reemitted.Load(); n != 1 {
		t.Errorf("after a tick's alert on restored inputs, the next owner raises %d again, want 1", n)
	}

	var text bytes.Buffer
	if err := kc.WriteText(&text); err != nil || !strings.Contains(text.String(), "\nruledex_corr_late_total 1\n") {
		t.Errorf("metrics: %v\n%s", err, text.String())
	}

	// Quiet: the tick releases the held events (0, 600 and 610 s: three in the hour).
	time.Sleep(20 * time.Millisecond)
	as, err := kc.Consume(ctx, cl, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 1 || as[0].Record.Rule.ID != "6c0c7e3e-0000-4000-8000-000000000001" || as[0].Where.Topic != rep {
		t.Fatalf("tick alerts %+v, want the event_count alert", as)
	}
	// A worker taking the partition now cannot know the alert was delivered (no commit
	// since): it raises it again, with the same key.
	kc3 := newKC()
	if err := kc3.Assigned(ctx, cl, []Partition{{rep, 0}}); err != nil {
		t.Fatal(err)
	}
	again, err := kc3.Consume(ctx, cl, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 1 || again[0].Key != as[0].Key {
		t.Errorf("restored worker raises %+v, want the undelivered alert again", again)
	}
	// The worker's next call proves the alert delivered: handed over after it, the
	// partition's next owner is silent.
	if _, err := kc.Consume(ctx, cl, nil); err != nil {
		t.Fatal(err)
	}
	if err := kc.Revoked(ctx, cl, []Partition{{rep, 0}}, false); err != nil {
		t.Fatal(err)
	}
	kc4 := newKC()
	if err := kc4.Assigned(ctx, cl, []Partition{{rep, 0}}); err != nil {
		t.Fatal(err)
	}
	if n := kc4.Stats().Reemitted.Load(); n != 0 {
		t.Errorf("%d alerts raised again after a clean hand-over", n)
	}
}
