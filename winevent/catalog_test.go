package winevent

import (
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/rule"
)

var (
	catOnce sync.Once
	catVal  *Catalog
	catErr  error
)

func catalog(t testing.TB) *Catalog {
	t.Helper()
	dir := Dir(corpustest.Dir(t))
	catOnce.Do(func() { catVal, catErr = Load(dir) })
	if catErr != nil {
		t.Fatal(catErr)
	}
	return catVal
}

func TestProviders(t *testing.T) {
	c := catalog(t)
	// Counts as the data's README states them.
	tests := []struct {
		name, slug     string
		events, fields int
		channels       []string
	}{
		{"Microsoft-Windows-Sysmon", "Microsoft-Windows-Sysmon", 30, 276, []string{"Microsoft-Windows-Sysmon/Operational"}},
		{"Microsoft-Windows-Security-Auditing", "Microsoft-Windows-Security-Auditing", 392, 3195, []string{"Security"}},
		{"Service Control Manager", "Service-Control-Manager", 1, 5, []string{"System"}},
		{"Microsoft-Windows-PowerShell", "Microsoft-Windows-PowerShell", 2, 8, []string{"Microsoft-Windows-PowerShell/Operational"}},
	}
	for _, tc := range tests {
		p, ok := c.Provider(tc.name)
		if !ok {
			t.Errorf("%s: not found", tc.name)
			continue
		}
		nf := 0
		for _, e := range p.Events {
			nf += len(e.Fields)
		}
		if p.Slug != tc.slug || len(p.Events) != tc.events || nf != tc.fields || !cmp.Equal(p.Channels, tc.channels) {
			t.Errorf("%s: slug %q events %d fields %d channels %v", tc.name, p.Slug, len(p.Events), nf, p.Channels)
		}
		if q, ok := c.Provider(strings.ToLower(tc.slug)); !ok || q != p {
			t.Errorf("%s: not found by slug", tc.name)
		}
	}
	var names []string
	for _, p := range c.Providers() {
		names = append(names, p.Name)
	}
	want := []string{"Microsoft-Windows-Bits-Client", "Microsoft-Windows-Eventlog", "Microsoft-Windows-PowerShell",
		"Microsoft-Windows-Security-Auditing", "Microsoft-Windows-Sysmon", "Service Control Manager"}
	if d := cmp.Diff(want, names); d != "" {
		t.Errorf("providers (-want +got):\n%s", d)
	}
}

func TestEvents(t *testing.T) {
	c := catalog(t)
	e, ok := c.Event("Microsoft-Windows-Security-Auditing", 4688)
	if !ok {
		t.Fatal("4688 missing")
	}
	// The data's title lacks the final period Windows' message has; the message wins.
	if e.Title != "A new process has been created." || e.Channel != "Security" || !cmp.Equal(e.Versions, []int{0, 1, 2}) {
		t.Errorf("4688: %q %q %v", e.Title, e.Channel, e.Versions)
	}
	if !strings.HasPrefix(e.Message, "A new process has been created.\n\nCreator Subject:") {
		t.Errorf("4688 message: %q", e.Message[:40])
	}
	fieldTypes := map[string]string{"SubjectUserSid": "sid", "NewProcessId": "hex", "NewProcessName": "string", "CommandLine": "string"}
	for name, typ := range fieldTypes {
		f, ok := e.Field(strings.ToLower(name))
		if !ok || f.Type != typ || f.Name != name {
			t.Errorf("4688 %s: %+v", name, f)
		}
	}
	s1, _ := c.Event("microsoft-windows-sysmon", 1)
	if s1 == nil || s1.Title != "Process Create" || len(s1.Fields) != 23 || s1.Fields[0].Name != "RuleName" {
		t.Fatalf("Sysmon 1: %+v", s1)
	}
	if f, _ := s1.Field("ProcessGuid"); f.Type != "guid" {
		t.Errorf("ProcessGuid type %q", f.Type)
	}
	if f, _ := s1.Field("ProcessId"); f.Type != "uint" || f.OutType != "win:PID" {
		t.Errorf("ProcessId %+v", f)
	}
	for _, name := range []string{"Image", "image", "EventID", "Computer", "sha256", "Imphash"} {
		if !s1.HasField(name) {
			t.Errorf("Sysmon 1 lacks %s", name)
		}
	}
	if s1.HasField("NewProcessName") {
		t.Error("Sysmon 1 claims NewProcessName")
	}
	// Sysmon 27-29 types are inferred from samples.
	s27, _ := c.Event("Microsoft-Windows-Sysmon", 27)
	if s27 == nil || !s27.Fields[0].TypeInferred {
		t.Errorf("Sysmon 27 type_inferred not kept: %+v", s27)
	}
	if _, ok := c.Event("Service-Control-Manager", 7045); !ok {
		t.Error("7045 not found through the slug")
	}
}

func TestNormalizeType(t *testing.T) {
	for in, want := range map[string]string{
		"UnicodeString": "string", "AnsiString": "string", "UInt32": "uint", "UInt64": "uint", "Int32": "int",
		"GUID": "guid", "SID": "sid", "FILETIME": "datetime", "SYSTEMTIME": "datetime", "HexInt64": "hex",
		"HexInt32": "hex", "Pointer": "hex", "Boolean": "bool", "Binary": "binary", "win:UInt16": "uint",
		"Double": "float", "": "", "Mystery": "other",
	} {
		if got := NormalizeType(in); got != want {
			t.Errorf("NormalizeType(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSlug(t *testing.T) {
	for in, want := range map[string]string{
		"Microsoft-Windows-Sysmon": "Microsoft-Windows-Sysmon", "Service Control Manager": "Service-Control-Manager",
		"Microsoft-Windows-Windows Defender": "Microsoft-Windows-Windows-Defender", "a/b<script>": "a-b-script",
		"  x  ": "x",
	} {
		if got := Slug(in); got != want {
			t.Errorf("Slug(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRoute(t *testing.T) {
	c := catalog(t)
	tests := []struct {
		name string
		ls   rule.LogSource
		want []Target
	}{
		{"process_creation", rule.LogSource{Product: "windows", Category: "process_creation"}, []Target{
			{Channel: "Microsoft-Windows-Sysmon/Operational", Provider: "Microsoft-Windows-Sysmon", EventIDs: []int{1}, Via: ViaLogSource},
			{Channel: "Security", Provider: "Microsoft-Windows-Security-Auditing", EventIDs: []int{4688}, Native: true, Via: ViaNative,
				Renames: map[string]string{"Image": "NewProcessName", "ParentImage": "ParentProcessName", "ProcessId": "NewProcessId",
					"ParentProcessId": "ProcessId", "LogonId": "SubjectLogonId", "IntegrityLevel": "MandatoryLabel",
					"User": "SubjectUserName", "CommandLine": "CommandLine"}},
		}},
		{"pipe_created", rule.LogSource{Product: "windows", Category: "pipe_created"}, []Target{
			{Channel: "Microsoft-Windows-Sysmon/Operational", Provider: "Microsoft-Windows-Sysmon", EventIDs: []int{17, 18}, Via: ViaLogSource},
		}},
		{"registry_set", rule.LogSource{Product: "windows", Category: "registry_set"}, []Target{
			{Channel: "Microsoft-Windows-Sysmon/Operational", Provider: "Microsoft-Windows-Sysmon", EventIDs: []int{13}, Via: ViaLogSource},
			{Channel: "Security", Provider: "Microsoft-Windows-Security-Auditing", EventIDs: []int{4657}, Native: true, Via: ViaNative,
				Renames: map[string]string{"Image": "ProcessName", "User": "SubjectUserName", "Details": "NewValue",
					"EventType": "OperationType", "TargetObject": "ObjectName"},
				Where: map[string]string{"OperationType": "Existing registry value modified"}},
		}},
		{"ps_script pairs channels and providers", rule.LogSource{Product: "windows", Category: "ps_script"}, []Target{
			{Channel: "Microsoft-Windows-PowerShell/Operational", Provider: "Microsoft-Windows-PowerShell", EventIDs: []int{4104}, Via: ViaLogSource},
			{Channel: "PowerShellCore/Operational", Provider: "PowerShellCore", EventIDs: []int{4104}, Via: ViaLogSource},
		}},
		{"service system names no provider", rule.LogSource{Product: "windows", Service: "system"}, []Target{
			{Channel: "System", Via: ViaLogSource},
		}},
		{"service security", rule.LogSource{Product: "windows", Service: "security"}, []Target{
			{Channel: "Security", Provider: "Microsoft-Windows-Eventlog", Via: ViaLogSource},
			{Channel: "Security", Provider: "Microsoft-Windows-Security-Auditing", Via: ViaLogSource},
		}},
		{"linux", rule.LogSource{Product: "linux", Category: "process_creation"}, nil},
		{"product only", rule.LogSource{Product: "windows"}, nil},
		{"unknown category", rule.LogSource{Product: "windows", Category: "no_such_thing"}, nil},
	}
	for _, tc := range tests {
		got := c.Route(tc.ls)
		if d := cmp.Diff(tc.want, got, cmpopts.IgnoreUnexported(Target{})); d != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, d)
		}
	}
	tg := c.Route(rule.LogSource{Category: "process_creation"})[1]
	if tg.Field("image") != "NewProcessName" || tg.Field("OriginalFileName") != "OriginalFileName" {
		t.Errorf("Target.Field renames wrong: %q %q", tg.Field("image"), tg.Field("OriginalFileName"))
	}
}

// TestEmbeddedRoutingMatchesData (issue 13, item 7): the embedded log-source map is the
// corpus's, so routing without --data is routing with it.
func TestEmbeddedRoutingMatchesData(t *testing.T) {
	emb, err := Routing()
	if err != nil {
		t.Fatal(err)
	}
	full, err := Load(Dir(corpustest.Dir(t)))
	if err != nil {
		t.Fatal(err)
	}
	tests := []rule.LogSource{
		{Product: "windows", Category: "process_creation"},
		{Product: "windows", Category: "ps_script"},
		{Product: "windows", Service: "security"},
		{Product: "windows", Category: "registry_set"},
		{Product: "windows", Service: "system"},
	}
	for _, ls := range tests {
		a, b := emb.Route(ls), full.Route(ls)
		if len(a) == 0 || !reflect.DeepEqual(a, b) {
			t.Errorf("%+v: embedded %+v, --data %+v", ls, a, b)
		}
	}
}
