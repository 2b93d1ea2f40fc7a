package stream

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Metrics count what a worker did. Counters only grow; rates are computed over the
// last stats interval.
type Metrics struct {
	records        atomic.Int64 // records committed, every consumed topic
	events         atomic.Int64 // events decoded from the events topic
	matches        atomic.Int64 // single-event alerts
	alerts         atomic.Int64 // correlation alerts
	decodeErrors   atomic.Int64
	commitFailures atomic.Int64
	produceErrors  atomic.Int64
	rebalances     atomic.Int64
	busy           atomic.Int64 // nanoseconds spent handling polls

	mu          sync.Mutex
	produceErr  error
	assigned    map[Partition]bool
	lag         map[Partition]int64
	lagAt       time.Time
	refresh     func() // asks the group's lag now (set by the worker)
	rate        Stats  // snapshot the rates are computed from
	eventsRate  float64
	matchesRate float64
}

// NewMetrics returns zeroed metrics.
func NewMetrics() *Metrics {
	return &Metrics{assigned: map[Partition]bool{}, lag: map[Partition]int64{}}
}

// produced is the promise of every alert produced.
func (m *Metrics) produced(_ *kgo.Record, err error) {
	if err == nil {
		return
	}
	m.produceErrors.Add(1)
	m.mu.Lock()
	if m.produceErr == nil {
		m.produceErr = err
	}
	m.mu.Unlock()
}

func (m *Metrics) takeProduceError() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	err := m.produceErr
	m.produceErr = nil
	return err
}

func (m *Metrics) rebalance(assigned, revoked []Partition) {
	m.mu.Lock()
	defer m.mu.Unlock()
	// Under the cooperative protocol a worker that only gives partitions away is not
	// called with an assignment: a rebalance is any change of this worker's partitions.
	if len(assigned)+len(revoked) > 0 {
		m.rebalances.Add(1)
	}
	for _, p := range assigned {
		m.assigned[p] = true
	}
	for _, p := range revoked {
		delete(m.assigned, p)
		delete(m.lag, p)
	}
}

// Stats is a snapshot of the metrics.
type Stats struct {
	At                   time.Time
	Records, Events      int64
	Matches, Alerts      int64
	DecodeErrors         int64
	CommitFailures       int64
	ProduceErrors        int64
	Rebalances           int64
	Busy                 time.Duration
	EventsPerSecond      float64 // over the last stats interval
	MatchesPerSecond     float64
	Lag                  map[Partition]int64 // per assigned partition, when known
	LagAt                time.Time
	AssignedPartitions   int
	TotalLag             int64
	PartitionsWithoutLag int // assigned, lag not known yet
}

// Snapshot reads the metrics.
func (m *Metrics) Snapshot() Stats {
	s := Stats{At: time.Now(), Records: m.records.Load(), Events: m.events.Load(), Matches: m.matches.Load(),
		Alerts: m.alerts.Load(), DecodeErrors: m.decodeErrors.Load(), CommitFailures: m.commitFailures.Load(),
		ProduceErrors: m.produceErrors.Load(), Rebalances: m.rebalances.Load(), Busy: time.Duration(m.busy.Load())}
	m.mu.Lock()
	defer m.mu.Unlock()
	s.EventsPerSecond, s.MatchesPerSecond = m.eventsRate, m.matchesRate
	s.Lag = map[Partition]int64{}
	s.LagAt = m.lagAt
	s.AssignedPartitions = len(m.assigned)
	for p := range m.assigned {
		l, ok := m.lag[p]
		if !ok {
			s.PartitionsWithoutLag++
			continue
		}
		s.Lag[p] = l
		s.TotalLag += l
	}
	return s
}

// tick recomputes the rates from the previous tick.
func (m *Metrics) tick() {
	now := m.Snapshot()
	m.mu.Lock()
	defer m.mu.Unlock()
	if prev := m.rate; !prev.At.IsZero() {
		d := now.At.Sub(prev.At).Seconds()
		if d > 0 {
			m.eventsRate = float64(now.Events-prev.Events) / d
			m.matchesRate = float64(now.Matches+now.Alerts-prev.Matches-prev.Alerts) / d
		}
	}
	m.rate = now
}

func (m *Metrics) setLag(lag map[Partition]int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for p, l := range lag {
		if m.assigned[p] {
			m.lag[p] = l
		}
	}
	m.lagAt = time.Now()
}

// Line is the periodic log line.
func (s Stats) Line() string {
	lag := strconv.FormatInt(s.TotalLag, 10)
	if s.PartitionsWithoutLag > 0 {
		lag += fmt.Sprintf(" (%d partitions not known yet)", s.PartitionsWithoutLag)
	}
	return fmt.Sprintf("stream: %d events (%.0f/s), %d matches + %d correlation alerts (%.1f/s), %d partitions, lag %s, %d rebalances, %d undecodable, %d failed commits",
		s.Events, s.EventsPerSecond, s.Matches, s.Alerts, s.MatchesPerSecond, s.AssignedPartitions, lag, s.Rebalances, s.DecodeErrors, s.CommitFailures)
}

// WriteText writes the metrics in the Prometheus text exposition format (0.0.4).
func (m *Metrics) WriteText(w io.Writer) error {
	s := m.Snapshot()
	bw := bufio.NewWriter(w)
	metric := func(name, typ, help string, v float64) {
		fmt.Fprintf(bw, "# HELP %s %s\n# TYPE %s %s\n%s %s\n", name, help, name, typ, name, strconv.FormatFloat(v, 'g', -1, 64))
	}
	metric("ruledex_stream_records_total", "counter", "Records consumed and committed, every consumed topic.", float64(s.Records))
	metric("ruledex_stream_events_total", "counter", "Events decoded from the events topic.", float64(s.Events))
	metric("ruledex_stream_matches_total", "counter", "Single-event alerts produced (a rule matching an event).", float64(s.Matches))
	metric("ruledex_stream_correlation_alerts_total", "counter", "Correlation alerts produced.", float64(s.Alerts))
	metric("ruledex_stream_decode_errors_total", "counter", "Records or values that are not JSON events.", float64(s.DecodeErrors))
	metric("ruledex_stream_commit_failures_total", "counter", "Offset commits that failed (their alerts come again, same alert_id).", float64(s.CommitFailures))
	metric("ruledex_stream_produce_errors_total", "counter", "Alerts the brokers did not acknowledge.", float64(s.ProduceErrors))
	metric("ruledex_stream_rebalances_total", "counter", "Rebalances that moved partitions to or from this worker.", float64(s.Rebalances))
	metric("ruledex_stream_busy_seconds_total", "counter", "Time spent matching, producing and committing polls.", s.Busy.Seconds())
	metric("ruledex_stream_events_per_second", "gauge", "Events per second over the last stats interval.", s.EventsPerSecond)
	metric("ruledex_stream_matches_per_second", "gauge", "Alerts per second over the last stats interval.", s.MatchesPerSecond)
	metric("ruledex_stream_assigned_partitions", "gauge", "Partitions assigned to this worker.", float64(s.AssignedPartitions))
	fmt.Fprintf(bw, "# HELP ruledex_stream_partition_lag Records after the group's committed offset, per partition of this worker.\n# TYPE ruledex_stream_partition_lag gauge\n")
	ps := make([]Partition, 0, len(s.Lag))
	for p := range s.Lag {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Topic != ps[j].Topic {
			return ps[i].Topic < ps[j].Topic
		}
		return ps[i].Partition < ps[j].Partition
	})
	for _, p := range ps {
		// Topic names are [a-zA-Z0-9._-]: nothing to escape in a label value.
		fmt.Fprintf(bw, "ruledex_stream_partition_lag{topic=%q,partition=\"%d\"} %d\n", p.Topic, p.Partition, s.Lag[p])
	}
	return bw.Flush()
}

// Handler serves WriteText. Lag older than a second (a rebalance moved partitions
// since the last refresh) is asked again first, so a scrape sees this worker's
// partitions as they are.
func (m *Metrics) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		refresh, stale := m.refresh, time.Since(m.lagAt) > time.Second
		m.mu.Unlock()
		if refresh != nil && stale {
			refresh()
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		m.WriteText(w)
	})
}

// lagEvery is how often the worker asks the group's lag (one describe, one list
// offsets and one offset fetch).
const lagEvery = 2 * time.Second

// trackLag refreshes lag and rates until ctx is done or the returned stop is called.
func (w *Worker) trackLag(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	w.m.mu.Lock()
	w.m.refresh = func() { w.refreshLag(ctx) }
	w.m.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(lagEvery)
		defer t.Stop()
		var logT <-chan time.Time
		if w.cfg.StatsEvery > 0 && w.cfg.Log != nil {
			lt := time.NewTicker(w.cfg.StatsEvery)
			defer lt.Stop()
			logT = lt.C
		}
		w.m.tick()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				w.refreshLag(ctx)
				w.m.tick()
			case <-logT:
				w.cfg.Log(w.m.Snapshot().Line())
			}
		}
	}()
	return func() {
		cancel()
		<-done
		w.m.mu.Lock()
		w.m.refresh = nil
		w.m.mu.Unlock()
	}
}

func (w *Worker) refreshLag(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, lagEvery)
	defer cancel()
	lags, err := w.adm.Lag(ctx, w.cfg.Group)
	if err != nil {
		return
	}
	l, ok := lags[w.cfg.Group]
	if !ok || l.Error() != nil {
		return
	}
	out := map[Partition]int64{}
	for t, ps := range l.Lag {
		for p, ml := range ps {
			if ml.Err == nil && ml.Lag >= 0 {
				out[Partition{t, p}] = ml.Lag
			}
		}
	}
	w.m.setLag(out)
}
