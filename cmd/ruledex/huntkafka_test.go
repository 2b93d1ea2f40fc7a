package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/internal/regression"
)

// TestHuntKafkaBinary drives the built binary as a platform team would: two
// `ruledex hunt --kafka` processes in one group, one killed with SIGKILL mid-stream
// and started again, the other stopped with SIGTERM. The alerts, deduplicated by
// alert_id, are exactly the lines `ruledex hunt --json` prints for the same files,
// once per time the files were produced.
func TestHuntKafkaBinary(t *testing.T) {
	corpus := corpustest.Dir(t)
	rules := filepath.Join(corpus, "sigma", "sigmahq", "rules", "windows") + "," +
		filepath.Join(corpus, "sigma", "sigmahq", "rules-emerging-threats")

	files, values := kafkaEvents(t)

	// The reference: hunt --json on the files.
	ref := exec.Command(cliBin, append([]string{"hunt", "--rules", rules, "--json"}, files...)...)
	var refOut, refErr bytes.Buffer
	ref.Stdout, ref.Stderr = &refOut, &refErr
	if err := ref.Run(); err != nil {
		t.Fatalf("hunt --json: %v\n%s", err, refErr.String())
	}
	want := map[string]int{}
	nwant := 0
	for _, line := range strings.SplitAfter(refOut.String(), "\n") {
		if strings.Contains(line, `"file":"`) && !strings.Contains(line, `"file":""`) {
			want[line]++
			nwant++
		}
	}
	if nwant < 100 {
		t.Fatalf("hunt --json printed %d matches: the reference is broken\n%s", nwant, refErr.String())
	}

	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(4, "events"), kfake.SeedTopics(2, "alerts"),
		kfake.GroupMinSessionTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	addrs := c.ListenAddrs()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const rounds = 40 // per phase: enough that the victim dies mid-stream
	produce := func() {
		var rs []*kgo.Record
		for range rounds {
			for _, v := range values {
				rs = append(rs, &kgo.Record{Topic: "events", Key: []byte(strconv.Itoa(v.file)), Value: v.b})
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	metricsAddr := freeAddr(t)
	start := func(metrics string) (*exec.Cmd, *syncBuffer) {
		args := []string{"hunt", "--rules", rules, "--kafka", strings.Join(addrs, ","), "--topic", "events",
			"--group", "hunters", "--alerts", "alerts", "--from-beginning", "--session-timeout", "1s", "--stats-every", "500ms"}
		if metrics != "" {
			args = append(args, "--metrics", metrics)
		}
		cmd := exec.Command(cliBin, args...)
		var stderr syncBuffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd, &stderr
	}

	// Alerts, by alert_id.
	alerts := map[string]string{}
	raw := 0
	ac, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics("alerts"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer ac.Close()
	until := func(d time.Duration, n int, why string) {
		deadline := time.Now().Add(d)
		for len(alerts) < n {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d of %d alerts after %s", why, len(alerts), n, d)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			fs := ac.PollFetches(ctx)
			cancel()
			fs.EachRecord(func(r *kgo.Record) {
				raw++
				alerts[string(r.Key)] = string(r.Value)
			})
		}
	}

	victim, victimErr := start("")
	other, otherErr := start(metricsAddr)
	// Both hold partitions before the events come: otherwise the first one in may read
	// them all before the other joins.
	holding := regexp.MustCompile(`, [1-9][0-9]* partitions, `)
	for deadline := time.Now().Add(120 * time.Second); !holding.MatchString(victimErr.String()) || !holding.MatchString(otherErr.String()); {
		if time.Now().After(deadline) {
			t.Fatalf("the workers never both held partitions:\n%s\n%s", victimErr.String(), otherErr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	produce()
	// Kill the victim once its stats line shows it matched events: mid-stream.
	working := regexp.MustCompile(`stream: [1-9][0-9]* events`)
	for deadline := time.Now().Add(120 * time.Second); !working.MatchString(victimErr.String()); {
		if time.Now().After(deadline) {
			t.Fatalf("the victim never reported matched events:\n%s", victimErr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := victim.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	victim.Wait()
	// The victim's last stats line: how far it got.
	killedAt := working.FindAllString(victimErr.String(), -1)
	start("")
	produce()
	total := 2 * rounds * nwant
	until(180*time.Second, total, "all alerts")

	// Metrics, in the Prometheus text format, count what the surviving worker did
	// (asked until the group settled after the restart).
	var body []byte
	var problems []string
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		problems = nil
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
			problems = append(problems, fmt.Sprintf("metrics Content-Type %q", ct))
		}
		for _, name := range []string{"ruledex_stream_events_total", "ruledex_stream_matches_total", "ruledex_stream_rebalances_total", "ruledex_stream_assigned_partitions"} {
			if v, ok := metricValue(string(body), name); !ok || v <= 0 {
				problems = append(problems, fmt.Sprintf("metric %s = %v (present %v), want > 0", name, v, ok))
			}
		}
		if !strings.Contains(string(body), `ruledex_stream_partition_lag{topic="events",partition="`) {
			problems = append(problems, "no per-partition lag in the metrics")
		}
		if len(problems) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, p := range problems {
		t.Errorf("%s:\n%s", p, body)
	}

	// SIGTERM: the worker commits, leaves and exits 0 with a last stats line.
	other.Process.Signal(syscall.SIGTERM)
	if err := other.Wait(); err != nil {
		t.Errorf("worker after SIGTERM: %v\n%s", err, otherErr.String())
	}
	if !strings.Contains(otherErr.String(), "stream: ") || !strings.Contains(otherErr.String(), "events (") {
		t.Errorf("no stats line in the worker's stderr:\n%s", otherErr.String())
	}

	// Which file each events record holds, to turn alerts back into hunt lines.
	ec, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics("events"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	where := map[string]string{}
	for len(where) < 2*rounds*len(values) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		fs := ec.PollFetches(ctx)
		timedOut := ctx.Err() != nil
		cancel()
		if timedOut {
			t.Fatalf("read back %d events records", len(where))
		}
		fs.EachRecord(func(r *kgo.Record) {
			i, _ := strconv.Atoi(string(r.Key))
			where[fmt.Sprintf("%d/%d", r.Partition, r.Offset)] = files[i]
		})
	}
	got := map[string]int{}
	for id, line := range alerts {
		var x struct {
			ID        string `json:"alert_id"`
			Partition int32  `json:"partition"`
			Offset    int64  `json:"offset"`
		}
		if err := json.Unmarshal([]byte(line), &x); err != nil || x.ID != id {
			t.Fatalf("alert keyed %s: %s (%v)", id, line, err)
		}
		cut := strings.LastIndex(line, `,"alert_id":`)
		q, _ := json.Marshal(where[fmt.Sprintf("%d/%d", x.Partition, x.Offset)])
		got[strings.Replace(line[:cut]+"}\n", fmt.Sprintf(`"file":"events/%d"`, x.Partition), `"file":`+string(q), 1)]++
	}
	var diffs []string
	for line, n := range want {
		if got[line] != 2*rounds*n {
			diffs = append(diffs, fmt.Sprintf("hunt --json %d× (×%d rounds), alerts %d×: %s", n, 2*rounds, got[line], line))
		}
	}
	for line, n := range got {
		if want[line] == 0 {
			diffs = append(diffs, fmt.Sprintf("alert %d× that hunt --json does not print: %s", n, line))
		}
	}
	sort.Strings(diffs)
	for i, d := range diffs {
		if i == 10 {
			t.Errorf("... %d more differences", len(diffs)-10)
			break
		}
		t.Error(d)
	}
	t.Logf("%d alert records, %d distinct (%d expected); victim killed at %q of %d events", raw, len(alerts), total, killedAt[len(killedAt)-1], rounds*len(values))
}

// kafkaValue is one event of a regression file, compacted to one line: one record.
type kafkaValue struct {
	file int
	b    []byte
}

// kafkaEvents are the SigmaHQ regression JSON files and their events.
func kafkaEvents(t *testing.T) ([]string, []kafkaValue) {
	var files []string
	var values []kafkaValue
	seen := map[string]bool{}
	for _, c := range regression.Cases(t) {
		p := c.JSON()
		if seen[p] {
			continue
		}
		seen[p] = true
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		for dec.More() {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			var b bytes.Buffer
			json.Compact(&b, raw)
			values = append(values, kafkaValue{len(files), b.Bytes()})
		}
		files = append(files, p)
	}
	return files, values
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// metricValue reads an unlabelled sample of the text format.
func metricValue(text, name string) (float64, bool) {
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == name {
			v, err := strconv.ParseFloat(f[1], 64)
			return v, err == nil
		}
	}
	return 0, false
}

// syncBuffer is a bytes.Buffer a process writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestHuntKafkaBinaryCorrelations: with correlation rules, two `hunt --kafka`
// processes produce exactly what `hunt --json` prints for the same files, the
// correlation alerts included, although the events of a correlation are spread over
// partitions read by different workers (they meet in the repartition topic the
// first worker creates).
func TestHuntKafkaBinaryCorrelations(t *testing.T) {
	corpus := corpustest.Dir(t)
	rules := filepath.Join(corpus, "sigma", "sigmahq", "rules", "windows") + "," +
		filepath.Join(corpus, "sigma", "sigmahq", "rules-emerging-threats") + "," +
		filepath.Join("..", "..", "engine", "testdata", "keyed_correlations.yml")
	// The set's correlation decided at its window's end (lt 2): a file hunt decides it
	// at the end of the input, a stream (which has no end) when event time passes the
	// window, so they differ by design.
	const windowEndOnly = "6c0c7e3e-0000-4000-8000-000000000005"
	files, values := kafkaEvents(t)
	ref := exec.Command(cliBin, append([]string{"hunt", "--rules", rules, "--exclude", windowEndOnly, "--json"}, files...)...)
	var refOut, refErr bytes.Buffer
	ref.Stdout, ref.Stderr = &refOut, &refErr
	if err := ref.Run(); err != nil {
		t.Fatalf("hunt --json: %v\n%s", err, refErr.String())
	}
	want := map[string]int{}
	nwant, ncorr := 0, 0
	for _, line := range strings.SplitAfter(refOut.String(), "\n") {
		if line == "" {
			continue
		}
		want[line]++
		nwant++
		if strings.Contains(line, `"file":""`) {
			ncorr++
		}
	}
	if ncorr == 0 {
		t.Fatalf("hunt --json raised no correlation alert: the test would prove nothing\n%s", refErr.String())
	}

	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "events"), kfake.SeedTopics(2, "alerts"),
		kfake.GroupMinSessionTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	addrs := c.ListenAddrs()
	var procs []*exec.Cmd
	var logs []*syncBuffer
	for range 2 {
		cmd := exec.Command(cliBin, "hunt", "--rules", rules, "--exclude", windowEndOnly, "--kafka", strings.Join(addrs, ","), "--topic", "events",
			"--group", "hunters", "--alerts", "alerts", "--from-beginning", "--session-timeout", "1s",
			"--grace", "30000h", "--create-corr-topics", "4")
		var stderr syncBuffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		procs, logs = append(procs, cmd), append(logs, &stderr)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var rs []*kgo.Record
	for _, v := range values {
		rs = append(rs, &kgo.Record{Topic: "events", Key: []byte(strconv.Itoa(v.file)), Value: v.b})
	}
	if err := cl.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	where := map[string]string{}
	for _, r := range rs {
		where[fmt.Sprintf("%d/%d", r.Partition, r.Offset)] = files[must(strconv.Atoi(string(r.Key)))]
	}

	ac, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics("alerts"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer ac.Close()
	alerts := map[string]string{}
	deadline := time.Now().Add(120 * time.Second)
	for len(alerts) < nwant && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		ac.PollFetches(ctx).EachRecord(func(r *kgo.Record) { alerts[string(r.Key)] = string(r.Value) })
		cancel()
	}
	// Anything more than hunt prints would come now.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	ac.PollFetches(ctx).EachRecord(func(r *kgo.Record) { alerts[string(r.Key)] = string(r.Value) })
	cancel()
	for _, p := range procs {
		p.Process.Signal(syscall.SIGTERM)
	}
	for i, p := range procs {
		if err := p.Wait(); err != nil {
			t.Errorf("worker %d after SIGTERM: %v\n%s", i, err, logs[i].String())
		}
	}

	got := map[string]int{}
	for _, line := range alerts {
		var x struct {
			Topic     string `json:"topic"`
			Partition int32  `json:"partition"`
			Offset    int64  `json:"offset"`
		}
		if err := json.Unmarshal([]byte(line), &x); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		h := line[:strings.LastIndex(line, `,"alert_id":`)] + "}\n"
		if x.Topic == "events" {
			q, _ := json.Marshal(where[fmt.Sprintf("%d/%d", x.Partition, x.Offset)])
			h = strings.Replace(h, fmt.Sprintf(`"file":"events/%d"`, x.Partition), `"file":`+string(q), 1)
		}
		got[h]++
	}
	bad := 0
	for line, n := range want {
		if got[line] != n && bad < 10 {
			t.Errorf("hunt --json %d×, alerts %d×: %s", n, got[line], line)
			bad++
		}
	}
	for line, n := range got {
		if want[line] == 0 && bad < 20 {
			t.Errorf("alert %d× that hunt --json does not print: %s", n, line)
			bad++
		}
	}
	t.Logf("%d alerts (%d correlation alerts) as hunt --json prints them", len(alerts), ncorr)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
