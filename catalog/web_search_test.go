package catalog

import "testing"

func TestFTSQuery(t *testing.T) {
	tests := []struct{ in, want string }{
		{"bitsadmin", `"bitsadmin"`},
		{"bitsadmin transfer", `"bitsadmin" AND "transfer"`},
		{"bitsadmin OR certutil", `("bitsadmin" OR "certutil")`},
		{"bitsadmin OR certutil download", `("bitsadmin" OR "certutil") AND "download"`},
		{"bitsadmin -transfer", `("bitsadmin") NOT ("transfer")`},
		{"bitsadmin NOT transfer NOT download", `("bitsadmin") NOT ("transfer" OR "download")`},
		{`"scheduled task" create`, `"scheduled task" AND "create"`},
		{"credential*", `"credential"*`},
		{`Image:bitsadmin.exe`, `(fields : "Image" AND vals : "bitsadmin.exe")`},
		{`NewProcessName|endswith: '\bitsadmin.exe'`, `(fields : "NewProcessName" AND vals : "\bitsadmin.exe")`},
		{`CommandLine|contains: "/transfer"`, `(fields : "CommandLine" AND vals : "/transfer")`},
		{`https://example.com/x`, `"https://example.com/x"`},
		{"-only -negations", ""},
		{"OR OR", ""},
		{`"unclosed phrase`, `"unclosed phrase"`},
		{`a"b`, `"a""b"`},
		{"*** ---", ""},
		{"x\x00y", `"x" AND "y"`},
		{"T1059.001", `"T1059.001"`},
	}
	for _, tt := range tests {
		if got := ftsQuery(tt.in); got != tt.want {
			t.Errorf("ftsQuery(%q)\n got %s\nwant %s", tt.in, got, tt.want)
		}
	}
}
