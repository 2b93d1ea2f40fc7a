package stream

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ruledex/ruledex/engine"
	"github.com/ruledex/ruledex/event"
	"github.com/ruledex/ruledex/hunt"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/lang/sigma"
	"github.com/ruledex/ruledex/rule"
)

const benchRules = `title: Failed logon
id: 00000000-0000-0000-0000-000000000001
logsource:
  product: windows
  service: security
detection:
  sel:
    EventID: 4625
  condition: sel
---
title: Many failed logons for one account
id: 00000000-0000-0000-0000-0000000000cc
correlation:
  type: event_count
  rules: [00000000-0000-0000-0000-000000000001]
  group-by: [TargetUserName]
  timespan: 5m
  condition: {gte: 3}
`

// BenchmarkKeyedCorrelations: the Kafka side of one correlated event on kfake in
// process: Feed (produce to the repartition topic, acknowledged), reading it back,
// Consume (state, changelog write acknowledged). 50 accounts, one failure a second.
func BenchmarkKeyedCorrelations(b *testing.B) {
	rs, diags := sigma.Parser{}.Parse(rule.Source{Path: "bench.yml"}, []byte(benchRules))
	if len(diags) > 0 {
		b.Fatal(diags)
	}
	h := hunt.New(rs, engine.Options{})
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	addrs := c.ListenAddrs()
	ctx := context.Background()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	rep, _ := CorrTopics("bench")
	if err := CreateCorrTopics(ctx, kadm.NewClient(cl), "bench", 4, 1); err != nil {
		b.Fatal(err)
	}
	kc, err := NewKeyedCorrelations(CorrConfig{Brokers: addrs, Group: "bench", Hunter: h, Grace: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	defer kc.Close()
	ps := []Partition{{rep, 0}, {rep, 1}, {rep, 2}, {rep, 3}}
	if err := kc.Assigned(ctx, cl, ps); err != nil {
		b.Fatal(err)
	}
	rd, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{rep: {
		0: kgo.NewOffset().AtStart(), 1: kgo.NewOffset().AtStart(), 2: kgo.NewOffset().AtStart(), 3: kgo.NewOffset().AtStart()}}),
		kgo.FetchMaxWait(10*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	defer rd.Close()
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	const batch = 1000
	var ms []engine.Match
	var fed []Fed
	alerts := 0
	var feedT, readT, consumeT time.Duration
	cpu0 := corpustest.CPUTime()
	b.ResetTimer()
	for n := 0; n < b.N; n += batch {
		fed = fed[:0]
		for i := n; i < n+batch; i++ {
			var ev event.Event
			ev.Add("Channel", "Security")
			ev.Add("EventID", "4625")
			ev.Add("TargetUserName", fmt.Sprintf("user%d", i%50))
			ev.Add("TimeCreated", t0.Add(time.Duration(i)*time.Second).Format(time.RFC3339Nano))
			var f *hunt.Fed
			ms, _, f = h.MatchEvent(&ev, "bench", ms, nil)
			if f == nil {
				b.Fatal("the event feeds no correlation")
			}
			fed = append(fed, Fed{Fed: *f, Partition: Partition{"events", int32(i % 6)}, Offset: int64(i / 6)})
		}
		t1 := time.Now()
		if err := kc.Feed(ctx, cl, fed); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		var recs []*kgo.Record
		for len(recs) < batch {
			fs := rd.PollFetches(ctx)
			recs = append(recs, fs.Records()...)
		}
		t3 := time.Now()
		as, err := kc.Consume(ctx, cl, recs)
		if err != nil {
			b.Fatal(err)
		}
		feedT, readT, consumeT = feedT+t2.Sub(t1), readT+t3.Sub(t2), consumeT+time.Since(t3)
		alerts += len(as)
	}
	b.StopTimer()
	// The machine is shared: CPU time (this process: workers, client and the kfake
	// broker) says more than wall time.
	b.ReportMetric(float64((corpustest.CPUTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/input")
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(b.N) }
	b.ReportMetric(per(feedT), "feed-ns/input")
	b.ReportMetric(per(readT), "readback-ns/input")
	b.ReportMetric(per(consumeT), "consume-ns/input")
	if b.N >= 5*batch && alerts == 0 {
		b.Error("no alert: the benchmark correlates nothing")
	}
}
