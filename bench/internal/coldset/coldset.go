// Package coldset is the set of distinct searches of the cold-path load (bench/webload
// -cold), shared with the programs that profile and check the same searches.
package coldset

import (
	"fmt"
	"net/url"
)

// Vocabulary are the words cold searches combine: tools, fields, techniques and terms a
// detection engineer types.
var Vocabulary = []string{
	"bitsadmin", "powershell", "mimikatz", "lsass", "rundll32", "certutil", "schtasks", "wmic",
	"regsvr32", "mshta", "encoded", "credential", "T1059", "T1003", "scheduled", "registry", "defender",
	"psexec", "whoami", "vssadmin", "cobalt", "bloodhound", "CommandLine", "ParentImage", "sysmon",
	"office", "lateral", "amsi", "kerberos", "cmd", "download", "service", "token", "dll", "script",
	"base64", "temp", "appdata", "network", "dns", "http", "password", "admin", "remote", "shadow",
	"process", "injection", "driver", "firewall", "audit", "logon", "user", "group", "policy",
	"task", "wscript", "cscript", "msiexec", "ntds", "sam",
}

// Search returns the i-th of many distinct searches: single words with a filter
// and a result page, and two-word searches.
func Search(i int) string {
	v := len(Vocabulary)
	if i%2 == 0 {
		j := i / 2
		w := Vocabulary[j%v]
		f := Filters[(j/v)%len(Filters)]
		page := (j/(v*len(Filters)))%10 + 1
		return fmt.Sprintf("/api/search?q=%s%s&page=%d", url.QueryEscape(w), f, page)
	}
	j := i / 2
	a := j % v
	b := (a + 1 + (j/v)%(v-1)) % v
	return "/api/search?q=" + url.QueryEscape(Vocabulary[a]+" "+Vocabulary[b])
}

// Filters are the distinct filters for cold searches.
var Filters = []string{"", "&language=sigma", "&severity=high", "&tactic=execution", "&field=CommandLine", "&language=kusto"}
