package stream

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ruledex/ruledex/hunt"
)

// Partition names one partition of a topic.
type Partition struct {
	Topic     string
	Partition int32
}

// Fed is a matched event of the events topic whose matches feed correlation rules,
// with where it was read.
type Fed struct {
	hunt.Fed
	Partition
	Offset int64
}

// Alert is a correlation alert to produce to the alerts topic.
type Alert struct {
	// Record is hunt.AlertRecord of the engine's alert: the alerts topic carries it as
	// `ruledex hunt --json` prints it.
	Record hunt.Record
	// Key identifies the alert whoever emits it and however often (after a crash the
	// same events are correlated again): the rule id, the group-by values and the
	// offsets or content of the events that completed it. alert_id is a hash of it.
	Key string
	// Where is the record that completed the alert (of a topic in Topics).
	Where Partition
	// Offset is that record's offset.
	Offset int64
}

// Correlations run correlation rules keyed across the workers of a group (issue 17
// item 3). A Worker calls it from its poll loop, one call at a time, never
// concurrently; cl is the worker's client (in the group, producing with the same
// settings as the alerts). Offsets are committed only after the calls that handed
// over the records returned without error and the alerts they returned are
// acknowledged: an error stops the worker without committing, and the records are
// read again by whoever takes their partitions.
type Correlations interface {
	// Topics are topics the worker's group consumes besides the events topic (the
	// repartition topic): their records go to Consume, not to the matcher.
	Topics() []string
	// Assigned is called with partitions (of every consumed topic) this worker
	// takes, before any of their records is handed over: restore their state first.
	Assigned(ctx context.Context, cl *kgo.Client, ps []Partition) error
	// Revoked is called with partitions this worker gives up. With lost false,
	// everything read from them was handed over and committed, and the alerts
	// returned were acknowledged. lost says that is not known: the group already
	// moved them (session expired), or the worker is stopping on an error or was
	// killed with a poll in hand; nothing may be written for them, and their next
	// owner reads the uncommitted records again.
	Revoked(ctx context.Context, cl *kgo.Client, ps []Partition, lost bool) error
	// Feed receives, per poll, the matched events of the events topic that feed
	// correlations, in offset order per partition. It must return once they are
	// durable (produced to the repartition topic and acknowledged).
	Feed(ctx context.Context, cl *kgo.Client, evs []Fed) error
	// Consume receives, per poll, the records of Topics, in offset order per
	// partition, and returns the alerts they complete. Its own writes (changelog)
	// must be acknowledged before it returns.
	Consume(ctx context.Context, cl *kgo.Client, recs []*kgo.Record) ([]Alert, error)
}
