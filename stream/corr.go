package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ruledex/ruledex/engine"
	"github.com/ruledex/ruledex/event"
	"github.com/ruledex/ruledex/hunt"
)

// CorrConfig configures KeyedCorrelations.
type CorrConfig struct {
	Brokers []string
	// Group is the workers' consumer group: it names the internal topics.
	Group  string
	Hunter *hunt.Hunter
	// Grace is how late (in event time, behind the latest event a repartition
	// partition has seen) an event may arrive and still be correlated in time order.
	// Later events are counted and reported, not correlated.
	Grace time.Duration
	// Idle: a repartition partition without records for this long (wall time) has its
	// held events correlated at once rather than after grace (default 2 s).
	Idle time.Duration
	// Report receives located problems (late events, undecodable records).
	Report func(error)
	// Opts are extra options for the clients KeyedCorrelations opens itself.
	Opts []kgo.Opt
}

// CorrTopics names the internal topics of a group's keyed correlations, after Kafka
// Streams' <application>-<name>-repartition and -changelog.
func CorrTopics(group string) (repartition, changelog string) {
	return group + "-corr-repartition", group + "-corr-changelog"
}

// CreateCorrTopics creates the group's internal topics with the same partition count
// (a key's state lives in the changelog partition of the same number as its
// repartition partition); the changelog is compacted. Existing topics are left as they
// are.
func CreateCorrTopics(ctx context.Context, adm *kadm.Client, group string, partitions int32, replication int16) error {
	rep, chl := CorrTopics(group)
	compact := "compact"
	for _, c := range []struct {
		topic string
		conf  map[string]*string
	}{{rep, nil}, {chl, map[string]*string{"cleanup.policy": &compact}}} {
		resp, err := adm.CreateTopic(ctx, partitions, replication, c.conf, c.topic)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("creating topic %s: %w", c.topic, err)
		}
	}
	return nil
}

// KeyedCorrelations are the Correlations of a worker (issue 17 item 3). Feed turns the
// matches that feed correlation rules into engine.Inputs, produced to the repartition
// topic with the state key as record key and a partition chosen from it, so that every
// key's inputs reach one worker, in the order each events partition produced them.
// Consume puts them into the state of their partition (engine.Shard), writes each
// changed key to the compacted changelog (the encoded state; a tombstone once the key
// can raise nothing more) and a partition record ("meta": stream time and late count),
// and returns the alerts. Assigned restores a partition's state from its changelog
// partition before any of its records is handed over.
//
// No alert is lost and none is counted twice: each key's state records the last
// repartition offset it took, so records read again after a crash are not applied
// twice; and the alerts a write raises are kept in the key's state until the next
// write of that partition (which the worker only makes after committing the previous
// poll), so a successor re-emits those whose poll was not committed.
type KeyedCorrelations struct {
	cfg        CorrConfig
	k          *engine.Keyed
	repart     string
	changelog  string
	prod       *kgo.Client
	adm        *kadm.Client
	partitions int32
	shards     map[int32]*corrShard
	reemit     []Alert
	stats      CorrStats
}

// CorrStats count what KeyedCorrelations did: inputs fed to the repartition topic;
// repartition records applied, late (not correlated), duplicate (taken before),
// replayed (already in the restored state); alerts returned and, of those, re-emitted
// after a restore; keys restored; unreadable records.
type CorrStats struct {
	Inputs, Applied, Late, Duplicates, Replayed, Alerts, Reemitted, Restored, BadRecords atomic.Int64
	// Keys is the number of keys with state held now.
	Keys atomic.Int64
}

type corrShard struct {
	s       *engine.Shard
	seen    time.Time // wall time of the last record
	lastOff int64     // last repartition offset read
	// fired: keys whose Extra holds alerts of the last write; restored: keys restored
	// with alerts, cleared once their re-emission is acknowledged.
	fired, restored map[string]bool
	// swept is when Expire and Sweep last walked every key.
	swept time.Time
}

// sweepEvery bounds how often a shard walks all its keys (closing windows decided at
// their end, forgetting keys that can raise nothing more): the walk costs the number
// of keys, a poll only what it touched.
const sweepEvery = time.Second

// fired is a key state's Extra: alerts raised and not yet known acknowledged.
type fired struct {
	// Need is the committed offset of the repartition partition that proves the
	// alert was acknowledged (the worker commits a poll after its alerts).
	Need  int64    `json:"n"`
	Off   int64    `json:"o"`
	Agg   string   `json:"a"`
	Time  int64    `json:"t"`
	Group []string `json:"g,omitempty"`
	Value float64  `json:"v"`
	Evs   int      `json:"e"`
	First int64    `json:"f"`
	IDs   []string `json:"i,omitempty"`
	Names []string `json:"gn,omitempty"`
}

// NewKeyedCorrelations prepares the hunter's correlations for a group's workers.
func NewKeyedCorrelations(cfg CorrConfig) (*KeyedCorrelations, error) {
	switch {
	case len(cfg.Brokers) == 0:
		return nil, errors.New("keyed correlations: no Kafka broker given")
	case cfg.Group == "":
		return nil, errors.New("keyed correlations: no consumer group given")
	case cfg.Hunter == nil:
		return nil, errors.New("keyed correlations: no rules")
	}
	if cfg.Idle <= 0 {
		cfg.Idle = 2 * time.Second
	}
	c := &KeyedCorrelations{cfg: cfg, k: cfg.Hunter.Correlator().Keyed(cfg.Grace), shards: map[int32]*corrShard{}}
	c.repart, c.changelog = CorrTopics(cfg.Group)
	// Own producer: records go to partitions chosen here (repartition: from the key;
	// changelog: the partition of the state), which the worker's partitioner ignores.
	prod, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0)}, cfg.Opts...)...)
	if err != nil {
		return nil, fmt.Errorf("keyed correlations: kafka client: %w", err)
	}
	c.prod = prod
	c.adm = kadm.NewClient(prod)
	return c, nil
}

// Close closes the producer.
func (c *KeyedCorrelations) Close() { c.prod.Close() }

// Stats returns the counters.
func (c *KeyedCorrelations) Stats() *CorrStats { return &c.stats }

// Topics is the repartition topic.
func (c *KeyedCorrelations) Topics() []string { return []string{c.repart} }

func (c *KeyedCorrelations) report(err error) {
	if c.cfg.Report != nil {
		c.cfg.Report(err)
	}
}

// partitionCount reads (once) the repartition topic's partition count and checks the
// changelog has as many.
func (c *KeyedCorrelations) partitionCount(ctx context.Context) (int32, error) {
	if c.partitions > 0 {
		return c.partitions, nil
	}
	td, err := c.adm.ListTopics(ctx, c.repart, c.changelog)
	if err != nil {
		return 0, fmt.Errorf("reading topics %s, %s: %w", c.repart, c.changelog, err)
	}
	var n [2]int
	for i, name := range []string{c.repart, c.changelog} {
		d, ok := td[name]
		if !ok || d.Err != nil {
			return 0, fmt.Errorf("topic %s is missing (create it with CreateCorrTopics or kafka-topics): %v", name, d.Err)
		}
		n[i] = len(d.Partitions)
	}
	if n[0] != n[1] || n[0] == 0 {
		return 0, fmt.Errorf("topics %s and %s have %d and %d partitions: they need the same count", c.repart, c.changelog, n[0], n[1])
	}
	c.partitions = int32(n[0])
	return c.partitions, nil
}

// keyPartition places a state key; any worker computes the same.
func keyPartition(key string, n int32) int32 {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int32(h.Sum32() % uint32(n))
}

// Feed produces the inputs of the fed events to the repartition topic and waits for
// their acknowledgment.
func (c *KeyedCorrelations) Feed(ctx context.Context, _ *kgo.Client, evs []Fed) error {
	n, err := c.partitionCount(ctx)
	if err != nil {
		return err
	}
	var ins []engine.Input
	var recs []*kgo.Record
	for i := range evs {
		f := &evs[i]
		ins = c.k.Inputs(&f.Event, f.Matches, f.Topic+"/"+strconv.Itoa(int(f.Partition.Partition)), f.Offset, ins[:0])
		for j := range ins {
			key := ins[j].Key()
			recs = append(recs, &kgo.Record{Topic: c.repart, Partition: keyPartition(key, n), Key: []byte(key), Value: ins[j].Encode()})
		}
	}
	c.stats.Inputs.Add(int64(len(recs)))
	if err := c.prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("producing %d inputs to %s: %w", len(recs), c.repart, err)
	}
	return nil
}

// Assigned restores the state of the repartition partitions in ps from the changelog.
func (c *KeyedCorrelations) Assigned(ctx context.Context, cl *kgo.Client, ps []Partition) error {
	var mine []int32
	for _, p := range ps {
		if p.Topic == c.repart {
			mine = append(mine, p.Partition)
		}
	}
	if len(mine) == 0 {
		return nil
	}
	committed, err := kadm.NewClient(cl).FetchOffsets(ctx, c.cfg.Group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		// Nothing committed yet (a group's coordinator may not know it before a commit).
		committed, err = kadm.OffsetResponses{}, nil
	}
	if err != nil {
		return fmt.Errorf("reading the group's committed offsets: %w", err)
	}
	for _, p := range mine {
		need := int64(-1)
		if o, ok := committed.Lookup(c.repart, p); ok && o.Err == nil {
			need = o.At
		}
		if err := c.restore(ctx, p, need); err != nil {
			return err
		}
	}
	return nil
}

// restore reads changelog partition p from its start to its end into a new shard;
// alerts kept in the restored states whose poll the group did not commit (committed
// below their Need) are queued for re-emission.
func (c *KeyedCorrelations) restore(ctx context.Context, p int32, committed int64) error {
	// lastOff: the record before the first to be read. An alert raised before any
	// is read (a tick releasing restored inputs) needs a commit past it to be known
	// delivered.
	sh := &corrShard{s: c.k.NewShard(), lastOff: max(committed, 0) - 1, seen: time.Now(), fired: map[string]bool{}, restored: map[string]bool{}}
	ends, err := c.adm.ListEndOffsets(ctx, c.changelog)
	if err != nil {
		return fmt.Errorf("end offsets of %s: %w", c.changelog, err)
	}
	end, ok := ends.Lookup(c.changelog, p)
	if !ok || end.Err != nil {
		return fmt.Errorf("end offset of %s/%d: %v", c.changelog, p, end.Err)
	}
	if end.Offset > 0 {
		// A changelog partition that cannot be read to its end must not hang the
		// rebalance for ever.
		ctx, cancel := context.WithTimeout(ctx, restoreTimeout)
		defer cancel()
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.cfg.Brokers...),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{c.changelog: {p: kgo.NewOffset().AtStart()}})}, c.cfg.Opts...)...)
		if err != nil {
			return fmt.Errorf("kafka client for %s/%d: %w", c.changelog, p, err)
		}
		defer cl.Close()
		for next := int64(0); next < end.Offset; {
			fs := cl.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("restoring %s/%d at offset %d of %d: %w", c.changelog, p, next, end.Offset, err)
			}
			var ferr error
			fs.EachError(func(_ string, _ int32, err error) { ferr = err })
			if ferr != nil {
				return fmt.Errorf("reading %s/%d: %w", c.changelog, p, ferr)
			}
			fs.EachRecord(func(r *kgo.Record) {
				next = r.Offset + 1
				var err error
				if string(r.Key) == metaKey {
					err = sh.s.RestoreMeta(r.Value)
				} else {
					err = sh.s.Restore(string(r.Key), r.Value)
				}
				if err != nil {
					c.stats.BadRecords.Add(1)
					c.report(fmt.Errorf("%s/%d@%d: %w", c.changelog, p, r.Offset, err))
				}
			})
		}
	}
	c.stats.Restored.Add(int64(sh.s.Len()))
	for _, key := range sh.s.Keys() {
		st := sh.s.State(key)
		if len(st.Extra) == 0 {
			continue
		}
		var fs []fired
		if err := json.Unmarshal(st.Extra, &fs); err != nil {
			c.report(fmt.Errorf("%s/%d key %q: alerts kept with the state: %w", c.changelog, p, key, err))
			continue
		}
		for _, f := range fs {
			if committed < f.Need {
				if a, ok := c.alertOf(f, p); ok {
					c.reemit = append(c.reemit, a)
					c.stats.Reemitted.Add(1)
				}
			}
		}
		sh.restored[key] = true
	}
	// Whatever a previous owner held: this worker's state replaces it.
	c.shards[p] = sh
	c.keys()
	return nil
}

const metaKey = "meta"

// restoreTimeout bounds reading one changelog partition.
const restoreTimeout = 5 * time.Minute

// Revoked drops the state of the partitions given up: it is in the changelog. The
// alerts kept with the states stay there: only the worker's next call proves them
// delivered (which clears them, in the changelog too), and a worker that stops on an
// error revokes without having delivered them.
func (c *KeyedCorrelations) Revoked(_ context.Context, _ *kgo.Client, ps []Partition, _ bool) error {
	for _, p := range ps {
		if p.Topic == c.repart {
			delete(c.shards, p.Partition)
		}
	}
	c.keys()
	return nil
}

// keys updates the Keys gauge.
func (c *KeyedCorrelations) keys() {
	n := 0
	for _, sh := range c.shards {
		n += sh.s.Len()
	}
	c.stats.Keys.Store(int64(n))
}

// WriteText writes the counters in the Prometheus text format.
func (c *KeyedCorrelations) WriteText(w io.Writer) error {
	s := &c.stats
	for _, m := range []struct {
		name, help, typ string
		v               int64
	}{
		{"ruledex_corr_inputs_total", "Correlation inputs produced to the repartition topic.", "counter", s.Inputs.Load()},
		{"ruledex_corr_applied_total", "Correlation inputs taken into keyed state.", "counter", s.Applied.Load()},
		{"ruledex_corr_late_total", "Correlation inputs beyond the grace, not correlated.", "counter", s.Late.Load()},
		{"ruledex_corr_duplicates_total", "Correlation inputs already taken (producer retries, partitions read again).", "counter", s.Duplicates.Load()},
		{"ruledex_corr_alerts_total", "Correlation alerts raised, re-emissions included.", "counter", s.Alerts.Load()},
		{"ruledex_corr_reemitted_total", "Correlation alerts raised again after a restore (their delivery was not known).", "counter", s.Reemitted.Load()},
		{"ruledex_corr_bad_records_total", "Repartition or changelog records that could not be read.", "counter", s.BadRecords.Load()},
		{"ruledex_corr_keys", "Keys with correlation state held by this worker.", "gauge", s.Keys.Load()},
	} {
		if _, err := fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %d\n", m.name, m.help, m.name, m.typ, m.name, m.v); err != nil {
			return err
		}
	}
	return nil
}

// Consume applies repartition records, releases what the stream time allows, writes
// the changed states to the changelog and returns the alerts. Called without records
// (a quiet poll), it releases the held inputs of partitions idle for Idle.
func (c *KeyedCorrelations) Consume(ctx context.Context, cl *kgo.Client, recs []*kgo.Record) ([]Alert, error) {
	// The worker calls again only once the alerts the last call returned are
	// acknowledged (and, for a poll with records, committed): the alerts kept for
	// that are no longer needed.
	for _, sh := range c.shards {
		for key := range sh.fired {
			if st := sh.s.State(key); st != nil && st.Extra != nil {
				st.Extra = nil
				sh.s.MarkDirty(key)
			}
		}
		clear(sh.fired)
		// Restored alerts go out now (c.reemit): kept until this call's are acknowledged.
		for key := range sh.restored {
			sh.fired[key] = true
		}
		clear(sh.restored)
	}
	out := c.reemit
	c.reemit = nil
	now := time.Now()
	touched := map[int32]bool{}
	for _, r := range recs {
		if r.Topic != c.repart {
			continue
		}
		sh := c.shards[r.Partition]
		if sh == nil {
			// Not announced by Assigned (should not happen): restore now.
			if err := c.restore(ctx, r.Partition, -1); err != nil {
				return nil, err
			}
			sh = c.shards[r.Partition]
		}
		sh.seen, sh.lastOff = now, r.Offset
		touched[r.Partition] = true
		in, err := engine.DecodeInput(r.Value)
		if err != nil {
			c.stats.BadRecords.Add(1)
			c.report(fmt.Errorf("%s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err))
			continue
		}
		if st := sh.s.State(in.Key()); st != nil && r.Offset <= st.Pos {
			// Applied before a crash, the state restored with it.
			c.stats.Replayed.Add(1)
			continue
		}
		oc, err := sh.s.Add(in, r.Offset)
		if err != nil {
			c.stats.BadRecords.Add(1)
			c.report(fmt.Errorf("%s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err))
			continue
		}
		switch oc {
		case engine.Late:
			c.stats.Late.Add(1)
			at := time.Unix(0, in.Time).UTC()
			behind := sh.s.Stream.Sub(at)
			why := fmt.Sprintf("beyond the grace of %s", c.cfg.Grace)
			if behind <= c.cfg.Grace {
				why = "older than an event of its key already correlated (held events are correlated at once after a quiet period)"
			}
			c.report(fmt.Errorf("%s/%d@%d: event of %s at %s came %s after the partition's stream time %s, %s: not correlated",
				r.Topic, r.Partition, r.Offset, in.Src, at.Format(time.RFC3339Nano), behind, sh.s.Stream.Format(time.RFC3339Nano), why))
		case engine.Duplicate:
			c.stats.Duplicates.Add(1)
		default:
			c.stats.Applied.Add(1)
		}
	}
	parts := make([]int32, 0, len(c.shards))
	for p := range c.shards {
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	var writes []*kgo.Record
	for _, p := range parts {
		sh := c.shards[p]
		var ka []engine.KeyedAlert
		need := sh.lastOff + 1
		switch {
		case touched[p]:
			ka = sh.s.Release(ka)
		case now.Sub(sh.seen) >= c.cfg.Idle:
			// Quiet: nothing older is coming soon. The alerts' poll is already
			// committed, so only a later commit proves them acknowledged.
			ka = sh.s.ReleaseAll(ka)
			need = sh.lastOff + 2
		}
		walk := now.Sub(sh.swept) >= sweepEvery
		if walk {
			ka = sh.s.Expire(ka)
		}
		for _, a := range ka {
			f := fired{Need: need, Off: sh.lastOff, Agg: a.Agg, Time: a.Time.UnixNano(), Value: a.Value, Evs: a.Events,
				First: a.First.UnixNano(), IDs: a.IDs}
			for _, g := range a.Group {
				f.Group = append(f.Group, g.Value)
				f.Names = append(f.Names, g.Name)
			}
			if st := sh.s.State(a.StateKey); st != nil {
				var fs []fired
				if len(st.Extra) > 0 {
					_ = json.Unmarshal(st.Extra, &fs) // written below by this process
				}
				st.Extra, _ = json.Marshal(append(fs, f))
				sh.s.MarkDirty(a.StateKey)
				sh.fired[a.StateKey] = true
			}
			if al, ok := c.alertOf(f, p); ok {
				out = append(out, al)
			}
		}
		if walk {
			sh.s.Sweep()
			sh.swept = now
		}
		dirty := sh.s.Dirty()
		if len(dirty) == 0 {
			continue
		}
		for _, key := range dirty {
			writes = append(writes, &kgo.Record{Topic: c.changelog, Partition: p, Key: []byte(key), Value: sh.s.Encode(key)})
		}
		writes = append(writes, &kgo.Record{Topic: c.changelog, Partition: p, Key: []byte(metaKey), Value: sh.s.EncodeMeta()})
	}
	if len(writes) > 0 {
		if err := c.prod.ProduceSync(ctx, writes...).FirstErr(); err != nil {
			return nil, fmt.Errorf("writing %d states to %s: %w", len(writes), c.changelog, err)
		}
	}
	c.stats.Alerts.Add(int64(len(out)))
	c.keys()
	return out, nil
}

// alertOf rebuilds the alert a fired entry records.
func (c *KeyedCorrelations) alertOf(f fired, p int32) (Alert, bool) {
	r := c.k.Rule(f.Agg)
	if r == nil {
		c.report(fmt.Errorf("%s/%d: alert of correlation %q, which is not loaded here", c.changelog, p, f.Agg))
		return Alert{}, false
	}
	a := engine.Alert{Rule: r, Time: time.Unix(0, f.Time).UTC(), Value: f.Value, Events: f.Evs, First: time.Unix(0, f.First).UTC(), IDs: f.IDs}
	for i, v := range f.Group {
		a.Group = append(a.Group, event.Field{Name: f.Names[i], Value: v})
	}
	// The key names the correlation, the group and the events that made the alert:
	// the same whoever raises it, however often.
	key := f.Agg + "\x00" + strings.Join(f.Group, "\x00") + "\x00" + strings.Join(f.IDs, ",") + "\x00" + strconv.FormatInt(f.Time, 10)
	return Alert{Record: hunt.AlertRecord(a), Key: key, Where: Partition{c.repart, p}, Offset: f.Off}, true
}
