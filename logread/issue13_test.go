package logread

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ruledex/ruledex/event"
	"github.com/ruledex/ruledex/internal/corpustest"
)

// TestEveryRecordDecodes (issue 13, item 1): template-less records (Windows Event
// Collector's forwarded Defender events) and BinXML nested in a value (CAPI2 70's
// UserData) decode, with the values Event Viewer shows for them.
func TestEveryRecordDecodes(t *testing.T) {
	tests := []struct {
		path    []string
		records int
		event   int // index of the event checked
		want    []event.Field
	}{
		{
			path:    []string{"Antivirus", "ID1151-Defender health status.evtx"},
			records: 455, event: 0,
			want: fields("EventID", "1151", "Channel", "Microsoft-Windows-Windows Defender/Operational",
				"Computer", "WIN10-client01.offsec.lan", "EventRecordID", "2189",
				"Platform version", "4.18.2005.5", "Product status", "0x00080080",
				"Last full scan start time", "1/1/1601 12:00:00 AM"),
		},
		{
			path:    []string{"TA0006-Credential Access", "T1552.004-Unsecured Credentials-Private Keys", "ID70-CAPI-Private key accessed Mimikatz.evtx"},
			records: 3, event: 0,
			// UserData values held in attributes (<EventAuxInfo ProcessName=.../>) are fields.
			want: fields("EventID", "70", "Channel", "Microsoft-Windows-CAPI2/Operational", "EventRecordID", "13969076",
				"fileRef", "3CD6B0EFAF68549EFE9ED2316426FCD7FF81A6A8.cer", "subjectName", "wec02.offsec.lan",
				"ProcessName", "mimikatz.exe", "TaskId", "{973F48B9-7001-410B-A904-B1DD8692B60A}"),
		},
	}
	for _, tc := range tests {
		t.Run(tc.path[len(tc.path)-1], func(t *testing.T) {
			p := corpustest.Path(t, append([]string{"evtx", "mdecrevoisier"}, tc.path...)...)
			evs, errs := readAll(t, p)
			for _, e := range errs {
				t.Errorf("%v", e)
			}
			if len(evs) != tc.records {
				t.Fatalf("%d records, want %d", len(evs), tc.records)
			}
			ev := event.Event{Fields: evs[tc.event]}
			for _, w := range tc.want {
				if got, ok := ev.Get(w.Name); !ok || got != w.Value {
					t.Errorf("%s = %q (present %v), want %q", w.Name, got, ok, w.Value)
				}
			}
		})
	}
}

// TestGUIDBraces (item 2): GUID-typed values render as Windows writes them, in braces;
// evtx_dump JSON (which drops them) reads the same.
func TestGUIDBraces(t *testing.T) {
	bits := corpustest.Path(t, "evtx", "mdecrevoisier", "TA0003-Persistence", "T1197-BITS jobs", "ID3-59-60-BITS job created.evtx")
	evs, errs := readAll(t, bits)
	if len(errs) > 0 || len(evs) == 0 {
		t.Fatalf("%s: %d events, errors %v", filepath.Base(bits), len(evs), errs)
	}
	fromEVTX, _ := (&event.Event{Fields: evs[0]}).Get("jobId")
	tests := []struct {
		name, got, want string
	}{
		{"EVTX GUID value", fromEVTX, "{5F2863D6-E0AB-4470-8530-8F129B46177A}"},
		{"evtx_dump bare GUID", jsonValue(t, `{"Event":{"System":{"EventID":4719},"EventData":{"SubcategoryGuid":"0CCE9210-69AE-11D9-BED3-505054503030"}}}`, "SubcategoryGuid"),
			"{0CCE9210-69AE-11D9-BED3-505054503030}"},
		{"evtx_dump braced GUID kept", jsonValue(t, `{"Event":{"System":{"EventID":4719},"EventData":{"SubcategoryGuid":"{0CCE9210-69AE-11D9-BED3-505054503030}"}}}`, "SubcategoryGuid"),
			"{0CCE9210-69AE-11D9-BED3-505054503030}"},
		{"not a GUID", jsonValue(t, `{"Event":{"System":{"EventID":1},"EventData":{"X":"0CCE9210-69AE-11D9-BED3-50505450303"}}}`, "X"),
			"0CCE9210-69AE-11D9-BED3-50505450303"},
		{"flat JSON lines untouched", jsonValue(t, `{"EventID":4719,"SubcategoryGuid":"0CCE9210-69AE-11D9-BED3-505054503030"}`, "SubcategoryGuid"),
			"0CCE9210-69AE-11D9-BED3-505054503030"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}

func jsonValue(t *testing.T, src, name string) string {
	t.Helper()
	evs, errs := readJSON(t, src)
	if len(errs) > 0 || len(evs) != 1 {
		t.Fatalf("%d events, errors %v", len(evs), errs)
	}
	v, _ := (&event.Event{Fields: evs[0]}).Get(name)
	return v
}

// TestHeaderDataCollision (item 4): a data field named like a header field keeps the
// name (rules mean it) and the header copy becomes System_<name>. The event is Eventlog
// 104 ("The System log file was cleared" of another log) as evtx_dump exports it; the
// corpus holds no real 104 or 1102 record.
func TestHeaderDataCollision(t *testing.T) {
	cleared := `{"Event":{"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Eventlog"}},"EventID":104,"Channel":"System","Computer":"pc1"},` +
		`"UserData":{"LogFileCleared":{"#attributes":{"xmlns":"http://manifests.microsoft.com/win/2004/08/windows/eventlog"},"SubjectUserName":"bob","Channel":"Microsoft-Windows-Sysmon/Operational","BackupPath":null}}}}`
	plain := `{"Event":{"System":{"EventID":4688,"Channel":"Security"},"EventData":{"NewProcessName":"C:\\x.exe"}}}`
	tests := []struct {
		name string
		src  string
		want []event.Field
	}{
		{"UserData Channel vs header Channel", cleared, fields("Provider_Name", "Microsoft-Windows-Eventlog", "EventID", "104",
			"System_Channel", "System", "Computer", "pc1", "SubjectUserName", "bob",
			"Channel", "Microsoft-Windows-Sysmon/Operational", "BackupPath", "")},
		{"no collision: header keeps its name", plain, fields("EventID", "4688", "Channel", "Security", "NewProcessName", `C:\x.exe`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs, errs := readJSON(t, tc.src)
			if len(errs) > 0 || len(evs) != 1 {
				t.Fatalf("%d events, errors %v", len(evs), errs)
			}
			got := evs[0]
			if len(got) != len(tc.want) {
				t.Fatalf("fields %v\nwant %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("field %d: %v, want %v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// TestNothingSilent (item 6): a symlinked log folder (with a link loop inside) is
// walked, and an EVTX whose first chunk header is zeroed reports the chunk with its
// offset instead of reading as empty.
func TestNothingSilent(t *testing.T) {
	src := corpustest.Path(t, "evtx", "mdecrevoisier", "TA0003-Persistence", "T1197-BITS jobs", "ID4688-BITS transfer initiated.evtx")
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(filepath.Join(logs, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, logs, "a.evtx", data)
	if err := os.Symlink(logs, filepath.Join(logs, "sub", "loop")); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(logs, link); err != nil {
		t.Fatal(err)
	}
	zeroed := bytes.Clone(data)
	first := int(binary.LittleEndian.Uint16(zeroed[40:]))
	copy(zeroed[first:first+8], make([]byte, 8))
	bad := writeFile(t, dir, "zeroed.evtx", zeroed)

	tests := []struct {
		name      string
		path      string
		files     int
		events    int
		errSubstr string
	}{
		{"symlinked folder with a loop", link, 1, 2, ""},
		{"zeroed first chunk header", bad, 1, 0, "chunk 0 (offset 4096): bad chunk signature"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files, err := Files(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if len(files) != tc.files {
				t.Fatalf("files %v, want %d", files, tc.files)
			}
			var evs, errs int
			var msg string
			for _, f := range files {
				e, es := readAll(t, f)
				evs += len(e)
				errs += len(es)
				for _, x := range es {
					msg += x.Error()
				}
			}
			if evs != tc.events {
				t.Errorf("%d events, want %d", evs, tc.events)
			}
			if tc.errSubstr != "" && !strings.Contains(msg, tc.errSubstr) {
				t.Errorf("errors %q, want %q", msg, tc.errSubstr)
			}
			if tc.errSubstr == "" && errs > 0 {
				t.Errorf("errors %q", msg)
			}
		})
	}
}
