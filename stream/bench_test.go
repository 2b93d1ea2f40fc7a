package stream

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ruledex/ruledex/hunt"
	"github.com/ruledex/ruledex/internal/corpustest"
)

// benchRecords is the stream a benchmark iteration consumes: the regression events
// repeated (each copy is a new event to the workers: other offsets, other alerts).
const benchRecords = 32000

// BenchmarkStream measures events per second end to end (fetch, decode, match,
// produce the alerts, wait for their acknowledgment, commit) with one and two
// workers on an in-process kfake cluster, and the same events hunted from a
// JSON-lines file. cpu-µs/event is the process's CPU time per event: for the Kafka
// runs it includes the in-process brokers and the producer's share is excluded
// (the events are produced before the timer starts).
func BenchmarkStream(b *testing.B) {
	f := loadFixture(b)
	var lines []byte
	for i := 0; i < benchRecords; i++ {
		lines = append(lines, f.values[i%len(f.values)].b...)
		lines = append(lines, '\n')
	}

	b.Run("file", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "events.jsonl")
		if err := os.WriteFile(path, lines, 0o644); err != nil {
			b.Fatal(err)
		}
		cpu0 := corpustest.CPUTime()
		b.ResetTimer()
		for range b.N {
			out := hunt.NewOutput(bufio.NewWriter(discard{}), hunt.JSON)
			sum, err := f.hunter.Run([]hunt.Input{hunt.FileInput(path)}, out, hunt.Options{Workers: 2})
			if err != nil || sum.Events != benchRecords {
				b.Fatalf("%v, %d events", err, sum.Events)
			}
		}
		report(b, cpu0)
	})

	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "events"), kfake.SeedTopics(4, "alerts"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	addrs := c.ListenAddrs()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	var rs []*kgo.Record
	for i := 0; i < benchRecords; i++ {
		v := f.values[i%len(f.values)]
		rs = append(rs, &kgo.Record{Topic: "events", Key: []byte(strconv.Itoa(i)), Value: v.b})
	}
	if err := cl.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
		b.Fatal(err)
	}
	cl.Close()

	group := 0
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("kafka-%dworkers", workers), func(b *testing.B) {
			cpu0 := corpustest.CPUTime()
			b.ResetTimer()
			for range b.N {
				// A new group reads the topic from its start.
				group++
				var ws []*Worker
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, workers)
				for range workers {
					w, err := New(Config{Brokers: addrs, Topic: "events", Group: "bench" + strconv.Itoa(group), Alerts: "alerts",
						FromBeginning: true, Hunter: f.hunter, Opts: []kgo.Opt{kgo.FetchMaxWait(50 * time.Millisecond)}})
					if err != nil {
						b.Fatal(err)
					}
					ws = append(ws, w)
					go func() { done <- w.Run(ctx) }()
				}
				for {
					var n int64
					for _, w := range ws {
						n += w.Metrics().Snapshot().Events
					}
					if n >= benchRecords {
						break
					}
					time.Sleep(5 * time.Millisecond)
				}
				b.StopTimer()
				cancel()
				for range workers {
					if err := <-done; err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
			}
			report(b, cpu0)
		})
	}
}

func report(b *testing.B, cpu0 time.Duration) {
	events := float64(b.N) * benchRecords
	b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64((corpustest.CPUTime()-cpu0).Microseconds())/events, "cpu-µs/event")
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
