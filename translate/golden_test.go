package translate

import (
	"strings"
	"testing"

	"github.com/ruledex/ruledex/fieldmap"
	"github.com/ruledex/ruledex/lang/sigma"
	"github.com/ruledex/ruledex/rule"
)

// Golden translations, written by hand as a practitioner would write each query (not
// produced by the code under test). A value starting with "ERR " is the start of the
// reason the translation must fail with.
var goldenCases = []struct {
	name      string
	detection string
	want      map[Target]string
}{
	{
		name: "lists, file-name columns and windash",
		detection: `
  selection:
    Image|endswith:
      - '\certutil.exe'
      - '\certreq.exe'
    CommandLine|windash|contains: '-urlcache'
  condition: selection`,
		want: map[Target]string{
			Sigma: `detection:
    selection:
        Image|endswith:
            - '\certutil.exe'
            - '\certreq.exe'
        CommandLine|windash|contains: '-urlcache'
    condition: selection
`,
			KQL: `DeviceProcessEvents
| where FileName in~ ("certutil.exe", "certreq.exe")
    and (ProcessCommandLine contains "-urlcache" or ProcessCommandLine contains "/urlcache" or ProcessCommandLine contains "–urlcache" or ProcessCommandLine contains "—urlcache" or ProcessCommandLine contains "―urlcache")`,
			SPL: `| tstats summariesonly=false count min(_time) as firstTime max(_time) as lastTime from datamodel=Endpoint.Processes where (Processes.process_name="certutil.exe" OR Processes.process_name="certreq.exe") AND (Processes.process="*-urlcache*" OR Processes.process="*/urlcache*" OR Processes.process="*–urlcache*" OR Processes.process="*—urlcache*" OR Processes.process="*―urlcache*") by Processes.dest Processes.user Processes.parent_process_name Processes.process_name Processes.process Processes.process_id Processes.parent_process_id`,
			EQL: `process where host.os.type == "windows" and event.type == "start" and
  process.name : ("certutil.exe", "certreq.exe") and
  process.command_line : ("*-urlcache*", "*/urlcache*", "*–urlcache*", "*—urlcache*", "*―urlcache*")`,
			ESQL: `from logs-endpoint.events.process-*, logs-windows.sysmon_operational-*, winlogbeat-*
| where host.os.type == "windows" and event.category == "process" and event.type == "start"
| where to_lower(process.name) in ("certutil.exe", "certreq.exe")
    and (to_lower(process.command_line) like "*-urlcache*" or to_lower(process.command_line) like "*/urlcache*" or to_lower(process.command_line) like "*–urlcache*" or to_lower(process.command_line) like "*—urlcache*" or to_lower(process.command_line) like "*―urlcache*")`,
			YaraL: "    $e.metadata.event_type = \"PROCESS_LAUNCH\"\n" +
				"    (re.regex($e.target.process.file.full_path, `\\\\certutil\\.exe$`) nocase or re.regex($e.target.process.file.full_path, `\\\\certreq\\.exe$`) nocase)\n" +
				"    (re.regex($e.target.process.command_line, `-urlcache`) nocase or re.regex($e.target.process.command_line, `/urlcache`) nocase or re.regex($e.target.process.command_line, `–urlcache`) nocase or re.regex($e.target.process.command_line, `—urlcache`) nocase or re.regex($e.target.process.command_line, `―urlcache`) nocase)",
		},
	},
	{
		name: "quotes, backslashes, case sensitivity and a filter",
		detection: `
  selection:
    CommandLine|contains|cased: 'say "Hi"'
  filter:
    ParentImage|startswith: 'C:\Program Files\'
  condition: selection and not filter`,
		want: map[Target]string{
			Sigma: `detection:
    selection:
        CommandLine|contains|cased: 'say "Hi"'
    filter_1:
        ParentImage|startswith: 'C:\Program Files\'
    condition: selection and not filter_1
`,
			KQL: `DeviceProcessEvents
| where ProcessCommandLine contains_cs "say \"Hi\""
    and not(InitiatingProcessFolderPath startswith @"C:\Program Files\")`,
			SPL:  "ERR CommandLine: an SPL search compares values case-insensitively",
			ESQL: "ERR a negated test",
			EQL: `process where host.os.type == "windows" and event.type == "start" and
  stringContains(process.command_line, "say \"Hi\"") and
  not (process.parent.executable : "C:\\Program Files\\*")`,
			YaraL: "    $e.metadata.event_type = \"PROCESS_LAUNCH\"\n" +
				"    re.regex($e.target.process.command_line, `say \"Hi\"`)\n" +
				"    not (re.regex($e.principal.process.file.full_path, `^C:\\\\Program Files\\\\`) nocase)",
		},
	},
	{
		name: "a regular expression",
		detection: `
  selection:
    CommandLine|re|i: '\s-e(nc)?\s'
  condition: selection`,
		want: map[Target]string{
			Sigma: `detection:
    selection:
        CommandLine|re|i: '\s-e(nc)?\s'
    condition: selection
`,
			KQL: `DeviceProcessEvents
| where ProcessCommandLine matches regex @"(?i)\s-e(nc)?\s"`,
			SPL:   "ERR CommandLine: a regex test cannot be written in a tstats search",
			EQL:   "ERR CommandLine: EQL regular expressions use Lucene syntax",
			ESQL:  "ERR CommandLine: ES|QL translation of regex tests is not supported",
			YaraL: "    $e.metadata.event_type = \"PROCESS_LAUNCH\"\n    re.regex($e.target.process.command_line, `\\s-e(nc)?\\s`) nocase",
		},
	},
	{
		name: "a wildcard pattern",
		detection: `
  selection:
    Image: '*\powershell?.exe'
  condition: selection`,
		want: map[Target]string{
			Sigma: `detection:
    selection:
        Image: '*\powershell?.exe'
    condition: selection
`,
			KQL: "ERR Image: KQL has no wildcard match",
			SPL: "ERR Image: SPL has no one-character wildcard",
			EQL: `process where host.os.type == "windows" and event.type == "start" and
  process.executable : "*\\powershell?.exe"`,
			ESQL: `from logs-endpoint.events.process-*, logs-windows.sysmon_operational-*, winlogbeat-*
| where host.os.type == "windows" and event.category == "process" and event.type == "start"
| where to_lower(process.executable) like "*\\\\powershell?.exe"`,
			YaraL: "ERR Image: YARA-L has no wildcard match",
		},
	},
	{
		name: "nested boolean structure",
		detection: `
  sel_parent:
    ParentImage|endswith: '\winword.exe'
  sel_child:
    Image|endswith: '\cmd.exe'
  sel_cli:
    CommandLine|contains: 'http'
  condition: sel_parent and (sel_child or sel_cli)`,
		want: map[Target]string{
			Sigma: `detection:
    selection:
        ParentImage|endswith: '\winword.exe'
    selection_1:
        - Image|endswith: '\cmd.exe'
        - CommandLine|contains: 'http'
    condition: selection and selection_1
`,
			KQL: `DeviceProcessEvents
| where InitiatingProcessFileName =~ "winword.exe"
    and (FileName =~ "cmd.exe" or ProcessCommandLine contains "http")`,
			SPL: `| tstats summariesonly=false count min(_time) as firstTime max(_time) as lastTime from datamodel=Endpoint.Processes where Processes.parent_process_name="winword.exe" AND (Processes.process_name="cmd.exe" OR Processes.process="*http*") by Processes.dest Processes.user Processes.parent_process_name Processes.process_name Processes.process Processes.process_id Processes.parent_process_id`,
			EQL: `process where host.os.type == "windows" and event.type == "start" and
  process.parent.name : "winword.exe" and
  (process.name : "cmd.exe" or process.command_line : "*http*")`,
			ESQL: `from logs-endpoint.events.process-*, logs-windows.sysmon_operational-*, winlogbeat-*
| where host.os.type == "windows" and event.category == "process" and event.type == "start"
| where to_lower(process.parent.name) == "winword.exe"
    and (to_lower(process.name) == "cmd.exe" or to_lower(process.command_line) like "*http*")`,
			YaraL: "    $e.metadata.event_type = \"PROCESS_LAUNCH\"\n" +
				"    re.regex($e.principal.process.file.full_path, `\\\\winword\\.exe$`) nocase\n" +
				"    (re.regex($e.target.process.file.full_path, `\\\\cmd\\.exe$`) nocase or re.regex($e.target.process.command_line, `http`) nocase)",
		},
	},
}

func goldenRule(t *testing.T, detection string) *rule.Rule {
	t.Helper()
	src := "title: Golden translation test\nid: 11111111-2222-4333-8444-555555555555\nstatus: test\n" +
		"logsource:\n  category: process_creation\n  product: windows\ndetection:" + detection + "\nlevel: high\n"
	rs, diags := sigma.Parser{}.Parse(rule.Source{Repo: "golden", Path: "golden.yml"}, []byte(src))
	if len(rs) != 1 {
		t.Fatalf("golden rule: %d rules, %v", len(rs), diags)
	}
	if rs[0].HasErrors() {
		t.Fatalf("golden rule: %v", rs[0].Diagnostics)
	}
	return rs[0]
}

// goldenTargets are the targets whose golden queries are checked: all of them once the
// parsers that verify them are registered in testParsers.
var goldenTargets = []Target{Sigma, KQL, SPL, EQL, ESQL, YaraL}

func TestGolden(t *testing.T) {
	fm := fieldmap.Default()
	for _, c := range goldenCases {
		r := goldenRule(t, c.detection)
		for _, tg := range goldenTargets {
			want, ok := c.want[tg]
			if !ok {
				continue
			}
			t.Run(c.name+"/"+string(tg), func(t *testing.T) {
				res, err := Translate(fm, r, tg, Options{})
				if strings.HasPrefix(want, "ERR ") {
					if err == nil {
						t.Fatalf("translated, want failure %q:\n%s", want[4:], res.Query)
					}
					if !strings.Contains(err.Error(), want[4:]) {
						t.Fatalf("error %q, want one containing %q", err, want[4:])
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if res.Query != want {
					t.Errorf("query:\n%s\nwant:\n%s", res.Query, want)
				}
				if err := Verify(fm, r, res, testReader(testParsers())); err != nil {
					t.Errorf("does not round-trip: %v", err)
				}
			})
		}
	}
}

// TestGoldenSentinel: --schema sentinel writes the Security 4688 form, hand-written.
func TestGoldenSentinel(t *testing.T) {
	r := goldenRule(t, goldenCases[4].detection)
	res, err := Translate(fieldmap.Default(), r, KQL, Options{Schema: "sentinel"})
	if err != nil {
		t.Fatal(err)
	}
	want := `SecurityEvent
| where EventID == 4688
| where ParentProcessName endswith @"\winword.exe"
    and (NewProcessName endswith @"\cmd.exe" or CommandLine contains "http")`
	if res.Query != want {
		t.Errorf("query:\n%s\nwant:\n%s", res.Query, want)
	}
	if err := Verify(fieldmap.Default(), r, res, testReader(testParsers())); err != nil {
		t.Error(err)
	}
}
