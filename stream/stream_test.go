package stream

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ruledex/ruledex/engine"
	"github.com/ruledex/ruledex/event"
	"github.com/ruledex/ruledex/hunt"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/internal/regression"
	"github.com/ruledex/ruledex/lang/sigma"
	"github.com/ruledex/ruledex/rule"
	"github.com/ruledex/ruledex/winevent"
)

// The acceptance fixture: the SigmaHQ rules the regression cases test, their JSON
// event files, and what `ruledex hunt --json` (hunt.Hunter.Run on the files) prints
// for them.
type fixture struct {
	hunter *hunt.Hunter
	files  []string // regression JSON twins
	// values are the events of the files, each object compacted to one line: one
	// Kafka record each.
	values []value
	// want holds Run's JSON lines of single-event matches, sorted.
	want []string
	// perFile counts want's lines per file.
	perFile map[string]int
}

type value struct {
	file int
	b    []byte
}

var (
	fixOnce sync.Once
	fix     *fixture
	fixErr  error
)

func loadFixture(t testing.TB) *fixture {
	t.Helper()
	cases := regression.Cases(t)
	rules := []string{corpustest.Path(t, "sigma", "sigmahq", "rules", "windows"),
		corpustest.Path(t, "sigma", "sigmahq", "rules-emerging-threats")}
	fixOnce.Do(func() {
		fix, fixErr = buildFixture(cases, rules)
	})
	if fixErr != nil {
		t.Fatal(fixErr)
	}
	return fix
}

func buildFixture(cases []regression.Case, rulePaths []string) (*fixture, error) {
	loaded, err := hunt.LoadRules(rulePaths, []hunt.Parser{sigma.Parser{}}, hunt.Filter{})
	if err != nil {
		return nil, err
	}
	wc, err := winevent.Routing()
	if err != nil {
		return nil, err
	}
	h := hunt.New(loaded.Rules, engine.Options{Router: engine.CatalogRouter{Catalog: wc}})
	f := &fixture{hunter: h, perFile: map[string]int{}}
	seen := map[string]bool{}
	var inputs []hunt.Input
	for _, c := range cases {
		p := c.JSON()
		if seen[p] {
			continue
		}
		seen[p] = true
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		// Some twins hold several objects one after the other.
		dec := json.NewDecoder(bytes.NewReader(data))
		for dec.More() {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			var b bytes.Buffer
			if err := json.Compact(&b, raw); err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			f.values = append(f.values, value{len(f.files), b.Bytes()})
		}
		f.files = append(f.files, p)
		inputs = append(inputs, hunt.FileInput(p))
	}
	var out bytes.Buffer
	o := hunt.NewOutput(&out, hunt.JSON)
	sum, err := h.Run(inputs, o, hunt.Options{Workers: 2})
	if err != nil {
		return nil, err
	}
	o.Close()
	if sum.ReadErrors > 0 || sum.Events == 0 {
		return nil, fmt.Errorf("reference hunt: %d read errors, %d events", sum.ReadErrors, sum.Events)
	}
	for _, line := range strings.SplitAfter(out.String(), "\n") {
		if line == "" {
			continue
		}
		var r struct {
			File   string            `json:"file"`
			Fields map[string]string `json:"fields"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return nil, fmt.Errorf("reference line %q: %w", line, err)
		}
		if r.File == "" {
			// Correlation alerts (no file) are keyed across workers by the
			// Correlations hook, tested with it.
			continue
		}
		f.want = append(f.want, line)
		f.perFile[r.File]++
	}
	sort.Strings(f.want)
	return f, nil
}

// cluster is an in-process Kafka with the events and alerts topics.
func cluster(t *testing.T, partitions int32) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(partitions, "events"), kfake.SeedTopics(3, "alerts"),
		kfake.AllowAutoTopicCreation(), kfake.GroupMinSessionTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// produce produces the fixture's events rounds times, keyed by file index (the key
// spreads them over partitions and tells the test which file a record holds). Each
// round's records are new events to the workers (other offsets): they alert again.
func produce(t *testing.T, addrs []string, f *fixture, rounds int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var rs []*kgo.Record
	for range rounds {
		for _, v := range f.values {
			rs = append(rs, &kgo.Record{Topic: "events", Key: []byte(strconv.Itoa(v.file)), Value: v.b})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// alerts reads the alerts topic.
type alerts struct {
	t      *testing.T
	rounds int // the fixture was produced this many times
	cl     *kgo.Client
	evs    *kgo.Client
	mu     sync.Mutex
	raw    int
	byID   map[string]string // alert_id → line
	where  map[string]string // "partition/offset" of an events record → its file
}

func readAlerts(t *testing.T, addrs []string, rounds int) *alerts {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics("alerts"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	evs, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics("events"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	t.Cleanup(evs.Close)
	return &alerts{t: t, rounds: rounds, cl: cl, evs: evs, byID: map[string]string{}, where: map[string]string{}}
}

// until polls the alerts until cond holds for the distinct alerts (by alert_id) or
// the time is up.
func (a *alerts) until(d time.Duration, cond func(n int) bool) {
	a.t.Helper()
	deadline := time.Now().Add(d)
	for {
		a.mu.Lock()
		n := len(a.byID)
		a.mu.Unlock()
		if cond(n) {
			return
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("timed out with %d distinct alerts (%d records)", n, a.raw)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		fs := a.cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			var x struct {
				ID string `json:"alert_id"`
			}
			if err := json.Unmarshal(r.Value, &x); err != nil || x.ID == "" {
				a.t.Errorf("alert %q: not JSON with an alert_id: %v", r.Value, err)
				return
			}
			if x.ID != string(r.Key) {
				a.t.Errorf("alert key %q is not its alert_id %q", r.Key, x.ID)
			}
			a.mu.Lock()
			a.raw++
			if old, ok := a.byID[x.ID]; ok && old != string(r.Value) {
				a.t.Errorf("alert_id %s names two alerts:\n%s\n%s", x.ID, old, r.Value)
			}
			a.byID[x.ID] = string(r.Value)
			a.mu.Unlock()
		})
	}
}

// asHunt turns the alerts back into the `hunt --json` lines of the files their
// events came from: the added keys dropped, the file put back.
func (a *alerts) asHunt(f *fixture) []string {
	a.t.Helper()
	// Which file each events record holds: read the events topic back (whoever
	// produced it, franz-go or kcat).
	for len(a.where) < a.rounds*len(f.values) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		fs := a.evs.PollFetches(ctx)
		timedOut := ctx.Err() != nil
		cancel()
		if timedOut {
			a.t.Fatalf("events topic: %d of %d records read back", len(a.where), a.rounds*len(f.values))
		}
		fs.EachRecord(func(r *kgo.Record) {
			i, err := strconv.Atoi(string(r.Key))
			if err != nil || i < 0 || i >= len(f.files) {
				a.t.Fatalf("events record key %q", r.Key)
			}
			a.where[fmt.Sprintf("%d/%d", r.Partition, r.Offset)] = f.files[i]
		})
	}
	var out []string
	for id, line := range a.byID {
		var x struct {
			ID        string `json:"alert_id"`
			Topic     string `json:"topic"`
			Partition int32  `json:"partition"`
			Offset    int64  `json:"offset"`
		}
		if err := json.Unmarshal([]byte(line), &x); err != nil {
			a.t.Fatal(err)
		}
		cut := strings.LastIndex(line, `,"alert_id":`)
		if cut < 0 || x.Topic != "events" {
			a.t.Fatalf("alert %s: %s", id, line)
		}
		file, ok := a.where[fmt.Sprintf("%d/%d", x.Partition, x.Offset)]
		if !ok {
			a.t.Fatalf("alert %s names no events record: %s", id, line)
		}
		quoted, _ := json.Marshal(file)
		h := strings.Replace(line[:cut]+"}\n", fmt.Sprintf(`"file":"events/%d"`, x.Partition), `"file":`+string(quoted), 1)
		out = append(out, h)
	}
	sort.Strings(out)
	return out
}

func (a *alerts) check(f *fixture) {
	a.t.Helper()
	got := a.asHunt(f)
	if len(got) != a.rounds*len(f.want) {
		a.t.Errorf("%d distinct alerts; `hunt --json` on the files prints %d matches, produced %d times", len(got), len(f.want), a.rounds)
	}
	g, w := map[string]int{}, map[string]int{}
	for _, s := range got {
		g[s]++
	}
	for _, s := range f.want {
		w[s] += a.rounds
	}
	n := 0
	for s, k := range w {
		if g[s] != k && n < 5 {
			a.t.Errorf("hunt prints %d×, Kafka alerts hold it %d×:\n%s", k, g[s], s)
			n++
		}
	}
	for s, k := range g {
		if w[s] == 0 && n < 10 {
			a.t.Errorf("Kafka alert %d× that hunt does not print:\n%s", k, s)
			n++
		}
	}
}

// worker runs one group member as the CLI does, until stop or a crash.
type worker struct {
	w      *Worker
	cancel context.CancelFunc
	done   chan error
}

func startWorker(t *testing.T, addrs []string, f *fixture, crash func(string, pollState) bool) *worker {
	t.Helper()
	w, err := New(Config{Brokers: addrs, Topic: "events", Group: "hunters", Alerts: "alerts", FromBeginning: true,
		Hunter: f.hunter, MaxPoll: 7, Parallel: 2, SessionTimeout: time.Second, crash: crash,
		Report: func(err error) { t.Logf("worker: %v", err) },
		Opts:   []kgo.Opt{kgo.AllowAutoTopicCreation(), kgo.FetchMaxWait(100 * time.Millisecond)}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	wk := &worker{w: w, cancel: cancel, done: make(chan error, 1)}
	go func() { wk.done <- w.Run(ctx) }()
	t.Cleanup(func() { wk.stop(t) })
	return wk
}

// settle waits until every worker holds a partition: events produced before that may
// all go to the first worker in, and the test would not test sharing.
func settle(t *testing.T, ws ...*worker) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, w := range ws {
		for w.w.Metrics().Snapshot().AssignedPartitions == 0 {
			if time.Now().After(deadline) {
				t.Fatal("a worker got no partition within 30s")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func (wk *worker) stop(t *testing.T) error {
	wk.cancel()
	select {
	case err, ok := <-wk.done:
		if ok {
			close(wk.done)
		}
		return err
	case <-time.After(30 * time.Second):
		t.Error("worker did not stop within 30s")
		return nil
	}
}

// TestGroup: three workers in one group produce, deduplicated by alert_id, exactly the
// matches `ruledex hunt --json` prints for the same files — also when one is killed
// mid-stream and restarted, and when one joins mid-stream.
func TestGroup(t *testing.T) {
	f := loadFixture(t)
	if len(f.want) < 100 {
		t.Fatalf("the reference hunt prints %d matches for %d files: the fixture is broken", len(f.want), len(f.files))
	}
	const rounds = 8 // per phase: enough polls that a worker dies or joins mid-stream
	t.Logf("%d files, %d records, %d matches per round", len(f.files), len(f.values), len(f.want))
	tests := []struct {
		name string
		run  func(t *testing.T, addrs []string, a *alerts)
	}{
		{"three workers", func(t *testing.T, addrs []string, a *alerts) {
			ws := []*worker{startWorker(t, addrs, f, nil), startWorker(t, addrs, f, nil), startWorker(t, addrs, f, nil)}
			settle(t, ws...)
			produce(t, addrs, f, 2*rounds)
			a.until(90*time.Second, func(n int) bool { return n >= a.rounds*len(f.want) })
			busy := 0
			for _, w := range ws {
				if w.w.Metrics().Snapshot().Events > 0 {
					busy++
				}
			}
			if busy < 2 {
				t.Errorf("%d of 3 workers read events: the group did not share the partitions", busy)
			}
		}},
		// Killed after producing its alerts but before committing: the successor reads
		// the poll again and produces the same alerts again (same ids).
		{"killed after produce, restarted", func(t *testing.T, addrs []string, a *alerts) {
			killed(t, addrs, a, f, "flushed", rounds)
			if a.raw == len(a.byID) {
				t.Errorf("no alert was delivered twice: the victim's last poll had no match or was committed")
			}
		}},
		// Killed after matching, before producing anything.
		{"killed before produce, restarted", func(t *testing.T, addrs []string, a *alerts) {
			killed(t, addrs, a, f, "matched", rounds)
		}},
		{"worker added mid-stream", func(t *testing.T, addrs []string, a *alerts) {
			w1 := startWorker(t, addrs, f, nil)
			produce(t, addrs, f, rounds)
			a.until(60*time.Second, func(n int) bool { return n > 0 })
			w2 := startWorker(t, addrs, f, nil)
			settle(t, w2)
			produce(t, addrs, f, rounds)
			a.until(90*time.Second, func(n int) bool { return n >= a.rounds*len(f.want) })
			if r := w1.w.Metrics().Snapshot().Rebalances; r < 2 {
				t.Errorf("first worker saw %d partition moves, want a second one when the other joined", r)
			}
			if w2.w.Metrics().Snapshot().Events == 0 {
				t.Errorf("the worker added mid-stream read no event")
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := cluster(t, 6)
			a := readAlerts(t, c.ListenAddrs(), 2*rounds)
			tc.run(t, c.ListenAddrs(), a)
			a.check(f)
		})
	}
}

// killed runs three workers, one of which dies at step of the first poll from its
// third on that holds matches (a poll without any would lose nothing, and the test
// would test nothing); a new worker takes its place.
func killed(t *testing.T, addrs []string, a *alerts, f *fixture, step string, rounds int) {
	var polls atomic.Int32
	crash := func(s string, p pollState) bool {
		if s == "matched" && p.Records > 0 {
			polls.Add(1)
		}
		return s == step && p.Matches > 0 && polls.Load() >= 3
	}
	victim := startWorker(t, addrs, f, crash)
	settle(t, victim, startWorker(t, addrs, f, nil), startWorker(t, addrs, f, nil))
	produce(t, addrs, f, rounds)
	select {
	case err := <-victim.done:
		close(victim.done)
		if err != errCrashed {
			t.Fatalf("victim ended with %v, want the test crash", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the victim never reached its third poll")
	}
	startWorker(t, addrs, f, nil)
	produce(t, addrs, f, rounds)
	a.until(90*time.Second, func(n int) bool { return n >= a.rounds*len(f.want) })
	t.Logf("%d alert records, %d distinct", a.raw, len(a.byID))
}

// TestKcat: events produced by an independent client (librdkafka's kcat, Debian
// package kafkacat) are read and matched like franz-go's.
func TestKcat(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		if kcat, err = exec.LookPath("kafkacat"); err != nil {
			t.Fatal("kcat (Debian package kafkacat) is needed for the interoperability test")
		}
	}
	f := loadFixture(t)
	c := cluster(t, 4)
	addrs := c.ListenAddrs()
	var in bytes.Buffer
	for _, v := range f.values {
		fmt.Fprintf(&in, "%d\t%s\n", v.file, v.b)
	}
	file := filepath.Join(t.TempDir(), "events.tsv")
	if err := os.WriteFile(file, in.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	a := readAlerts(t, addrs, 1)
	startWorker(t, addrs, f, nil)
	startWorker(t, addrs, f, nil)
	cmd := exec.Command(kcat, "-P", "-b", strings.Join(addrs, ","), "-t", "events", "-K", "\t", "-l", file)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}
	a.until(60*time.Second, func(n int) bool { return n >= len(f.want) })
	a.check(f)
}

// TestBadRecords: records that are not JSON events are reported with their offset
// and counted, and never cost their neighbours (in the same poll and partition) an
// alert; a record holding an array is several events, each with its own alert_id.
func TestBadRecords(t *testing.T) {
	f := loadFixture(t)
	// A file of one event that some rule matches.
	good := -1
	for i, v := range f.values {
		n := 0
		for _, w := range f.values {
			if w.file == v.file {
				n++
			}
		}
		if n == 1 && f.perFile[f.files[v.file]] > 0 {
			good = i
			break
		}
	}
	if good < 0 {
		t.Fatal("no single-event file with a match in the fixture")
	}
	ev := f.values[good].b
	per := f.perFile[f.files[f.values[good].file]]
	tests := []struct {
		name   string
		value  string
		alerts int    // alerts of this record
		err    string // in the reported error, "" for none
	}{
		{"event", string(ev), per, ""},
		{"truncated", string(ev[:len(ev)/2]), 0, "unterminated JSON value"},
		{"string", `"4688"`, 0, "want a JSON object"},
		{"empty", ``, 0, "no JSON event in the record"},
		{"unterminated string", `{"EventID":"4688`, 0, "unterminated JSON value"},
		{"two events", "[" + string(ev) + "," + string(ev) + "]", 2 * per, ""},
		{"text", `EventID=4688 Image=C:\x.exe`, 0, "unexpected 'E'"},
		{"event again", string(ev), per, ""},
	}
	c := cluster(t, 1)
	addrs := c.ListenAddrs()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var rs []*kgo.Record
	want := 0
	for _, tc := range tests {
		rs = append(rs, &kgo.Record{Topic: "events", Value: []byte(tc.value)})
		want += tc.alerts
	}
	if err := cl.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var reported []string
	w, err := New(Config{Brokers: addrs, Topic: "events", Group: "g", Alerts: "alerts", FromBeginning: true, Hunter: f.hunter,
		Report: func(err error) { mu.Lock(); reported = append(reported, err.Error()); mu.Unlock() },
		Opts:   []kgo.Opt{kgo.FetchMaxWait(100 * time.Millisecond)}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	a := readAlerts(t, addrs, 1)
	a.until(60*time.Second, func(n int) bool { return n >= want })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	perOffset := map[int64]int{}
	for _, line := range a.byID {
		var x struct {
			Offset int64 `json:"offset"`
		}
		json.Unmarshal([]byte(line), &x)
		perOffset[x.Offset]++
	}
	for i, tc := range tests {
		if perOffset[int64(i)] != tc.alerts {
			t.Errorf("%s (offset %d): %d alerts, want %d", tc.name, i, perOffset[int64(i)], tc.alerts)
		}
		if tc.err == "" {
			continue
		}
		found := false
		for _, r := range reported {
			if strings.Contains(r, fmt.Sprintf("events/0@%d", i)) && strings.Contains(r, tc.err) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s (offset %d): no reported error naming it with %q in %q", tc.name, i, tc.err, reported)
		}
	}
	if n := w.Metrics().Snapshot().DecodeErrors; n != 5 {
		t.Errorf("%d decode errors counted, want 5: %q", n, reported)
	}
}

// fakeCorr is a Correlations that repartitions fed events by computer to its topic
// and raises one alert per repartitioned record, checking the worker's side of the
// hook contract as it goes.
type fakeCorr struct {
	t          *testing.T
	rules      map[string]*rule.Rule // correlation base rules by id
	corrRule   *rule.Rule
	mu         sync.Mutex
	assigned   map[Partition]bool
	fedMatches int
	fedEvents  int
	consumed   int
	idle       int
	lastOffset map[Partition]int64
	revoked    []bool // lost, per Revoked call
}

func (c *fakeCorr) Topics() []string { return []string{"corr"} }

func (c *fakeCorr) Assigned(_ context.Context, _ *kgo.Client, ps []Partition) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range ps {
		c.assigned[p] = true
	}
	return nil
}

func (c *fakeCorr) Revoked(_ context.Context, _ *kgo.Client, ps []Partition, lost bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.revoked = append(c.revoked, lost)
	for _, p := range ps {
		delete(c.assigned, p)
	}
	return nil
}

func (c *fakeCorr) Feed(ctx context.Context, cl *kgo.Client, evs []Fed) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var rs []*kgo.Record
	for _, e := range evs {
		if !c.assigned[e.Partition] {
			c.t.Errorf("fed an event of %v, not assigned", e.Partition)
		}
		if last, ok := c.lastOffset[e.Partition]; ok && e.Offset <= last {
			c.t.Errorf("fed %v offset %d after %d", e.Partition, e.Offset, last)
		}
		c.lastOffset[e.Partition] = e.Offset
		for _, m := range e.Matches {
			if c.rules[m.Rule.ID] == nil {
				c.t.Errorf("fed a match of %s, which no correlation reads", m.Rule.ID)
			}
		}
		c.fedMatches += len(e.Matches)
		c.fedEvents++
		computer, ok := e.Event.Get("Computer")
		if !ok {
			c.t.Errorf("fed event without the group-by field Computer: %v", e.Event.Fields)
		}
		rs = append(rs, &kgo.Record{Topic: "corr", Key: []byte(computer), Value: []byte(computer)})
	}
	return cl.ProduceSync(ctx, rs...).FirstErr()
}

func (c *fakeCorr) Consume(_ context.Context, _ *kgo.Client, recs []*kgo.Record) ([]Alert, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if recs == nil {
		c.idle++
		return nil, nil
	}
	var out []Alert
	for _, r := range recs {
		if !c.assigned[Partition{r.Topic, r.Partition}] {
			c.t.Errorf("consumed %s/%d, not assigned", r.Topic, r.Partition)
		}
		c.consumed++
		a := engine.Alert{Rule: c.corrRule, Group: []event.Field{{Name: "Computer", Value: string(r.Value)}}, Value: 1, Events: 1}
		out = append(out, Alert{Record: hunt.AlertRecord(a), Key: fmt.Sprintf("fake/%d/%d", r.Partition, r.Offset),
			Where: Partition{r.Topic, r.Partition}, Offset: r.Offset})
	}
	return out, nil
}

// TestCorrelationsHook: with correlation rules loaded, the events that feed them go to
// Correlations.Feed from assigned partitions in offset order, the records of its
// topics to Consume (and an empty Consume ticks a quiet stream), and the alerts it
// returns reach the alerts topic with their alert_id.
func TestCorrelationsHook(t *testing.T) {
	f := loadFixture(t)
	corrFile := filepath.Join("..", "engine", "testdata", "keyed_correlations.yml")
	loaded, err := hunt.LoadRules([]string{corpustest.Path(t, "sigma", "sigmahq", "rules", "windows"),
		corpustest.Path(t, "sigma", "sigmahq", "rules-emerging-threats"), corrFile}, []hunt.Parser{sigma.Parser{}}, hunt.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	wc, err := winevent.Routing()
	if err != nil {
		t.Fatal(err)
	}
	h := hunt.New(loaded.Rules, engine.Options{Router: engine.CatalogRouter{Catalog: wc}})
	fc := &fakeCorr{t: t, rules: map[string]*rule.Rule{}, assigned: map[Partition]bool{}, lastOffset: map[Partition]int64{}}
	for _, r := range loaded.Rules {
		if r.Correlation == nil {
			continue
		}
		fc.corrRule = r
		for _, ref := range r.Correlation.Rules {
			fc.rules[ref] = r
		}
	}
	if len(fc.rules) == 0 {
		t.Fatalf("no correlation in %s", corrFile)
	}
	// The reference: matches of the base rules in `hunt --json` without the
	// correlations (with them, hunt may keep base matches for the correlator only).
	wantFed := 0
	for _, line := range f.want {
		var x struct {
			ID string `json:"rule_id"`
		}
		json.Unmarshal([]byte(line), &x)
		if fc.rules[x.ID] != nil {
			wantFed++
		}
	}
	if wantFed == 0 {
		t.Fatal("no regression event matches a base rule of the correlations")
	}

	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "events"), kfake.SeedTopics(2, "corr"), kfake.SeedTopics(1, "alerts"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	addrs := c.ListenAddrs()
	produce(t, addrs, f, 1)
	w, err := New(Config{Brokers: addrs, Topic: "events", Group: "g", Alerts: "alerts", FromBeginning: true, Hunter: h,
		Correlations: fc, MaxPoll: 20, Opts: []kgo.Opt{kgo.FetchMaxWait(100 * time.Millisecond)}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	a := readAlerts(t, addrs, 1)
	a.until(60*time.Second, func(int) bool {
		fc.mu.Lock()
		defer fc.mu.Unlock()
		return fc.fedMatches >= wantFed && fc.consumed >= fc.fedEvents && fc.idle > 0
	})
	a.until(30*time.Second, func(n int) bool {
		fc.mu.Lock()
		defer fc.mu.Unlock()
		corr := 0
		for _, line := range a.byID {
			if strings.Contains(line, `"topic":"corr"`) {
				corr++
			}
		}
		return corr >= fc.consumed
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if fc.fedMatches != wantFed {
		t.Errorf("fed %d base-rule matches, hunt --json prints %d", fc.fedMatches, wantFed)
	}
	for id, line := range a.byID {
		var x struct {
			Topic     string `json:"topic"`
			Partition int32  `json:"partition"`
			Offset    int64  `json:"offset"`
		}
		json.Unmarshal([]byte(line), &x)
		if x.Topic != "corr" {
			continue
		}
		if want := alertID(fmt.Sprintf("fake/%d/%d", x.Partition, x.Offset)); id != want {
			t.Errorf("correlation alert id %s, want the hash of its key %s", id, want)
		}
		if !strings.HasPrefix(line, `{"rule_id":"`+fc.corrRule.ID+`"`) || !strings.Contains(line, `"fields":{"Computer":`) {
			t.Errorf("correlation alert is not hunt's alert record: %s", line)
		}
	}
	if w.Metrics().Snapshot().Alerts != int64(fc.consumed) {
		t.Errorf("metrics count %d correlation alerts, Consume returned %d", w.Metrics().Snapshot().Alerts, fc.consumed)
	}
}

// TestAlertsNotAcknowledged: when the brokers do not take the alerts (here the alerts
// topic does not exist), the worker stops with the error and commits nothing, so the
// events are read again once the alerts can be written.
func TestAlertsNotAcknowledged(t *testing.T) {
	f := loadFixture(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "events"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	addrs := c.ListenAddrs()
	produce(t, addrs, f, 1)
	w, err := New(Config{Brokers: addrs, Topic: "events", Group: "g", Alerts: "alerts", FromBeginning: true, Hunter: f.hunter,
		Opts: []kgo.Opt{kgo.UnknownTopicRetries(1)}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- w.Run(context.Background()) }()
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("the worker went on without its alerts acknowledged")
	}
	if err == nil || !strings.Contains(err.Error(), "alerts") {
		t.Fatalf("Run: %v, want an error about the alerts", err)
	}
	adm, err := kadm.NewOptClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	offs, err := adm.FetchOffsets(context.Background(), "g")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup("events", 0); ok && o.At > 0 {
		t.Errorf("offset %d committed although no alert was acknowledged", o.At)
	}
	if n := w.Metrics().Snapshot().Events; n != 0 {
		t.Errorf("%d events counted as done", n)
	}
}

// TestBusyStreamTicks: held correlation inputs are released by Consume; a poll that
// brings events but no repartition record still calls it (with no record) once the
// last call is idleTick old, so a busy events topic cannot hold them back for ever.
func TestBusyStreamTicks(t *testing.T) {
	f := loadFixture(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "events", "corr", "alerts"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fc := &fakeCorr{t: t, assigned: map[Partition]bool{{"corr", 0}: true}, lastOffset: map[Partition]int64{},
		corrRule: &rule.Rule{ID: "busy", Title: "busy stream"}}
	w, err := New(Config{Brokers: c.ListenAddrs(), Topic: "events", Group: "g", Alerts: "alerts", Hunter: f.hunter,
		Correlations: fc, Parallel: 1,
		// Stop each poll before its commit: this worker never joined the group.
		crash: func(s string, _ pollState) bool { return s == "flushed" }})
	if err != nil {
		t.Fatal(err)
	}
	defer w.cl.Close()
	fetches := func(topic string, n int) kgo.Fetches {
		var rs []*kgo.Record
		for i := range n {
			rs = append(rs, &kgo.Record{Topic: topic, Value: f.values[i].b, Offset: int64(i)})
		}
		return kgo.Fetches{{Topics: []kgo.FetchTopic{{Topic: topic, Partitions: []kgo.FetchPartition{{Records: rs}}}}}}
	}
	tests := []struct {
		name         string
		lastConsume  time.Duration // ago
		fs           kgo.Fetches
		idle, consum int // Consume calls without and with records
	}{
		{"events, last Consume a tick ago", idleTick, fetches("events", 5), 1, 0},
		{"events, Consume just called", 0, fetches("events", 5), 0, 0},
		{"events, last Consume long ago", time.Hour, fetches("events", 3), 1, 0},
		{"repartition records", 0, fetches("corr", 2), 0, 2},
		{"empty poll", 0, nil, 1, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fc.idle, fc.consumed = 0, 0
			w.lastConsume = time.Now().Add(-tc.lastConsume)
			if err := w.handle(context.Background(), tc.fs); err != errCrashed {
				t.Fatalf("handle: %v", err)
			}
			if fc.idle != tc.idle || fc.consumed != tc.consum {
				t.Errorf("Consume called %d times without records and with %d records; want %d and %d", fc.idle, fc.consumed, tc.idle, tc.consum)
			}
		})
	}
}

// TestRevokedLost: a worker that stops with a poll in hand (killed, or on an error)
// tells Correlations its partitions are lost, since what it handed over was not
// committed; a clean stop hands them over as committed.
func TestRevokedLost(t *testing.T) {
	f := loadFixture(t)
	tests := []struct {
		name  string
		crash bool
		lost  bool
	}{
		{"killed with a poll in hand", true, true},
		{"stopped", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "events", "corr"), kfake.SeedTopics(1, "alerts"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			addrs := c.ListenAddrs()
			produce(t, addrs, f, 1)
			fc := &fakeCorr{t: t, assigned: map[Partition]bool{}, lastOffset: map[Partition]int64{}}
			var polls atomic.Int32
			w, err := New(Config{Brokers: addrs, Topic: "events", Group: "g", Alerts: "alerts", FromBeginning: true,
				Hunter: f.hunter, Correlations: fc, MaxPoll: 7,
				crash: func(s string, p pollState) bool {
					if s == "committed" && p.Records > 0 {
						polls.Add(1)
					}
					return tc.crash && s == "matched" && p.Records > 0
				},
				Opts: []kgo.Opt{kgo.FetchMaxWait(100 * time.Millisecond)}})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- w.Run(ctx) }()
			if !tc.crash {
				deadline := time.Now().Add(60 * time.Second)
				for polls.Load() == 0 {
					if time.Now().After(deadline) {
						t.Fatal("no poll committed within 60s")
					}
					time.Sleep(10 * time.Millisecond)
				}
				cancel()
			}
			select {
			case err := <-done:
				if tc.crash != (err == errCrashed) || !tc.crash && err != nil {
					t.Fatalf("Run: %v", err)
				}
			case <-time.After(60 * time.Second):
				t.Fatal("the worker did not stop within 60s")
			}
			fc.mu.Lock()
			defer fc.mu.Unlock()
			if len(fc.revoked) == 0 {
				t.Fatal("Revoked was not called")
			}
			for _, lost := range fc.revoked {
				if lost != tc.lost {
					t.Errorf("Revoked(lost=%v), want lost=%v", lost, tc.lost)
				}
			}
		})
	}
}
