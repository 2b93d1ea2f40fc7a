package engine

import (
	"testing"

	"github.com/ruledex/ruledex/lang/sigma"
	"github.com/ruledex/ruledex/rule"
)

// TestCorrelatorReads: the fields a hunt keeps for correlation are the group-by, value
// and time fields, in any case; nothing else.
func TestCorrelatorReads(t *testing.T) {
	text := `title: many logons
name: many_logons
logsource:
    product: windows
    service: security
detection:
    sel:
        EventID: 4625
    condition: sel
---
title: spray
correlation:
    type: value_count
    rules: many_logons
    group-by:
        - IpAddress
    timespan: 5m
    condition:
        field: TargetUserName
        gte: 10
`
	rs, diags := sigma.Parser{}.Parse(rule.Source{Path: "c.yml"}, []byte(text))
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	m, _ := Compile(rs, Options{})
	co, skipped := NewCorrelator(m)
	if len(skipped) > 0 {
		t.Fatal(skipped)
	}
	for _, tc := range []struct {
		name string
		want bool
	}{{"IpAddress", true}, {"ipaddress", true}, {"TargetUserName", true}, {"TimeCreated", true}, {"System_TimeCreated", true},
		{"CommandLine", false}, {"Computer", false}} {
		if got := co.Reads(tc.name); got != tc.want {
			t.Errorf("Reads(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}
