package kuery

import (
	"strings"
	"testing"

	"github.com/ruledex/ruledex/internal/elasticq"
	"github.com/ruledex/ruledex/rule"
)

func ruleQuery(t *testing.T, file string) elasticq.Query {
	t.Helper()
	return elasticq.File(t, file, "")
}

func predStrings(n *rule.Node) []string { return elasticq.PredStrings(n) }

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestRealRules pins the reading of real rules: case (keyword fields cased, text fields
// not), wildcard kinds, arrays, escapes, numbers, ranges, exists, negation.
func TestRealRules(t *testing.T) {
	for _, tc := range []struct {
		file   string
		want   []string
		absent []string
		codes  []string // diagnostic codes expected, in order
	}{
		{
			file: "rules/windows/credential_access_posh_request_ticket.toml",
			want: []string{
				"event.category eq process [cased,elem]",
				"host.os.type eq windows [cased]",
				// A text field: analyzed, case-insensitive token match.
				"powershell.file.script_block_text term KerberosRequestorSecurityToken []",
				// Quoted "\\windows\\sentinel\\4": Kibana unescapes \\ in quoted strings.
				`not powershell.file.script_block_text term \windows\sentinel\4 []`,
			},
			absent: []string{"powershell.file.script_block_text eq KerberosRequestorSecurityToken [cased]"},
		},
		{
			file: "rules/cross-platform/execution_aws_ssm_session_manager_child_process.toml",
			want: []string{
				"process.args match awsrunPowerShellScript [cased,elem]",
				"process.parent.args match awsrunShellScript [cased,elem]",
				`not process.args match Convert-GuidToCompressedGuid|win32_quickfixengineering|Get-Service|Get-WmiObject|System32\ntoskrnl.exe|GET-WMIOBJECT [cased,elem]`,
				"not process.args starts_with get-wmiobject|$wmi_proc|Get-wmiobject [cased,elem]",
				"not process.args eq $str.Substring($str.length [cased,elem]",
				`not process.executable eq /usr/bin/lscpu|/usr/bin/snap|/usr/bin/rpm|/usr/bin/dpkg-query|/usr/bin/id|C:\Program Files\Amazon\SSM\Plugins\SessionManagerShell\winpty-agent.exe [cased]`,
				// Unquoted C\:\\...\\*\\updater.exe: a glob whose backslashes are literal.
				`not process.executable glob /snap/snapd/*/usr/bin/snap|/var/lib/amazon/ssm/update/amazon-ssm-agent-updater/*/updater|C:\\ProgramData\\Amazon\\SSM\\Update\\amazon-ssm-agent-updater\\*\\updater.exe [cased]`,
				"process.command_line is_not_null  []",
				`not process.command_line ends_with ssm-user|/invokeInspectorSsmPluginLinux/_script.sh|/checkExclusionPreference/_script.sh|\createUpdateFolder\_script.ps1|/checkProvisioningEligibility/_script.sh|/install/_script.sh|/uninstall/_script.sh [cased]`,
			},
		},
		{
			file: "rules/network/initial_access_potential_cpanel_whm_crlf_authentication_bypass.toml",
			want: []string{
				"http.response.status_code ge 300 []",
				"http.response.status_code le 399 []",
				"http.request.headers.authorization starts_with Basic [cased]",
				"http.response.headers.location starts_with /cpsess [cased]",
				"url.path eq / [cased]",
				// Numbers compare as numbers: no case.
				"destination.port eq 2087|2086|2083|2082|2095|2096 []",
			},
		},
		{
			file: "rules/linux/persistence_systemd_service_started.toml",
			want: []string{
				"process.entry_leader.entry_meta.type is_not_null  []",
				"process.args eq enable|reenable|start [cased,elem]",
				"not process.args_count ge 5 []",
				"not process.parent.pid eq 1 []",
				"not process.parent.executable starts_with /var/lib/dpkg/|/opt/saltstack/salt/bin/python [cased]",
				"not process.parent.command_line match ansible [cased]",
			},
		},
		{
			file: "rules/_deprecated/linux_socat_activity.toml",
			want: []string{"event.type eq start|process_started [cased,elem]", "not process.args eq -V [cased,elem]"},
		},
		{
			file: "rules/apm/apm_405_response_method_not_allowed.toml",
			want: []string{
				"http.request.method is_not_null  []",
				"not http.request.method eq GET|HEAD|OPTIONS|POST [cased]",
			},
		},
		{
			// Field-name wildcards are kept as written (Kibana expands them).
			file: "rules/integrations/azure/initial_access_entra_id_external_guest_user_invite.toml",
			want: []string{
				"azure.auditlogs.properties.target_resources.*.display_name eq guest [cased]",
				"event.outcome eq Success|success [cased]",
			},
		},
		{
			file: "rules/integrations/azure/execution_azure_aks_ephemeral_container_added.toml",
			want: []string{`not azure.platformlogs.properties.log.user.username starts_with system:node:|system:serviceaccount:kube-system: [cased]`},
		},
		{
			// Nested query: fields relative to the nested path, with a warning.
			file: "rules/integrations/gcp/persistence_gcp_service_account_impersonation_role_grant.toml",
			want: []string{
				"gcp.audit.service_data.policy_delta.binding_deltas.action eq ADD [cased]",
				"event.action glob google.iam.admin.v*.SetIAMPolicy [cased]",
			},
			codes: []string{"kuery/nested"},
		},
		{
			// Lucene: lowercase "or" is a term; /regex/ is anchored; NOT is a negation.
			file: "rules/_deprecated/privilege_escalation_setgid_bit_set_via_chmod.toml",
			want: []string{
				"event.category eq process [cased,elem]",
				"event.type eq start|or|process_started [cased,elem]",
				"process.args eq g+s [cased,elem]",
				"process.args regex ^(?:2[0-9]{3})$ [cased,elem,s]",
				"not user.name eq root [cased]",
			},
		},
	} {
		t.Run(tc.file, func(t *testing.T) {
			q := ruleQuery(t, tc.file)
			n, diags := Parse(q.Text, q.Lang == "lucene", rule.Pos{File: q.File, Line: q.Line, Col: 1})
			got := predStrings(n)
			for _, w := range tc.want {
				if !has(got, w) {
					t.Errorf("missing %q in\n  %s", w, strings.Join(got, "\n  "))
				}
			}
			for _, a := range tc.absent {
				if has(got, a) {
					t.Errorf("unexpected %q", a)
				}
			}
			var codes []string
			for _, d := range diags {
				codes = append(codes, d.Code)
				if d.Pos.File != q.File || d.Pos.Line < q.Line {
					t.Errorf("diagnostic not located in the file: %s", d)
				}
			}
			if strings.Join(codes, ",") != strings.Join(tc.codes, ",") {
				t.Errorf("diagnostics %v, want %v", diags, tc.codes)
			}
		})
	}
}

// TestSyntax pins grammar details on small queries: precedence, Kibana's whitespace
// rules, escapes, Lucene modifiers and ranges, and what stays opaque.
func TestSyntax(t *testing.T) {
	for _, tc := range []struct {
		name   string
		q      string
		lucene bool
		want   []string
		codes  []string
	}{
		{"and binds tighter than or", "a:1 or b:2 and c:3", false,
			[]string{"a eq 1 []", "b eq 2 []", "c eq 3 []"}, nil},
		{"unquoted value spans spaces", "file.name : my file.txt and x : y", false,
			[]string{"file.name eq my file.txt [cased]", "x eq y [cased]"}, nil},
		{"keywords are case-insensitive", "a : x AND NOT b : y", false,
			[]string{"a eq x [cased]", "not b eq y [cased]"}, nil},
		{"quoted star is literal", `a : "x*" and b : x\*y and c : x*y*`, false,
			[]string{"a eq x* [cased]", "b eq x*y [cased]", `c glob x*y* [cased]`}, nil},
		{"question mark is literal in kuery", "a : x?y*", false,
			[]string{`a starts_with x?y [cased]`}, nil},
		{"glob escapes literal question marks", "a : *x?y*z", false,
			[]string{`a glob *x\?y*z [cased]`}, nil},
		{"exists", "a : *", false, []string{"a is_not_null  []"}, nil},
		{"numbers as Kibana types them", "a : 4688 or a : 0123 or a : -1.5 or a : 1e5", false,
			[]string{"a eq 4688|0123|-1.5|1e5 [cased]"}, nil},
		{"range", "a >= 5 and b < now-1d", false, []string{"a ge 5 []", "b lt now-1d []"}, nil},
		{"text field words are OR-ed terms", "message : failed login", false,
			[]string{"message term failed|login []"}, nil},
		{"text multi-field", `process.command_line.text : "whoami"`, false,
			[]string{"process.command_line.text term whoami []"}, nil},
		{"unclosed paren", "a : (x or y", false,
			[]string{"a eq x|y [cased]"}, []string{"kuery/syntax"}},
		{"stray close", "a : x )", false, []string{"a eq x [cased]"}, []string{"kuery/syntax"}},
		{"bad escape kept", `a : x\qy`, false, []string{`a eq x\qy [cased]`}, []string{"kuery/escape"}},
		{"free text is a keyword", `"mimikatz"`, false, []string{" keyword mimikatz []"}, nil},

		{"lucene default operator is OR", "a:1 b:2", true, []string{"a eq 1 []", "b eq 2 []"}, nil},
		{"lucene required drops optional", "a:1 +b:2 -c:3", true,
			[]string{"b eq 2 []", "not c eq 3 []"}, nil},
		{"lucene AND makes both required", "a:x AND b:y OR c:z", true,
			[]string{"a eq x [cased]", "b eq y [cased]"}, nil},
		{"lucene exists", "_exists_:user.name AND NOT x:*", true,
			[]string{"user.name is_not_null  []", "not x is_not_null  []"}, nil},
		{"lucene ranges", "a:[1 TO 5} AND b:{* TO 10] AND c:>=3", true,
			[]string{"a ge 1 []", "a lt 5 []", "b le 10 []", "c ge 3 []"}, nil},
		{"lucene escapes", `path:C\:\\Windows\\* AND n:a\ b`, true,
			[]string{`path starts_with C:\Windows\ [cased]`, "n eq a b [cased]"}, nil},
		{"lucene question mark wildcard", "a:x?z", true, []string{"a glob x?z [cased]"}, nil},
		{"lucene regex anchored", `a:/ab.*c/ AND b:/x\/y/`, true,
			[]string{"a regex ^(?:ab.*c)$ [cased,s]", "b regex ^(?:x/y)$ [cased,s]"}, nil},
		{"lucene regex complement is opaque", "a:/~(x)/", true, nil, []string{"lucene/regex"}},
		{"lucene fuzzy is opaque", "a:roam~1 AND b:c", true, []string{"b eq c [cased]"}, []string{"lucene/fuzzy"}},
		{"lucene boost ignored", "a:x^2", true, []string{"a eq x [cased]"}, nil},
		{"lucene group with field", "a:(x OR y) AND NOT b:(z)", true,
			[]string{"a eq x|y [cased]", "not b eq z [cased]"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, diags := Parse(tc.q, tc.lucene, rule.Pos{File: "q", Line: 3, Col: 5})
			got := predStrings(n)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("%q:\n got  %q\n want %q", tc.q, got, tc.want)
			}
			var codes []string
			for _, d := range diags {
				codes = append(codes, d.Code)
				if d.Pos.File != "q" || d.Pos.Line != 3 || d.Pos.Col < 5 {
					t.Errorf("bad location %s", d)
				}
			}
			if strings.Join(codes, ",") != strings.Join(tc.codes, ",") {
				t.Errorf("diagnostics %v, want codes %v", diags, tc.codes)
			}
		})
	}
}

// TestPrecedenceShape checks the tree, not only the predicates: or of (b and c).
func TestPrecedenceShape(t *testing.T) {
	n, _ := Parse("a:1 or b:2 and not c:3", false, rule.Pos{})
	if n.Op != rule.OpOr || len(n.Children) != 2 || n.Children[1].Op != rule.OpAnd || n.Children[1].Children[1].Op != rule.OpNot {
		t.Fatalf("shape: %+v", n)
	}
}

// TestLocation: a diagnostic on the third line of a query is located on that line of
// the file, at the offending column.
func TestLocation(t *testing.T) {
	q := "a : x and\n  b : y and\n  c : (z"
	_, diags := Parse(q, false, rule.Pos{File: "f.toml", Line: 10, Col: 1})
	if len(diags) != 1 {
		t.Fatalf("diags %v", diags)
	}
	if d := diags[0]; d.Pos.Line != 12 || d.Pos.Col != 9 {
		t.Errorf("at %d:%d, want 12:9 (%s)", d.Pos.Line, d.Pos.Col, d)
	}
}

// TestValueTypes: Kibana types unquoted numbers and booleans; leading zeros, exponents
// and quoted values stay strings.
func TestValueTypes(t *testing.T) {
	n, _ := Parse(`a : (4688 or 0123 or -1.5 or 1e5 or true or "7")`, false, rule.Pos{})
	if n.Op != rule.OpPred {
		t.Fatalf("want one predicate, got %+v", n)
	}
	var got []string
	for _, v := range n.Pred.Values {
		got = append(got, v.S+":"+string(v.Type))
	}
	want := "4688:number 0123: -1.5:number 1e5: true:bool 7:"
	if strings.Join(got, " ") != want {
		t.Errorf("got %s, want %s", strings.Join(got, " "), want)
	}
	if !n.Pred.Cased() {
		t.Error("a list with strings must be cased")
	}
}
