package web

import (
	"strings"
	"testing"
	"time"
)

func TestMarkdownHTML(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string // substrings of the output
		not      []string // must not appear
	}{
		{"link and bold from a Sentinel description",
			"Identifies use of [Component Object Model](https://learn.microsoft.com/en-us/windows/win32/com/component-object-model--com--portal) for **process creation**.",
			[]string{`<a href="https://learn.microsoft.com/en-us/windows/win32/com/component-object-model--com--portal" rel="nofollow noopener noreferrer">Component Object Model</a>`, "<strong>process creation</strong>"},
			[]string{"**", "]("}},
		{"headings start at h3, lists nest",
			"## Triage and analysis\n\n### Investigating X\n\n- What?\n  - Why: because\n  - Focus: `process.entity_id`\n- Next\n",
			[]string{"<h4>Triage and analysis</h4>", "<h5>Investigating X</h5>", "<ul>\n<li>What?<ul>\n<li>Why: because</li>\n<li>Focus: <code>process.entity_id</code></li></ul>\n</li>\n<li>Next</li></ul>"},
			nil},
		{"raw HTML is text", `<script>alert(1)</script><img src=x onerror=alert(2)>`,
			[]string{"&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;"}, []string{"<script", "<img"}},
		{"javascript link is not a link", `[click](javascript:alert(1))`,
			[]string{"click (javascript:alert(1"}, []string{"<a", "href"}},
		{"data link is not a link", `[x](data:text/html;base64,PHNjcmlwdD4=)`, nil, []string{"<a"}},
		{"quote in URL stays inside the attribute", `[x](https://a.example/"onmouseover="alert(1))`,
			nil, []string{`"onmouseover="`, `onmouseover="alert`}},
		{"bare URL", "Setup instructions: https://ela.st/sysmon-event-10-setup.",
			[]string{`<a href="https://ela.st/sysmon-event-10-setup" rel="nofollow noopener noreferrer">https://ela.st/sysmon-event-10-setup</a>.`}, nil},
		{"snake_case stays", "set process_creation_events and __init__ files", []string{"process_creation_events"}, []string{"<em>"}},
		{"fenced code keeps markup as text", "```\n<b>x</b> **y**\n```\n",
			[]string{"<pre><code>&lt;b&gt;x&lt;/b&gt; **y**\n</code></pre>"}, []string{"<strong>"}},
		{"ordered list", "1. one\n2. two\n", []string{"<ol>\n<li>one</li>\n<li>two</li></ol>"}, nil},
		{"unclosed emphasis is literal", "a ** b * c _ d", []string{"a ** b * c _ d"}, []string{"<em>", "<strong>"}},
		{"ESCU how_to_implement", "To successfully implement this search you need to be ingesting information on process that include the name of the process responsible for the changes from your endpoints into the `Endpoint` datamodel in the `Processes` node.",
			[]string{"<p>To successfully", "<code>Endpoint</code>"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(markdownHTML(tt.in))
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("missing %q in\n%s", w, got)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(got, w) {
					t.Errorf("unexpected %q in\n%s", w, got)
				}
			}
			if p := markupProblems("<html><body>" + got + "</body></html>"); len(p) > 0 {
				t.Errorf("markup problems %v in\n%s", p, got)
			}
		})
	}
}

// TestMarkdownHostileSize: pathological input renders in bounded time.
func TestMarkdownHostileSize(t *testing.T) {
	for _, in := range []string{
		strings.Repeat("[", 60000), strings.Repeat("*a ", 20000), strings.Repeat("`", 60000),
		strings.Repeat("[a](", 15000), strings.Repeat("_", 60000), strings.Repeat("  - x\n", 10000),
		strings.Repeat("**", 30000) + "x", strings.Repeat("http://", 9000),
	} {
		start := time.Now()
		markdownHTML(in)
		markdownInline(in)
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("input %q…: %v", in[:10], d)
		}
	}
}

func TestSoftBreaks(t *testing.T) {
	tests := []struct{ in, want string }{
		{`\bitsadmin.exe`, `\bitsadmin.exe`}, // short: never broken
		{"4688", "4688"},
		{`C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe`, `C:<wbr>\<wbr>Windows\<wbr>System32\<wbr>WindowsPowerShell\<wbr>v1.<wbr>0\<wbr>powershell.<wbr>exe`},
		{"github.com/mdecrevoisier/SIGMA-detection-rules", "github.<wbr>com/<wbr>mdecrevoisier/<wbr>SIGMA-<wbr>detection-<wbr>rules"},
		{strings.Repeat("A", 45), strings.Repeat("A", 20) + "<wbr>" + strings.Repeat("A", 20) + "<wbr>" + strings.Repeat("A", 5)},
		{`a <script>x</script>`, `a &lt;script&gt;x&lt;/script&gt;`},
		{"short /x and a_very_long_token_with_underscores", "short /x and a_<wbr>very_<wbr>long_<wbr>token_<wbr>with_<wbr>underscores"},
	}
	for _, tt := range tests {
		if got := string(softBreaks(tt.in)); got != tt.want {
			t.Errorf("softBreaks(%q)\n got %s\nwant %s", tt.in, got, tt.want)
		}
	}
}

func TestSoftBreaksAfterShortToken(t *testing.T) {
	// The run length restarts at every token: a short token before a long one must not
	// shorten the long one's first segment.
	got := string(softBreaks("winlogbeat-*, logs-windows.sysmon_operational-*"))
	if want := "winlogbeat-*, logs-<wbr>windows.<wbr>sysmon_<wbr>operational-<wbr>*"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestBodyText(t *testing.T) {
	long := `search: '| tstats count min(_time) as firstTime from datamodel=Endpoint.Processes where Processes.process_name="bitsadmin.exe" Processes.process="*transfer*" by Processes.dest | ` +
		"`drop_dm_object_name(Processes)` | `security_content_ctime(firstTime)`| where x=\"a | b\" | `bitsadmin_download_file_filter`'"
	got := bodyText("yaml", long)
	want := []string{
		`search: '| tstats count min(_time) as firstTime from datamodel=Endpoint.Processes where Processes.process_name="bitsadmin.exe" Processes.process="*transfer*" by Processes.dest`,
		"  | `drop_dm_object_name(Processes)`",
		"  | `security_content_ctime(firstTime)`",
		"  | where x=\"a | b\"",
		"  | `bitsadmin_download_file_filter`'",
	}
	if got != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
	for _, in := range []struct{ lang, text string }{{"kusto", long}, {"spl", "short | line"}} {
		if got := bodyText(in.lang, in.text); got != in.text {
			t.Errorf("%s %q changed: %q", in.lang, in.text[:10], got)
		}
	}
}
