package stream

import (
	"bufio"
	"strings"
	"testing"
)

// TestMetricsText: the exposition is Prometheus text format 0.0.4: every sample
// follows its HELP and TYPE lines, names are valid, lag is per assigned partition in
// topic and partition order, and a revoked partition's lag is gone.
func TestMetricsText(t *testing.T) {
	m := NewMetrics()
	m.events.Add(1200)
	m.matches.Add(30)
	m.rebalance([]Partition{{"events", 2}, {"events", 0}, {"corr", 1}, {"events", 10}}, nil)
	m.setLag(map[Partition]int64{{"events", 2}: 7, {"events", 0}: 0, {"events", 10}: 3, {"corr", 1}: 1, {"other", 0}: 99})
	m.rebalance(nil, []Partition{{"events", 10}})
	var b strings.Builder
	if err := m.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	tests := []struct{ name, line string }{
		{"counter", "ruledex_stream_events_total 1200"},
		{"counter", "ruledex_stream_matches_total 30"},
		{"two moves", "ruledex_stream_rebalances_total 2"},
		{"gauge", "ruledex_stream_assigned_partitions 3"},
		{"lag", "# TYPE ruledex_stream_partition_lag gauge\n" +
			`ruledex_stream_partition_lag{topic="corr",partition="1"} 1` + "\n" +
			`ruledex_stream_partition_lag{topic="events",partition="0"} 0` + "\n" +
			`ruledex_stream_partition_lag{topic="events",partition="2"} 7` + "\n"},
	}
	for _, tc := range tests {
		if !strings.Contains(text, tc.line) {
			t.Errorf("%s: no %q in\n%s", tc.name, tc.line, text)
		}
	}
	for _, gone := range []string{`partition="10"`, `topic="other"`} {
		if strings.Contains(text, gone) {
			t.Errorf("lag of a partition this worker does not hold (%s):\n%s", gone, text)
		}
	}
	// Every sample's metric was declared by the HELP and TYPE lines just before it
	// (or by the previous sample of the same metric).
	sc := bufio.NewScanner(strings.NewReader(text))
	declared := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "# HELP "):
			declared = strings.Fields(line)[2]
		case strings.HasPrefix(line, "# TYPE "):
			if f := strings.Fields(line); f[2] != declared || (f[3] != "counter" && f[3] != "gauge") {
				t.Errorf("TYPE line %q after HELP of %s", line, declared)
			}
		default:
			name := strings.FieldsFunc(line, func(r rune) bool { return r == '{' || r == ' ' })[0]
			if name != declared {
				t.Errorf("sample %q not under its HELP/TYPE (%s)", line, declared)
			}
			if strings.HasSuffix(name, "_total") != strings.Contains(text, "# TYPE "+name+" counter") {
				t.Errorf("%s: counters, and only they, end in _total", name)
			}
		}
	}
}
