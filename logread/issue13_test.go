package logread

import (
	"path/filepath"
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
