package engine

import (
	"fmt"
	"testing"
	"time"

	"github.com/ruledex/ruledex/event"
	"github.com/ruledex/ruledex/lang/sigma"
	"github.com/ruledex/ruledex/rule"
)

const baseRules = `title: Failed logon
id: 00000000-0000-0000-0000-000000000001
name: failed_logon
logsource:
  product: windows
  service: security
detection:
  sel:
    EventID: 4625
  condition: sel
---
title: Process A
id: 00000000-0000-0000-0000-00000000000a
name: proc_a
logsource:
  product: windows
detection:
  sel:
    EventID: 1
    Image|endswith: '\a.exe'
  condition: sel
---
title: Process B
id: 00000000-0000-0000-0000-00000000000b
name: proc_b
logsource:
  product: windows
detection:
  sel:
    EventID: 1
    Image|endswith: '\b.exe'
  condition: sel
`

func parseAll(t *testing.T, text string) []*rule.Rule {
	t.Helper()
	rs, diags := sigma.Parser{}.Parse(rule.Source{Repo: "test", Path: "c.yml"}, []byte(text))
	for _, d := range diags {
		if d.Severity == rule.Error {
			t.Fatalf("parse: %s", d)
		}
	}
	for _, r := range rs {
		for _, d := range r.Diagnostics {
			if d.Severity == rule.Error {
				t.Fatalf("parse %s: %s", r.Title, d)
			}
		}
	}
	return rs
}

var t0 = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)

// tev builds an event at t0+sec seconds.
func tev(sec int, kv ...string) *event.Event {
	e := ev(kv...)
	e.Add("TimeCreated", t0.Add(time.Duration(sec)*time.Second).Format(time.RFC3339Nano))
	return e
}

func failed(sec int, user, ip string) *event.Event {
	return tev(sec, "Channel", "Security", "EventID", "4625", "TargetUserName", user, "IpAddress", ip)
}

func proc(sec int, image, computer string) *event.Event {
	return tev(sec, "EventID", "1", "Image", image, "Computer", computer)
}

type corrCase struct {
	name        string
	correlation string
	events      []*event.Event
	want        []string // "group=value" per alert, in order
}

var correlationCases = []corrCase{
	{"event_count", `correlation:
  type: event_count
  rules: [failed_logon]
  group-by: [TargetUserName]
  timespan: 5m
  condition: {gte: 3}`,
		[]*event.Event{failed(0, "alice", "1"), failed(10, "bob", "1"), failed(60, "alice", "1"), failed(100, "bob", "1"),
			failed(120, "alice", "1"), failed(0+600, "carol", "1"), failed(1000, "carol", "1"), failed(1400, "carol", "1")},
		[]string{"TargetUserName=alice:3"}},
	{"event_count sliding window", `correlation:
  type: event_count
  rules: [failed_logon]
  group-by: [TargetUserName]
  timespan: 1m
  condition: {gte: 3}`,
		[]*event.Event{failed(0, "dave", "1"), failed(50, "dave", "1"), failed(70, "dave", "1"), failed(100, "dave", "1")},
		[]string{"TargetUserName=dave:3"}},
	{"value_count", `correlation:
  type: value_count
  rules: [failed_logon]
  group-by: [IpAddress]
  timespan: 10m
  condition: {field: TargetUserName, gte: 3}`,
		[]*event.Event{failed(0, "u1", "10.0.0.1"), failed(1, "u1", "10.0.0.2"), failed(2, "u2", "10.0.0.1"),
			failed(3, "u1", "10.0.0.2"), failed(4, "u3", "10.0.0.1"), failed(5, "u1", "10.0.0.2")},
		[]string{"IpAddress=10.0.0.1:3"}},
	{"temporal", `correlation:
  type: temporal
  rules: [proc_a, proc_b]
  group-by: [Computer]
  timespan: 1m`,
		[]*event.Event{proc(0, `C:\b.exe`, "pc1"), proc(5, `C:\a.exe`, "pc2"), proc(20, `C:\a.exe`, "pc1"),
			proc(200, `C:\b.exe`, "pc2")},
		[]string{"Computer=pc1:2"}},
	{"temporal_ordered", `correlation:
  type: temporal_ordered
  rules: [proc_a, proc_b]
  group-by: [Computer]
  timespan: 1m`,
		[]*event.Event{proc(0, `C:\b.exe`, "pc1"), proc(10, `C:\a.exe`, "pc1"), proc(0, `C:\a.exe`, "pc2"),
			proc(30, `C:\b.exe`, "pc2")},
		// pc1 sees b then a: no order yet; pc2 sees a then b.
		[]string{"Computer=pc2:2"}},
	{"event_count lt decided at window end", `correlation:
  type: event_count
  rules: [failed_logon]
  group-by: [TargetUserName]
  timespan: 1h
  condition: {lt: 2}`,
		[]*event.Event{failed(0, "erin", "1"), failed(1, "frank", "1"), failed(2, "frank", "1")},
		[]string{"TargetUserName=erin:1"}},
}

func TestCorrelations(t *testing.T) {
	for _, c := range correlationCases {
		t.Run(c.name, func(t *testing.T) {
			text := baseRules + "---\ntitle: corr\nid: 00000000-0000-0000-0000-0000000000cc\n" + c.correlation + "\n"
			rs := parseAll(t, text)
			m, skipped := Compile(rs, Options{})
			if len(skipped) > 0 {
				t.Fatalf("skipped: %s", skipped[0].Reason)
			}
			co, sk := NewCorrelator(m)
			if len(sk) > 0 {
				t.Fatalf("correlation skipped: %s", sk[0].Reason)
			}
			var got []string
			var alerts []Alert
			for _, e := range c.events {
				alerts = co.Observe(e, m.Match(e, nil), alerts[:0])
				got = append(got, alertText(alerts)...)
			}
			got = append(got, alertText(co.Flush(nil))...)
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("alerts %q, want %q", got, c.want)
			}
		})
	}
}

func alertText(as []Alert) []string {
	var out []string
	for _, a := range as {
		s := ""
		for _, g := range a.Group {
			s += g.Name + "=" + g.Value
		}
		out = append(out, fmt.Sprintf("%s:%g", s, a.Value))
	}
	return out
}

func TestLegacyAggregations(t *testing.T) {
	cases := []struct {
		name, condition string
		events          []*event.Event
		want            []string
	}{
		{"count by", "sel | count() by Computer > 2", []*event.Event{
			proc(0, `C:\x.exe`, "pc1"), proc(1, `C:\x.exe`, "pc2"), proc(2, `C:\x.exe`, "pc1"), proc(3, `C:\x.exe`, "pc1")},
			[]string{"Computer=pc1:3"}},
		{"count field by", "sel | count(Image) by Computer > 1", []*event.Event{
			proc(0, `C:\x.exe`, "pc1"), proc(1, `C:\x.exe`, "pc1"), proc(2, `C:\y.exe`, "pc2"), proc(3, `C:\z.exe`, "pc2")},
			[]string{"Computer=pc2:2"}},
		{"count outside timeframe", "sel | count() by Computer > 1", []*event.Event{
			proc(0, `C:\x.exe`, "pc1"), proc(120, `C:\x.exe`, "pc1")}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			text := "title: agg\nid: 00000000-0000-0000-0000-0000000000dd\nlogsource:\n  product: windows\ndetection:\n  sel:\n    Image|endswith: '.exe'\n  timeframe: 1m\n  condition: " + c.condition + "\n"
			rs := parseAll(t, text)
			m, _ := Compile(rs, Options{})
			co, sk := NewCorrelator(m)
			if len(sk) > 0 {
				t.Fatalf("skipped: %s", sk[0].Reason)
			}
			if !co.Suppressed(rs[0]) {
				t.Error("base matches of an aggregation rule should be suppressed")
			}
			var got []string
			for _, e := range c.events {
				got = append(got, alertText(co.Observe(e, m.Match(e, nil), nil))...)
			}
			got = append(got, alertText(co.Flush(nil))...)
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("alerts %q, want %q", got, c.want)
			}
		})
	}
}
