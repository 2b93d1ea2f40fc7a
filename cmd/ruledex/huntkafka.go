package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	huntpkg "github.com/ruledex/ruledex/hunt"
	"github.com/ruledex/ruledex/stream"
)

// kafkaOptions are the flags of `hunt --kafka`.
type kafkaOptions struct {
	brokers        string
	topic          string
	group          string
	alerts         string
	fromBeginning  bool
	metrics        string
	statsEvery     time.Duration
	sessionTimeout time.Duration
	grace          time.Duration
	corrPartitions int32
}

func addKafkaFlags(cmd *cobra.Command, k *kafkaOptions) {
	cmd.Long += `

With --kafka, hunt is a worker of a Kafka consumer group instead: it reads JSON events
from --topic (one object per record, the shapes above), matches them and produces one
alert per match to --alerts: the --json object plus alert_id, topic, partition and
offset. Start the same command on several machines: the group shares the partitions
and moves them when a worker stops or joins. Offsets are committed only after the
brokers acknowledged the alerts of the events, so a worker killed at any point loses
nothing; what it had not committed is read again and its alerts come again with the
same alert_id (consumers drop duplicates by it). SIGINT or SIGTERM finishes the poll
in hand, commits it and leaves the group (exit status 0). --metrics ADDR serves
Prometheus metrics at /metrics; a stats line goes to stderr every --stats-every.
Correlation rules run keyed across the workers: the events that feed them go through
the topic GROUP-corr-repartition, their state is kept in the compacted topic
GROUP-corr-changelog (created by --create-corr-topics N), and event time drives the
windows, with events up to --grace late still put in order.`
	f := cmd.Flags()
	f.StringVar(&k.brokers, "kafka", "", "consume events from Kafka: bootstrap brokers host:port[,host:port...]")
	f.StringVar(&k.topic, "topic", "", "with --kafka: the events topic")
	f.StringVar(&k.group, "group", "", "with --kafka: the consumer group the workers share")
	f.StringVar(&k.alerts, "alerts", "", "with --kafka: the topic alerts are produced to")
	f.BoolVar(&k.fromBeginning, "from-beginning", false, "with --kafka: read partitions the group never committed from their start (default: only new events)")
	f.StringVar(&k.metrics, "metrics", "", "with --kafka: serve Prometheus metrics on ADDR (host:port) at /metrics")
	f.DurationVar(&k.statsEvery, "stats-every", 10*time.Second, "with --kafka: write a stats line to stderr this often (0: never)")
	f.DurationVar(&k.grace, "grace", 30*time.Second, "with --kafka: how late (event time) an event may arrive and still be correlated in time order")
	f.Int32Var(&k.corrPartitions, "create-corr-topics", 0, "with --kafka: create GROUP-corr-repartition and GROUP-corr-changelog with this many partitions if missing (0: they must exist)")
	f.DurationVar(&k.sessionTimeout, "session-timeout", 0, "with --kafka: how long the group waits for a silent worker before moving its partitions (default the client's, 45s)")
}

// kafkaArgs checks a --kafka command line: no EVENTS, and the file-only flags unset.
func kafkaArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return withCode(exitUsage, fmt.Errorf("--kafka reads events from the topic: no EVENTS (got %s)", strings.Join(args, " ")))
	}
	for _, name := range []string{"json", "csv", "timeline", "output", "json-summary", "from", "to"} {
		if cmd.Flags().Changed(name) {
			return withCode(exitUsage, fmt.Errorf("--%s does not apply to --kafka (alerts go to the --alerts topic as JSON)", name))
		}
	}
	return nil
}

func runHuntKafka(cmd *cobra.Command, stderr io.Writer, o huntOptions) error {
	k := o.kafka
	switch {
	case len(o.rules) == 0:
		return withCode(exitUsage, errors.New("hunt needs --rules PATH"))
	case k.topic == "" || k.group == "" || k.alerts == "":
		return withCode(exitUsage, errors.New("--kafka needs --topic EVENTS, --group GROUP and --alerts ALERTS"))
	}
	opts, err := huntEngineOptions(o)
	if err != nil {
		return err
	}
	loaded, err := huntpkg.LoadRules(o.rules, huntParsers(), huntpkg.Filter{MinLevel: o.minLevel, Status: o.status, Tags: o.tags, Exclude: o.exclude})
	if err != nil {
		return withCode(exitFailure, err)
	}
	h := huntpkg.New(loaded.Rules, opts)
	skipped := len(loaded.Skipped) + len(h.Skipped())
	if o.verbose {
		for _, s := range loaded.Skipped {
			fmt.Fprintf(stderr, "  skipped %s\n", s)
		}
		for _, s := range h.Skipped() {
			fmt.Fprintf(stderr, "  skipped %s (%s): %s\n", s.Rule.Source.Path, s.Rule.Title, s.Reason)
		}
	}
	if h.Loaded() == 0 {
		return withCode(exitFailure, errors.New("no rule could be loaded"))
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(stderr, "ruledex hunt: "+format+"\n", args...)
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	brokers := strings.Split(k.brokers, ",")
	cfg := stream.Config{
		Brokers: brokers, Topic: k.topic, Group: k.group, Alerts: k.alerts,
		FromBeginning: k.fromBeginning, Hunter: h, Parallel: o.workers, SessionTimeout: k.sessionTimeout,
		StatsEvery: k.statsEvery, Log: func(s string) { logf("%s", s) },
		Report: func(err error) { logf("%v", err) },
	}
	var kc *stream.KeyedCorrelations
	if h.Correlates() {
		kc, err = stream.NewKeyedCorrelations(stream.CorrConfig{Brokers: brokers, Group: k.group, Hunter: h, Grace: k.grace,
			Report: func(err error) { logf("correlations: %v", err) }})
		if err != nil {
			return withCode(exitUsage, err)
		}
		defer kc.Close()
		repart, changelog := stream.CorrTopics(k.group)
		if k.corrPartitions > 0 {
			adm, err := kadm.NewOptClient(kgo.SeedBrokers(brokers...))
			if err != nil {
				return withCode(exitFailure, err)
			}
			err = stream.CreateCorrTopics(ctx, adm, k.group, k.corrPartitions, -1)
			adm.Close()
			if err != nil {
				return withCode(exitFailure, fmt.Errorf("--create-corr-topics: %w", err))
			}
		}
		cfg.Correlations = kc
		logf("correlations keyed across workers through %s and %s", repart, changelog)
	}
	w, err := stream.New(cfg)
	if err != nil {
		return withCode(exitUsage, err)
	}
	if k.metrics != "" {
		ln, err := net.Listen("tcp", k.metrics)
		if err != nil {
			return withCode(exitFailure, fmt.Errorf("--metrics: %w", err))
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			w.Metrics().Handler().ServeHTTP(rw, r)
			if kc != nil {
				kc.WriteText(rw)
			}
		}))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		logf("metrics at http://%s/metrics", ln.Addr())
	}
	logf("%d rules loaded, %d skipped (--verbose lists them); group %s reads %s, alerts to %s",
		h.Loaded(), skipped, k.group, k.topic, k.alerts)
	err = w.Run(ctx)
	logf("%s", w.Metrics().Snapshot().Line())
	if err != nil {
		return withCode(exitFailure, err)
	}
	if ctx.Err() != nil {
		logf("stopped: the poll in hand was committed and the group left")
	}
	return nil
}
