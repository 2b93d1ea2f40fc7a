package stream

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ruledex/ruledex/engine"
	"github.com/ruledex/ruledex/event"
	"github.com/ruledex/ruledex/hunt"
	"github.com/ruledex/ruledex/logread"
	"github.com/ruledex/ruledex/rule"
)

// Config configures a Worker.
type Config struct {
	Brokers []string
	// Topic holds the events: one JSON object per record (flat or evtx_dump-style,
	// the shapes `ruledex hunt` reads from JSON files; an array or several objects in
	// one record are several events).
	Topic string
	Group string
	// Alerts is the topic the alerts are produced to.
	Alerts string
	// FromBeginning reads partitions without a committed offset from their start;
	// otherwise from their end (only new events).
	FromBeginning bool
	Hunter        *hunt.Hunter
	// Correlations, when set, receives the matches that feed correlation rules.
	Correlations Correlations
	// Parallel is how many goroutines decode and match a poll's records (default
	// GOMAXPROCS).
	Parallel int
	// MaxPoll bounds the records handled (and committed) at once (default 10000).
	MaxPoll int
	// SessionTimeout is how long the group waits for a silent worker before giving its
	// partitions to others (default: the client's, 45 s).
	SessionTimeout time.Duration
	// Report receives located problems (undecodable records, failed commits); nil
	// discards them (they are still counted).
	Report func(error)
	// Metrics, when set, is updated by the worker (New creates one otherwise).
	Metrics *Metrics
	// StatsEvery, with Log, writes Stats.Line that often.
	StatsEvery time.Duration
	Log        func(string)
	// Opts are extra client options (tests lower heartbeat intervals, enable topic
	// auto-creation against kfake).
	Opts []kgo.Opt

	// crash, in tests, is asked after each step of a poll with what the poll holds;
	// true makes Run stop there as a killed process would: nothing more produced,
	// nothing committed.
	crash func(step string, p pollState) bool
}

// pollState is what the poll in hand holds, for the test crash hook: a test kills a
// worker in a poll that has something to lose, not at a wall-clock moment.
type pollState struct {
	Records    int // records of every consumed topic
	Fed        int // matched events that feed correlations
	Matches    int // single-event alerts
	CorrAlerts int // alerts Correlations.Consume returned
}

// Worker is one member of the group.
type Worker struct {
	cfg     Config
	cl      *kgo.Client
	adm     *kadm.Client
	m       *Metrics
	enc     hunt.Output
	fatal   error // set by a rebalance callback, read by the poll loop
	fatalMu sync.Mutex
	// dirty is set while polled records are not yet committed: a revoke then must
	// not commit (only a crash revokes mid-poll: BlockRebalanceOnPoll keeps
	// rebalances between polls).
	dirty atomic.Bool
	// aborted is set when Run stops on an error or a test crash: the partitions it
	// gives up then are handed over with work not committed, as if lost.
	aborted atomic.Bool
	// lastConsume is when Correlations.Consume was last called (poll loop only).
	lastConsume time.Time
	// poll is the scratch of the poll loop.
	chunks []*chunk
}

// chunkRecords is how many records of one partition one goroutine decodes at once:
// enough to amortize a reader, small enough that one busy partition still spreads
// over every core.
const chunkRecords = 512

// New checks cfg and creates the worker's client (it joins the group on Run).
func New(cfg Config) (*Worker, error) {
	switch {
	case len(cfg.Brokers) == 0:
		return nil, errors.New("no Kafka broker given")
	case cfg.Topic == "":
		return nil, errors.New("no events topic given")
	case cfg.Group == "":
		return nil, errors.New("no consumer group given")
	case cfg.Alerts == "":
		return nil, errors.New("no alerts topic given")
	case cfg.Alerts == cfg.Topic:
		return nil, fmt.Errorf("the alerts topic %q is the events topic: alerts would be read as events", cfg.Alerts)
	case cfg.Hunter == nil:
		return nil, errors.New("no rules")
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = runtime.GOMAXPROCS(0)
	}
	if cfg.MaxPoll <= 0 {
		cfg.MaxPoll = 10000
	}
	w := &Worker{cfg: cfg, m: cfg.Metrics, enc: hunt.NewOutput(io.Discard, hunt.JSON)}
	if w.m == nil {
		w.m = NewMetrics()
	}
	topics := []string{cfg.Topic}
	if cfg.Correlations != nil {
		topics = append(topics, cfg.Correlations.Topics()...)
	}
	reset := kgo.NewOffset().AtEnd()
	if cfg.FromBeginning {
		reset = kgo.NewOffset().AtStart()
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(reset),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(w.assigned),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) { w.revoked(ctx, cl, m, false) }),
		kgo.OnPartitionsLost(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) { w.revoked(ctx, cl, m, true) }),
		kgo.ProducerLinger(5 * time.Millisecond),
	}
	if cfg.SessionTimeout > 0 {
		opts = append(opts, kgo.SessionTimeout(cfg.SessionTimeout), kgo.HeartbeatInterval(cfg.SessionTimeout/5))
	}
	cl, err := kgo.NewClient(append(opts, cfg.Opts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	w.cl = cl
	w.adm = kadm.NewClient(cl)
	return w, nil
}

// Metrics are the worker's counters.
func (w *Worker) Metrics() *Metrics { return w.m }

func (w *Worker) setFatal(err error) {
	w.fatalMu.Lock()
	defer w.fatalMu.Unlock()
	if w.fatal == nil {
		w.fatal = err
	}
}

func (w *Worker) getFatal() error {
	w.fatalMu.Lock()
	defer w.fatalMu.Unlock()
	return w.fatal
}

func partitions(m map[string][]int32) []Partition {
	var ps []Partition
	for t, parts := range m {
		for _, p := range parts {
			ps = append(ps, Partition{t, p})
		}
	}
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Topic != ps[j].Topic {
			return ps[i].Topic < ps[j].Topic
		}
		return ps[i].Partition < ps[j].Partition
	})
	return ps
}

func (w *Worker) assigned(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
	ps := partitions(m)
	w.m.rebalance(ps, nil)
	if w.cfg.Correlations != nil && len(ps) > 0 {
		if err := w.cfg.Correlations.Assigned(ctx, cl, ps); err != nil {
			w.setFatal(fmt.Errorf("correlations: restoring %d partitions: %w", len(ps), err))
		}
	}
}

// revoked runs between polls (BlockRebalanceOnPoll), when everything handed over
// was committed by the poll loop, or when a worker stopping on an error closes its
// client: then the records in flight must be read again, so nothing is committed
// here and Correlations is told the partitions are lost (what it returned for them
// may not have been delivered).
func (w *Worker) revoked(ctx context.Context, cl *kgo.Client, m map[string][]int32, lost bool) {
	ps := partitions(m)
	w.m.rebalance(nil, ps)
	lost = lost || w.aborted.Load() || w.dirty.Load()
	if !lost {
		// Nothing should be left; a commit here costs one round trip and keeps the
		// group's offsets exact if a future change leaves work between polls.
		if err := cl.CommitUncommittedOffsets(ctx); err != nil {
			w.report(fmt.Errorf("commit on revoke: %w", err))
		}
	}
	if w.cfg.Correlations != nil && len(ps) > 0 {
		if err := w.cfg.Correlations.Revoked(ctx, cl, ps, lost); err != nil {
			w.setFatal(fmt.Errorf("correlations: handing over %d partitions: %w", len(ps), err))
		}
	}
}

func (w *Worker) report(err error) {
	if w.cfg.Report != nil {
		w.cfg.Report(err)
	}
}

// idleTick is how long a poll waits for records before Correlations is ticked.
const idleTick = time.Second

// errCrashed ends Run in tests as a kill would.
var errCrashed = errors.New("stream: worker crashed (test)")

// Run consumes until ctx is done, then finishes the poll in hand, commits it and
// leaves the group. An error (alerts not acknowledged, a correlation failing) stops
// the worker without committing what was in flight; another worker, or this one
// restarted, reads it again.
func (w *Worker) Run(ctx context.Context) error {
	stopLag := w.trackLag(ctx)
	defer stopLag()
	for {
		if err := w.getFatal(); err != nil {
			w.abort()
			return err
		}
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if w.cfg.Correlations != nil {
			// Correlations hold inputs until the stream time passes them by the grace:
			// a quiet stream must still tick them (Consume with no record) to release them.
			pctx, cancel = context.WithTimeout(ctx, idleTick)
		}
		fs := w.cl.PollRecords(pctx, w.cfg.MaxPoll)
		cancel()
		if fs.IsClientClosed() {
			return nil
		}
		fs.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return
			}
			// Fetch errors are retried by the client; they are worth knowing about.
			w.report(fmt.Errorf("fetch %s/%d: %w", t, p, err))
		})
		if fs.NumRecords() > 0 || (w.cfg.Correlations != nil && ctx.Err() == nil) {
			w.dirty.Store(fs.NumRecords() > 0)
			// The poll in hand is finished even when ctx is done meanwhile: a clean
			// stop leaves nothing to read again.
			if err := w.handle(context.WithoutCancel(ctx), fs); err != nil {
				w.abort()
				return err
			}
			w.dirty.Store(false)
		}
		w.cl.AllowRebalance()
		if ctx.Err() != nil {
			w.cl.CloseAllowingRebalance()
			return nil
		}
	}
}

// abort closes the client without committing what is in flight.
func (w *Worker) abort() {
	w.aborted.Store(true)
	w.cl.CloseAllowingRebalance()
}

// chunk is a run of records of one partition, decoded and matched by one goroutine.
type chunk struct {
	recs   []*kgo.Record
	alerts []*kgo.Record
	fed    []Fed
	events int64
	errs   []error
}

// handle matches a poll's records, hands correlations theirs, produces the alerts,
// waits for the brokers to acknowledge them and commits the poll's offsets.
func (w *Worker) handle(ctx context.Context, fs kgo.Fetches) error {
	t0 := time.Now()
	w.chunks = w.chunks[:0]
	var corrRecs []*kgo.Record
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) == 0 {
			return
		}
		if p.Topic != w.cfg.Topic {
			corrRecs = append(corrRecs, p.Records...)
			return
		}
		for rs := p.Records; len(rs) > 0; {
			n := min(len(rs), chunkRecords)
			w.chunks = append(w.chunks, &chunk{recs: rs[:n]})
			rs = rs[n:]
		}
	})
	work := make(chan *chunk)
	var wg sync.WaitGroup
	for range min(w.cfg.Parallel, len(w.chunks)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var s scratch
			for c := range work {
				w.match(c, &s)
			}
		}()
	}
	for _, c := range w.chunks {
		work <- c
	}
	close(work)
	wg.Wait()
	var events, matches int64
	var fed []Fed
	for _, c := range w.chunks {
		events += c.events
		matches += int64(len(c.alerts))
		fed = append(fed, c.fed...)
		for _, e := range c.errs {
			w.report(e)
		}
		w.m.decodeErrors.Add(int64(len(c.errs)))
	}
	ps := pollState{Records: fs.NumRecords(), Fed: len(fed), Matches: int(matches)}
	if w.crashAt("matched", ps) {
		return errCrashed
	}
	if w.cfg.Correlations != nil {
		if len(fed) > 0 {
			if err := w.cfg.Correlations.Feed(ctx, w.cl, fed); err != nil {
				return fmt.Errorf("correlations: feeding %d events: %w", len(fed), err)
			}
		}
		// Held inputs are released by the stream time of their repartition partition
		// or, when it is quiet, by a tick: a busy events topic whose polls carry no
		// repartition record must tick too, or they wait for the next such record.
		if len(corrRecs) > 0 || fs.NumRecords() == 0 || time.Since(w.lastConsume) >= idleTick {
			w.lastConsume = time.Now()
			as, err := w.cfg.Correlations.Consume(ctx, w.cl, corrRecs)
			if err != nil {
				return fmt.Errorf("correlations: %d records: %w", len(corrRecs), err)
			}
			var b []byte
			for i := range as {
				a := &as[i]
				id := alertID(a.Key)
				b = w.alertJSON(b[:0], &a.Record, id, a.Where, a.Offset)
				w.produce(ctx, &kgo.Record{Topic: w.cfg.Alerts, Key: []byte(id), Value: bytes.Clone(b)})
			}
			w.m.alerts.Add(int64(len(as)))
			ps.CorrAlerts = len(as)
		}
	}
	for _, c := range w.chunks {
		for _, r := range c.alerts {
			w.produce(ctx, r)
		}
	}
	if w.crashAt("produced", ps) {
		return errCrashed
	}
	if err := w.cl.Flush(ctx); err != nil {
		return fmt.Errorf("waiting for alerts to be acknowledged: %w", err)
	}
	if err := w.m.takeProduceError(); err != nil {
		return fmt.Errorf("producing alerts to %s: %w", w.cfg.Alerts, err)
	}
	if w.crashAt("flushed", ps) {
		return errCrashed
	}
	if fs.NumRecords() == 0 {
		return nil
	}
	if err := w.cl.CommitUncommittedOffsets(ctx); err != nil {
		// The alerts are out; the records will be read again by whoever holds their
		// partitions next, and their alerts carry the same ids.
		w.m.commitFailures.Add(1)
		w.report(fmt.Errorf("committing offsets (alerts will be produced again, same alert_id): %w", err))
	}
	w.m.events.Add(events)
	w.m.matches.Add(matches)
	w.m.records.Add(int64(fs.NumRecords()))
	w.m.busy.Add(int64(time.Since(t0)))
	if w.crashAt("committed", ps) {
		return errCrashed
	}
	return nil
}

func (w *Worker) crashAt(step string, p pollState) bool {
	return w.cfg.crash != nil && w.cfg.crash(step, p)
}

func (w *Worker) produce(ctx context.Context, r *kgo.Record) {
	w.cl.Produce(ctx, r, w.m.produced)
}

// scratch is a matching goroutine's reusable state.
type scratch struct {
	ev   event.Event
	ms   []engine.Match
	recs []hunt.Record
	buf  []byte
	b    []byte
	ends []int
}

// match decodes and matches a chunk. The records' values are read as one JSON
// stream (one reader per chunk: a reader per record costs more than matching); a
// chunk with an undecodable record is read again record by record, so that a bad
// record cannot take its neighbours with it and its error names its offset.
func (w *Worker) match(c *chunk, s *scratch) {
	first := c.recs[0]
	name := first.Topic + "/" + strconv.Itoa(int(first.Partition))
	s.buf = s.buf[:0]
	s.ends = s.ends[:0]
	for _, r := range c.recs {
		s.buf = append(s.buf, r.Value...)
		s.buf = append(s.buf, '\n')
		s.ends = append(s.ends, len(s.buf))
	}
	rd := logread.NewJSONReader(name, bytes.NewReader(s.buf))
	ok := w.read(c, s, rd, name, c.recs, func(off int64) int {
		return sort.SearchInts(s.ends, int(off)+1)
	}, true)
	if ok {
		return
	}
	*c = chunk{recs: c.recs}
	for i, r := range c.recs {
		rd := logread.NewJSONReader(name+"@"+strconv.FormatInt(r.Offset, 10), bytes.NewReader(r.Value))
		w.read(c, s, rd, name, c.recs[i:i+1], func(int64) int { return 0 }, false)
	}
}

// read matches the events of rd, which reads recs; at maps an event's byte offset to
// its record.
// With strict, it returns false at the first read error or when a record holds no
// event; otherwise rd holds one record and both are reported.
func (w *Worker) read(c *chunk, s *scratch, rd *logread.JSONReader, name string, recs []*kgo.Record, at func(int64) int, strict bool) bool {
	defer rd.Close()
	last, nth, withEvents, errs := -1, 0, 0, 0
	for {
		err := rd.Next(&s.ev)
		if err == io.EOF {
			break
		}
		if err != nil {
			if strict {
				return false
			}
			c.errs = append(c.errs, err)
			errs++
			continue
		}
		i := at(s.ev.Offset)
		if i >= len(recs) {
			i = len(recs) - 1
		}
		if i == last {
			nth++
		} else {
			last, nth = i, 0
			withEvents++
		}
		c.events++
		s.ev.File = name
		r := recs[i]
		var fed *hunt.Fed
		s.ms, s.recs, fed = w.cfg.Hunter.MatchEvent(&s.ev, name, s.ms, s.recs[:0])
		for k := range s.recs {
			rec := &s.recs[k]
			id := alertID(eventKey(rec.Rule, rec.Via, r, nth))
			s.b = w.alertJSON(s.b[:0], rec, id, Partition{r.Topic, r.Partition}, r.Offset)
			c.alerts = append(c.alerts, &kgo.Record{Topic: w.cfg.Alerts, Key: []byte(id), Value: bytes.Clone(s.b)})
		}
		if fed != nil {
			c.fed = append(c.fed, Fed{Fed: *fed, Partition: Partition{r.Topic, r.Partition}, Offset: r.Offset})
		}
	}
	if withEvents < len(recs) {
		if strict {
			return false
		}
		if errs == 0 {
			r := recs[0]
			c.errs = append(c.errs, fmt.Errorf("%s@%d: no JSON event in the record (%d bytes)", name, r.Offset, len(r.Value)))
		}
	}
	return true
}

// eventKey identifies a rule matching the nth event of a record: the same whichever
// worker reads the record, however many times.
func eventKey(r *rule.Rule, via string, rec *kgo.Record, nth int) string {
	id := r.ID
	if id == "" {
		id = r.Source.Path + "#" + r.Title
	}
	return id + "\x00" + via + "\x00" + rec.Topic + "\x00" + strconv.Itoa(int(rec.Partition)) + "\x00" +
		strconv.FormatInt(rec.Offset, 10) + "\x00" + strconv.Itoa(nth)
}

// alertID hashes an alert's key: 128 bits of SHA-256, in hex.
func alertID(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}

// alertJSON is the `hunt --json` line of rec with alert_id, topic, partition and
// offset added as its last keys (the shared prefix lets a consumer compare alerts
// with a file hunt's output).
func (w *Worker) alertJSON(b []byte, rec *hunt.Record, id string, p Partition, off int64) []byte {
	b = w.enc.Encode(b, rec)
	// Encode ends the object with "}}\n": the fields object, then the record.
	b = bytes.TrimSuffix(b, []byte("}\n"))
	b = append(b, `,"alert_id":"`...)
	b = append(b, id...)
	b = append(b, `","topic":`...)
	// Topic names are [a-zA-Z0-9._-]: Go quoting is JSON quoting for them.
	b = strconv.AppendQuote(b, p.Topic)
	b = append(b, `,"partition":`...)
	b = strconv.AppendInt(b, int64(p.Partition), 10)
	b = append(b, `,"offset":`...)
	b = strconv.AppendInt(b, off, 10)
	return append(b, '}')
}
