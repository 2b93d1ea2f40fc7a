package engine

import (
	"testing"

	"github.com/ruledex/ruledex/event"
	"github.com/ruledex/ruledex/lang/sigma"
	"github.com/ruledex/ruledex/rule"
	"github.com/ruledex/ruledex/winevent"
)

// TestRoutingIssue13: list-valued log sources route every value, another product's
// rule never runs on events with a Channel (still on channel-less JSON), and routing
// reads the header copy System_Channel/System_EventID when a data field took the name.
func TestRoutingIssue13(t *testing.T) {
	cat, err := winevent.Routing()
	if err != nil {
		t.Fatal(err)
	}
	parse := func(text string) *rule.Rule {
		rs, diags := sigma.Parser{}.Parse(rule.Source{Path: "t.yml"}, []byte(text))
		if len(diags) > 0 || len(rs) != 1 {
			t.Fatalf("%v", diags)
		}
		return rs[0]
	}
	listRule := parse(`title: list
logsource:
    product: windows
    category:
        - ps_module
        - ps_script
detection:
    sel:
        EventID: [4103, 4104]
        Payload|contains: 'Start-BitsTransfer'
    condition: sel
`)
	linuxRule := parse(`title: linux
logsource:
    product: linux
detection:
    keywords:
        - disabled
    condition: keywords
`)
	clearedRule := parse(`title: cleared
logsource:
    product: windows
    service: system
detection:
    sel:
        EventID: 104
        Channel: Security
    condition: sel
`)
	m, skipped := Compile([]*rule.Rule{listRule, linuxRule, clearedRule}, Options{Router: CatalogRouter{Catalog: cat}})
	if len(skipped) > 0 {
		t.Fatal(skipped)
	}
	ev := func(kv ...string) *event.Event {
		e := &event.Event{}
		for i := 0; i+1 < len(kv); i += 2 {
			e.Add(kv[i], kv[i+1])
		}
		return e
	}
	tests := []struct {
		name string
		ev   *event.Event
		want string // title of the rule that matches, "" for none
	}{
		{"ps_module value (4103)", ev("Channel", "Microsoft-Windows-PowerShell/Operational", "EventID", "4103", "Payload", "Start-BitsTransfer -Source x"), "list"},
		{"ps_script value (4104)", ev("Channel", "Microsoft-Windows-PowerShell/Operational", "EventID", "4104", "Payload", "Start-BitsTransfer -Source x"), "list"},
		{"linux rule, Windows event", ev("Channel", "Security", "EventID", "4688", "CommandLine", "sc config x start= disabled"), ""},
		{"linux rule, channel-less line", ev("message", "service disabled"), "linux"},
		{"cleared Security log from the System log", ev("System_Channel", "System", "EventID", "104", "Channel", "Security"), "cleared"},
		{"header System_Channel routes, not the data Channel", ev("System_Channel", "Security", "EventID", "104", "Channel", "Security"), ""},
	}
	for _, tc := range tests {
		got := ""
		for _, x := range m.Match(tc.ev, nil) {
			got += x.Rule.Title
		}
		if got != tc.want {
			t.Errorf("%s: matched %q, want %q", tc.name, got, tc.want)
		}
	}
}
