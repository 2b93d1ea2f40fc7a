package engine

import (
	"encoding/base64"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/ruledex/ruledex/event"
	"github.com/ruledex/ruledex/lang/sigma"
	"github.com/ruledex/ruledex/rule"
)

// parseRule reads one Sigma rule from YAML, failing on parser errors.
func parseRule(t testing.TB, body string) *rule.Rule {
	t.Helper()
	rs, diags := sigma.Parser{}.Parse(rule.Source{Repo: "test", Path: "test.yml"}, []byte(body))
	for _, d := range diags {
		if d.Severity == rule.Error {
			t.Fatalf("parse: %s", d)
		}
	}
	if len(rs) != 1 {
		t.Fatalf("parsed %d rules, want 1", len(rs))
	}
	for _, d := range rs[0].Diagnostics {
		if d.Severity == rule.Error {
			t.Fatalf("parse: %s", d)
		}
	}
	return rs[0]
}

func ruleText(detection string) string {
	return "title: t\nid: 11111111-1111-1111-1111-111111111111\nlogsource:\n  product: windows\ndetection:\n" + detection
}

func ev(kv ...string) *event.Event {
	e := &event.Event{}
	for i := 0; i+1 < len(kv); i += 2 {
		e.Add(kv[i], kv[i+1])
	}
	return e
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func utf16le(s string) string {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u), byte(u>>8))
	}
	return string(b)
}

func utf16be(s string) string {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u>>8), byte(u))
	}
	return string(b)
}

type modCase struct {
	name      string
	detection string
	event     *event.Event
	want      bool
}

var modifierCases = []modCase{
	// Plain values: equality, case-insensitive by default.
	{"eq folds case", "  sel:\n    Image: 'C:\\Windows\\System32\\cmd.exe'\n  condition: sel\n", ev("Image", `c:\windows\system32\CMD.EXE`), true},
	{"eq is whole value", "  sel:\n    Image: 'cmd.exe'\n  condition: sel\n", ev("Image", `C:\cmd.exe`), false},
	{"eq non-ASCII folds", "  sel:\n    User: 'ÉLODIE'\n  condition: sel\n", ev("User", "élodie"), true},
	{"list is OR", "  sel:\n    Image: ['a.exe', 'b.exe']\n  condition: sel\n", ev("Image", "B.EXE"), true},
	{"fields are AND", "  sel:\n    Image: 'a.exe'\n    User: 'bob'\n  condition: sel\n", ev("Image", "a.exe", "User", "alice"), false},
	{"absent field fails", "  sel:\n    Image: 'a.exe'\n  condition: sel\n", ev("User", "a.exe"), false},
	{"field name case-insensitive", "  sel:\n    image: 'a.exe'\n  condition: sel\n", ev("Image", "a.exe"), true},
	{"field name without spaces", "  sel:\n    ThreatName: 'x'\n  condition: sel\n", ev("Threat Name", "X"), true},
	// cased
	{"cased differs", "  sel:\n    Image|cased: 'CMD.exe'\n  condition: sel\n", ev("Image", "cmd.exe"), false},
	{"cased same", "  sel:\n    Image|cased: 'CMD.exe'\n  condition: sel\n", ev("Image", "CMD.exe"), true},
	{"cased contains", "  sel:\n    CommandLine|contains|cased: 'Invoke'\n  condition: sel\n", ev("CommandLine", "x invoke y"), false},
	// contains / startswith / endswith
	{"contains", "  sel:\n    CommandLine|contains: '/transfer'\n  condition: sel\n", ev("CommandLine", "bitsadmin /TRANSFER job"), true},
	{"contains miss", "  sel:\n    CommandLine|contains: '/transfer'\n  condition: sel\n", ev("CommandLine", "bitsadmin /list"), false},
	{"startswith", "  sel:\n    CommandLine|startswith: 'cmd /c'\n  condition: sel\n", ev("CommandLine", "CMD /C whoami"), true},
	{"startswith miss", "  sel:\n    CommandLine|startswith: 'cmd /c'\n  condition: sel\n", ev("CommandLine", "x cmd /c"), false},
	{"endswith", "  sel:\n    Image|endswith: '\\bitsadmin.exe'\n  condition: sel\n", ev("Image", `C:\Windows\System32\BITSADMIN.exe`), true},
	{"endswith miss", "  sel:\n    Image|endswith: '\\bitsadmin.exe'\n  condition: sel\n", ev("Image", `C:\bitsadmin.exe.bak`), false},
	{"contains all", "  sel:\n    CommandLine|contains|all: ['-nop', '-enc']\n  condition: sel\n", ev("CommandLine", "powershell -nop -enc AAA"), true},
	{"contains all miss", "  sel:\n    CommandLine|contains|all: ['-nop', '-enc']\n  condition: sel\n", ev("CommandLine", "powershell -nop"), false},
	// wildcards and escapes
	{"star inside", "  sel:\n    Image: 'C:\\\\*\\cmd.exe'\n  condition: sel\n", ev("Image", `c:\windows\system32\cmd.exe`), true},
	{"question mark", "  sel:\n    Image: '*\\cmd?.exe'\n  condition: sel\n", ev("Image", `C:\x\cmd2.exe`), true},
	{"question mark is one char", "  sel:\n    Image: '*\\cmd?.exe'\n  condition: sel\n", ev("Image", `C:\x\cmd.exe`), false},
	{"question mark non-ASCII", "  sel:\n    User: 'j?rg'\n  condition: sel\n", ev("User", "jörg"), true},
	{"escaped star is literal", "  sel:\n    CommandLine: 'a\\*b'\n  condition: sel\n", ev("CommandLine", "a*b"), true},
	{"escaped star not wild", "  sel:\n    CommandLine: 'a\\*b'\n  condition: sel\n", ev("CommandLine", "axxb"), false},
	{"escaped question", "  sel:\n    CommandLine: 'a\\?'\n  condition: sel\n", ev("CommandLine", "ab"), false},
	{"escaped star after backslash", "  sel:\n    Image: 'C:\\Windows\\*'\n  condition: sel\n", ev("Image", `C:\Windows*`), true},
	{"backslash then wildcard", "  sel:\n    Image: 'C:\\Windows\\\\*'\n  condition: sel\n", ev("Image", `C:\Windows\x.exe`), true},
	{"star matches empty", "  sel:\n    Image: '*cmd.exe'\n  condition: sel\n", ev("Image", "cmd.exe"), true},
	{"star backtracks", "  sel:\n    CommandLine: '*ab*ab'\n  condition: sel\n", ev("CommandLine", "xabyabab"), true},
	{"lone star needs field", "  sel:\n    Image: '*'\n  condition: sel\n", ev("User", "x"), false},
	// windash
	{"windash slash", "  sel:\n    CommandLine|windash|contains: ' -enc '\n  condition: sel\n", ev("CommandLine", "powershell /enc AAA"), true},
	{"windash en dash", "  sel:\n    CommandLine|windash|contains: ' -enc '\n  condition: sel\n", ev("CommandLine", "powershell \u2013enc AAA"), true},
	{"windash em dash", "  sel:\n    CommandLine|windash|contains: ' -enc '\n  condition: sel\n", ev("CommandLine", "powershell \u2014enc AAA"), true},
	{"windash horizontal bar", "  sel:\n    CommandLine|windash|contains: ' -enc '\n  condition: sel\n", ev("CommandLine", "powershell \u2015enc AAA"), true},
	{"windash dash", "  sel:\n    CommandLine|windash|contains: ' -enc '\n  condition: sel\n", ev("CommandLine", "powershell -enc AAA"), true},
	{"windash other char", "  sel:\n    CommandLine|windash|contains: ' -enc '\n  condition: sel\n", ev("CommandLine", "powershell +enc AAA"), false},
	{"windash two dashes", "  sel:\n    CommandLine|windash|contains: '-a -b'\n  condition: sel\n", ev("CommandLine", "x /a \u2013b"), true},
	// base64 family: expected encodings are computed here with the standard library
	{"base64", "  sel:\n    CommandLine|base64|contains: 'http://'\n  condition: sel\n", ev("CommandLine", "x "+b64("http://")+" y"), true},
	{"base64 is cased", "  sel:\n    CommandLine|base64|contains: 'http://'\n  condition: sel\n", ev("CommandLine", strings.ToLower(b64("http://"))), false},
	{"base64offset 0", "  sel:\n    CommandLine|base64offset|contains: 'foobar'\n  condition: sel\n", ev("CommandLine", b64("foobar!!")), true},
	{"base64offset 1", "  sel:\n    CommandLine|base64offset|contains: 'foobar'\n  condition: sel\n", ev("CommandLine", b64("xfoobar!!")), true},
	{"base64offset 2", "  sel:\n    CommandLine|base64offset|contains: 'foobar'\n  condition: sel\n", ev("CommandLine", b64("xyfoobar!!")), true},
	{"base64offset miss", "  sel:\n    CommandLine|base64offset|contains: 'foobar'\n  condition: sel\n", ev("CommandLine", b64("xyfoxbar!!")), false},
	{"utf16le base64offset", "  sel:\n    CommandLine|utf16le|base64offset|contains: 'ping'\n  condition: sel\n", ev("CommandLine", b64(utf16le("a ping b"))), true},
	{"wide base64offset", "  sel:\n    CommandLine|wide|base64offset|contains: 'ping'\n  condition: sel\n", ev("CommandLine", b64(utf16le("xping"))), true},
	{"utf16be base64", "  sel:\n    CommandLine|utf16be|base64|contains: 'ping'\n  condition: sel\n", ev("CommandLine", "."+b64(utf16be("ping"))+"."), true},
	{"utf16 bom base64", "  sel:\n    CommandLine|utf16|base64|contains: 'ping'\n  condition: sel\n", ev("CommandLine", b64("\xff\xfe"+utf16le("ping"))), true},
	{"utf16le not be", "  sel:\n    CommandLine|utf16le|base64|contains: 'ping'\n  condition: sel\n", ev("CommandLine", b64(utf16be("ping"))), false},
	// cidr
	{"cidr v4", "  sel:\n    DestinationIp|cidr: '10.0.0.0/8'\n  condition: sel\n", ev("DestinationIp", "10.1.2.3"), true},
	{"cidr v4 miss", "  sel:\n    DestinationIp|cidr: '10.0.0.0/8'\n  condition: sel\n", ev("DestinationIp", "11.0.0.1"), false},
	{"cidr list", "  sel:\n    DestinationIp|cidr: ['10.0.0.0/8', '192.168.0.0/16']\n  condition: sel\n", ev("DestinationIp", "192.168.4.4"), true},
	{"cidr v6", "  sel:\n    DestinationIp|cidr: 'fe80::/10'\n  condition: sel\n", ev("DestinationIp", "FE80::1"), true},
	{"cidr v6 miss", "  sel:\n    DestinationIp|cidr: 'fe80::/10'\n  condition: sel\n", ev("DestinationIp", "2001:db8::1"), false},
	{"cidr v4-mapped", "  sel:\n    DestinationIp|cidr: '127.0.0.0/8'\n  condition: sel\n", ev("DestinationIp", "::ffff:127.0.0.1"), true},
	{"cidr not an ip", "  sel:\n    DestinationIp|cidr: '10.0.0.0/8'\n  condition: sel\n", ev("DestinationIp", "-"), false},
	// re
	{"re", "  sel:\n    CommandLine|re: '\\s-e(nc)?\\s'\n  condition: sel\n", ev("CommandLine", "powershell -enc AA"), true},
	{"re is cased", "  sel:\n    CommandLine|re: 'Invoke-Expression'\n  condition: sel\n", ev("CommandLine", "invoke-expression"), false},
	{"re i", "  sel:\n    CommandLine|re|i: 'Invoke-Expression'\n  condition: sel\n", ev("CommandLine", "invoke-expression"), true},
	{"re m", "  sel:\n    ScriptBlockText|re|m: '^iex$'\n  condition: sel\n", ev("ScriptBlockText", "a\niex\nb"), true},
	{"re without m", "  sel:\n    ScriptBlockText|re: '^iex$'\n  condition: sel\n", ev("ScriptBlockText", "a\niex\nb"), false},
	{"re s", "  sel:\n    ScriptBlockText|re|s: 'a.b'\n  condition: sel\n", ev("ScriptBlockText", "a\nb"), true},
	{"re without s", "  sel:\n    ScriptBlockText|re: 'a.b'\n  condition: sel\n", ev("ScriptBlockText", "a\nb"), false},
	{"re lookahead fallback", "  sel:\n    CommandLine|re: 'foo(?!bar)'\n  condition: sel\n", ev("CommandLine", "foobaz"), true},
	{"re lookahead fallback miss", "  sel:\n    CommandLine|re: 'foo(?!bar)'\n  condition: sel\n", ev("CommandLine", "foobar"), false},
	{"re backreference", "  sel:\n    CommandLine|re: '(ab)\\1'\n  condition: sel\n", ev("CommandLine", "xababx"), true},
	// fieldref
	{"fieldref equal", "  sel:\n    ParentImage|fieldref: Image\n  condition: sel\n", ev("Image", `C:\a.exe`, "ParentImage", `c:\A.exe`), true},
	{"fieldref differ", "  sel:\n    ParentImage|fieldref: Image\n  condition: sel\n", ev("Image", `C:\a.exe`, "ParentImage", `C:\b.exe`), false},
	{"fieldref absent", "  sel:\n    ParentImage|fieldref: Image\n  condition: sel\n", ev("ParentImage", `C:\b.exe`), false},
	{"fieldref endswith", "  sel:\n    CommandLine|fieldref|endswith: Image\n  condition: sel\n", ev("Image", `a.exe`, "CommandLine", `run a.exe`), true},
	// exists
	{"exists true", "  sel:\n    Hashes|exists: true\n  condition: sel\n", ev("Hashes", ""), true},
	{"exists true absent", "  sel:\n    Hashes|exists: true\n  condition: sel\n", ev("Image", "x"), false},
	{"exists false", "  sel:\n    Hashes|exists: false\n  condition: sel\n", ev("Image", "x"), true},
	{"exists false present", "  sel:\n    Hashes|exists: false\n  condition: sel\n", ev("Hashes", "x"), false},
	// numbers
	{"number eq", "  sel:\n    EventID: 4688\n  condition: sel\n", ev("EventID", "4688"), true},
	{"number eq other", "  sel:\n    EventID: 4688\n  condition: sel\n", ev("EventID", "46880"), false},
	{"gt", "  sel:\n    Level|gt: 3\n  condition: sel\n", ev("Level", "4"), true},
	{"gt equal", "  sel:\n    Level|gt: 3\n  condition: sel\n", ev("Level", "3"), false},
	{"gte", "  sel:\n    Level|gte: 3\n  condition: sel\n", ev("Level", "3"), true},
	{"lt numeric not lexical", "  sel:\n    Size|lt: 100\n  condition: sel\n", ev("Size", "9"), true},
	{"lte", "  sel:\n    Size|lte: 100\n  condition: sel\n", ev("Size", "100.5"), false},
	{"gt hex value", "  sel:\n    Flags|gt: 15\n  condition: sel\n", ev("Flags", "0x10"), true},
	{"gt not a number", "  sel:\n    Size|gt: 1\n  condition: sel\n", ev("Size", "big"), false},
	// keywords
	{"keyword anywhere", "  keywords:\n    - 'mimikatz'\n  condition: keywords\n", ev("Image", "x", "CommandLine", "run MIMIKATZ now"), true},
	{"keyword miss", "  keywords:\n    - 'mimikatz'\n  condition: keywords\n", ev("CommandLine", "run now"), false},
	{"keyword list OR", "  keywords:\n    - 'aaa'\n    - 'bbb'\n  condition: keywords\n", ev("X", "zbbbz"), true},
	{"keyword wildcard", "  keywords:\n    - 'sekurlsa::*pass'\n  condition: keywords\n", ev("X", "sekurlsa::logonpasswords"), true},
	{"keyword all", "  keywords:\n    '|all':\n      - 'aaa'\n      - 'bbb'\n  condition: keywords\n", ev("X", "aaa", "Y", "bbb"), true},
	// null and empty
	{"null absent", "  sel:\n    Image: 'a'\n    User: null\n  condition: sel\n", ev("Image", "a"), true},
	{"null empty", "  sel:\n    Image: 'a'\n    User: null\n  condition: sel\n", ev("Image", "a", "User", ""), true},
	{"null present", "  sel:\n    Image: 'a'\n    User: null\n  condition: sel\n", ev("Image", "a", "User", "bob"), false},
	{"empty string", "  sel:\n    User: ''\n  condition: sel\n", ev("User", ""), true},
	{"empty string absent", "  sel:\n    User: ''\n  condition: sel\n", ev("Image", "x"), false},
	{"empty string present", "  sel:\n    User: ''\n  condition: sel\n", ev("User", "bob"), false},
	// conditions
	{"not", "  sel:\n    Image|endswith: '\\a.exe'\n  filter:\n    User: 'SYSTEM'\n  condition: sel and not filter\n", ev("Image", `C:\a.exe`, "User", "system"), false},
	{"not absent", "  sel:\n    Image|endswith: '\\a.exe'\n  filter:\n    User: 'SYSTEM'\n  condition: sel and not filter\n", ev("Image", `C:\a.exe`), true},
	{"1 of", "  sel_a:\n    Image: 'a'\n  sel_b:\n    Image: 'b'\n  condition: 1 of sel_*\n", ev("Image", "b"), true},
	{"all of", "  sel_a:\n    Image: 'a'\n  sel_b:\n    User: 'b'\n  condition: all of sel_*\n", ev("Image", "a"), false},
	{"all of them", "  sel_a:\n    Image: 'a'\n  sel_b:\n    User: 'b'\n  condition: all of them\n", ev("Image", "a", "User", "B"), true},
	{"not 1 of", "  sel:\n    Image: 'a'\n  f_1:\n    User: 'x'\n  f_2:\n    User: 'y'\n  condition: sel and not 1 of f_*\n", ev("Image", "a", "User", "y"), false},
	{"or of ands", "  a:\n    X: '1'\n  b:\n    Y: '2'\n  c:\n    Z: '3'\n  condition: (a and b) or c\n", ev("Z", "3"), true},
	{"list of maps is OR", "  sel:\n    - Image: 'a'\n    - User: 'b'\n  condition: sel\n", ev("User", "b"), true},
	{"duplicate field any value", "  sel:\n    Data: 'second'\n  condition: sel\n", ev("Data", "first", "Data", "second"), true},
}

func TestModifiers(t *testing.T) {
	for _, c := range modifierCases {
		t.Run(c.name, func(t *testing.T) {
			r := parseRule(t, ruleText(c.detection))
			m, skipped := Compile([]*rule.Rule{r}, Options{})
			if len(skipped) > 0 {
				t.Fatalf("skipped: %s", skipped[0].Reason)
			}
			got := len(m.Match(c.event, nil)) > 0
			if got != c.want {
				t.Errorf("match = %v, want %v", got, c.want)
			}
			// The prefilter must not change the answer.
			mb, _ := Compile([]*rule.Rule{r}, Options{bruteForce: true})
			if b := len(mb.Match(c.event, nil)) > 0; b != got {
				t.Errorf("prefiltered %v, every rule %v", got, b)
			}
		})
	}
}

func TestExpandPlaceholders(t *testing.T) {
	r := parseRule(t, ruleText("  sel:\n    User|expand: '%admins%'\n    Image|endswith|expand: '\\%tool%'\n  condition: sel\n"))
	opts := Options{Placeholders: map[string][]string{"admins": {"alice", "Bob"}, "tool": {"a*.exe", "b.exe"}}}
	m, skipped := Compile([]*rule.Rule{r}, opts)
	if len(skipped) > 0 {
		t.Fatalf("skipped: %s", skipped[0].Reason)
	}
	cases := []struct {
		ev   *event.Event
		want bool
	}{
		{ev("User", "bob", "Image", `C:\b.exe`), true},
		{ev("User", "alice", "Image", `C:\a*.exe`), true},
		// Configured values are literals: the * is not a wildcard.
		{ev("User", "alice", "Image", `C:\ax.exe`), false},
		{ev("User", "carol", "Image", `C:\b.exe`), false},
	}
	for i, c := range cases {
		if got := len(m.Match(c.ev, nil)) > 0; got != c.want {
			t.Errorf("case %d: match %v, want %v", i, got, c.want)
		}
	}
}

func TestSkippedWithReason(t *testing.T) {
	cases := []struct {
		name, detection, reason string
	}{
		{"expand", "  sel:\n    User|expand: '%admins%'\n  condition: sel\n", "expand"},
		{"bad regex", "  sel:\n    CommandLine|re: '(unclosed'\n  condition: sel\n", "regex"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := parseRule(t, ruleText(c.detection))
			m, skipped := Compile([]*rule.Rule{r}, Options{})
			if len(skipped) != 1 || len(m.Rules()) != 0 {
				t.Fatalf("skipped %d, compiled %d; want the rule skipped", len(skipped), len(m.Rules()))
			}
			if !strings.Contains(skipped[0].Reason, c.reason) {
				t.Errorf("reason %q does not mention %q", skipped[0].Reason, c.reason)
			}
		})
	}
	// A rule the parser could not model (an opaque condition) is skipped, not dropped.
	r := &rule.Rule{ID: "x", Root: &rule.Node{Op: rule.OpOpaque, Text: "sel | near other"}}
	if _, sk := Compile([]*rule.Rule{r}, Options{}); len(sk) != 1 {
		t.Errorf("opaque rule: skipped %d, want 1", len(sk))
	}
}
