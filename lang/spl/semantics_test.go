package spl

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ruledex/ruledex/fieldmap"
	"github.com/ruledex/ruledex/rule"
)

// predLine shows a predicate as "[not ]Field kind value|value" for comparisons.
func predLine(pp rule.PolarPred) string {
	var vs []string
	for _, v := range pp.Pred.Values {
		vs = append(vs, v.S)
	}
	s := pp.Pred.Field + " " + string(pp.Pred.Kind) + " " + strings.Join(vs, "|")
	if pp.Negated {
		s = "not " + s
	}
	return s
}

// TestEventFilters: which of a real detection's filters test events (Root), which
// test computed columns or aggregated rows (their stage only), and whether a stats or
// tstats only groups (a pipeline stage) or is thresholded (an aggregation).
func TestEventFilters(t *testing.T) {
	tests := []struct {
		path        string
		inRoot      []string          // predicates Root must hold
		notInRoot   []string          // fields Root must not read
		computed    map[string]string // computed column -> substring of its definition
		placeholder bool              // Root holds an opaque stand-in for a computed filter
		aggregation bool              // some stage is an aggregation
		grouping    bool              // a stats/tstats stage only groups
	}{
		// The ESCU pattern: tstats ... where ... by ..., no filter after it.
		{path: "endpoint/dsquery_domain_discovery.yml",
			inRoot:   []string{"Processes.process_name eq dsquery.exe", "Processes.process match trustedDomain"},
			computed: map[string]string{"count": "count by Processes.dest"}, grouping: true},
		// A where after drop_dm_object_name(Processes) tests a group-by field: an event
		// filter on Processes.process.
		{path: "endpoint/impacket_lateral_movement_smbexec_commandline_parameters.yml",
			inRoot: []string{"Processes.process_name eq cmd.exe", `Processes.process regex (?i)echo\s+cd`}, grouping: true},
		// privs comes from rex: the filter on it stays in its stage.
		{path: "deprecated/detect_mimikatz_via_powershell_and_eventcode_4703.yml",
			inRoot: []string{"signature_id eq 4703", "Process_Name ends_with powershell.exe"}, notInRoot: []string{"privs"},
			computed: map[string]string{"privs": "(?<privs>"}, placeholder: true, grouping: true},
		// targets comes from values() after stats: a filter on aggregated rows.
		{path: "application/okta_successful_single_factor_authentication.yml",
			inRoot: []string{"action eq success"}, notInRoot: []string{"targets"},
			computed: map[string]string{"targets": "values(target{}.displayName) by src_ip, user, action"}, aggregation: true},
		// stats count by ... with nothing after it only groups.
		{path: "endpoint/get_domainuser_with_powershell_script_block.yml",
			inRoot: []string{"EventCode eq 4104", "ScriptBlockText match Get-DomainUser"}, grouping: true},
	}
	p := escuParser(t)
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r := parseOne(t, p, "detections/"+tt.path, corpusFile(t, "spl", "splunk", "detections", tt.path))
			got := map[string]bool{}
			for _, pp := range rule.Preds(r.Root) {
				got[predLine(pp)] = true
				for _, f := range tt.notInRoot {
					if pp.Pred.Field == f {
						t.Errorf("root reads %s: %s", f, predLine(pp))
					}
				}
			}
			for _, w := range tt.inRoot {
				if !got[w] {
					t.Errorf("root lacks %q; has %v", w, got)
				}
			}
			for name, def := range tt.computed {
				ok := false
				for _, c := range r.Computed {
					if c.Name == name && strings.Contains(c.Definition, def) && c.Stage > 0 && c.Stage < len(r.Stages) {
						ok = true
					}
				}
				if !ok {
					t.Errorf("computed %s (%s) missing: %+v", name, def, r.Computed)
				}
			}
			placeholder := false
			rule.Walk(r.Root, func(n *rule.Node, _ bool) bool {
				placeholder = placeholder || n.Op == rule.OpOpaque && strings.HasPrefix(n.Text, "filter on computed")
				return true
			})
			if placeholder != tt.placeholder {
				t.Errorf("computed-filter stand-in in root = %v, want %v", placeholder, tt.placeholder)
			}
			agg, grouping := false, false
			for _, s := range r.Stages {
				agg = agg || s.Kind == rule.StageAggregation
				grouping = grouping || s.Kind == rule.StagePipeline && s.Aggregation != nil && (s.Op == "stats" || s.Op == "tstats")
			}
			if agg != tt.aggregation || grouping != tt.grouping {
				t.Errorf("aggregation %v grouping %v, want %v %v", agg, grouping, tt.aggregation, tt.grouping)
			}
		})
	}
}

// TestEventCodeIsEventID: Splunk's EventCode counts with Sigma's and KQL's EventID.
func TestEventCodeIsEventID(t *testing.T) {
	p := escuParser(t)
	path := "endpoint/get_domainuser_with_powershell_script_block.yml"
	r := parseOne(t, p, "detections/"+path, corpusFile(t, "spl", "splunk", "detections", path))
	fm := fieldmap.Default()
	_, want := fm.IndicatorKey(nil, "EventID", rule.Eq, nil, "4104")
	found := false
	for _, in := range fm.Indicators(r) {
		found = found || in.Key == want && !in.Negated
	}
	if !found {
		t.Errorf("no EventID eq 4104 indicator among %+v", fm.Indicators(r))
	}
}

// TestPlatform: CIM process fields are shared by Linux and Windows; Linux detections
// are marked so that process_name=ssh is never read as a Windows image.
func TestPlatform(t *testing.T) {
	tests := []struct {
		path, product string
	}{
		{"endpoint/linux_ssh_remote_services_script_execute.yml", "linux"},
		{"endpoint/windows_installutil_url_in_command_line.yml", ""},
		{"endpoint/dsquery_domain_discovery.yml", ""},
	}
	p := escuParser(t)
	for _, tt := range tests {
		r := parseOne(t, p, "detections/"+tt.path, corpusFile(t, "spl", "splunk", "detections", tt.path))
		if r.LogSource.Product != tt.product {
			t.Errorf("%s: product %q, want %q (data sources %v)", tt.path, r.LogSource.Product, tt.product, r.LogSource.DataSources)
		}
	}
	for _, tt := range []struct {
		sources []string
		file    string
		want    string
	}{
		{[]string{"Sysmon for Linux EventID 1"}, "x.yml", "linux"},
		{[]string{"Sysmon for Linux EventID 1", "Sysmon EventID 1"}, "x.yml", ""},
		{[]string{"CrowdStrike ProcessRollup2", "Linux Auditd Execve"}, "x.yml", "linux"},
		{nil, "detections/endpoint/linux_at_application_execution.yml", "linux"},
		{[]string{"Windows Event Log Security 4688"}, "linux_named.yml", ""},
	} {
		if got := platform(tt.sources, tt.file); got != tt.want {
			t.Errorf("platform(%v, %s) = %q, want %q", tt.sources, tt.file, got, tt.want)
		}
	}
}

// TestRenamesAndComputedColumns runs the column rules on reduced ESCU searches.
func TestRenamesAndComputedColumns(t *testing.T) {
	tests := []struct {
		search string
		root   string // rendered Root
		agg    bool
	}{
		// A by-field filter after a wildcard rename is an event filter on the original field.
		{"| tstats count from datamodel=Endpoint.Processes where Processes.process_name=a.exe by Processes.dest Processes.process | rename Processes.* AS * | where process!=\"x\"",
			"and(Processes.process_name eq a.exe, Processes.process ne x [cased])", false},
		// A quoted object name (drop_dm_object_name("All_Traffic")) renames the same way.
		{`| tstats count from datamodel=Network_Traffic.All_Traffic by All_Traffic.src_ip All_Traffic.dest_ip | rename "All_Traffic".* AS * | where src_ip != dest_ip`,
			"not(All_Traffic.src_ip fieldref All_Traffic.dest_ip)", false},
		// A filter on a field the stats does not group by keeps only some groups.
		{"| tstats count from datamodel=Endpoint.Processes by Processes.dest | rename Processes.* AS * | search user=admin",
			"<nil>", true},
		// eval makes a column; an eval of a bare field is a rename.
		{"a=1 | eval n=len(b), c=d | search n>5 c=x",
			"and(a eq 1, d eq x, opaque(filter on computed column n (stage 3)))", false},
		// After a lookup that names no output, any field may come from the table.
		{"a=1 | lookup t k | search b=2", "and(a eq 1, opaque(filter on computed columns or rows (stage 3)))", false},
		// dedup drops rows: later filters are not event filters.
		{"a=1 | dedup x | search b=2", "and(a eq 1, opaque(filter on computed columns or rows (stage 3)))", false},
	}
	for _, tt := range tests {
		res := NewMacroSet().parseSearchText(tt.search, textLocator(tt.search))
		if got := render(res.root); got != tt.root {
			t.Errorf("%s:\n root %s\n want %s", tt.search, got, tt.root)
		}
		agg := false
		for _, s := range res.stages {
			agg = agg || s.Kind == rule.StageAggregation
		}
		if agg != tt.agg {
			t.Errorf("%s: aggregation %v, want %v", tt.search, agg, tt.agg)
		}
	}
}

// rootReadsComputed lists Root predicates that test a column computed by an earlier
// stage (a Root predicate is the same node as in its stage, so its stage is known).
func rootReadsComputed(r *rule.Rule) []string {
	inRoot := map[*rule.Pred]bool{}
	for _, pp := range rule.Preds(r.Root) {
		inRoot[pp.Pred] = true
	}
	var out []string
	for _, s := range r.Stages {
		for _, pp := range rule.Preds(s.Node) {
			if !inRoot[pp.Pred] {
				continue
			}
			for _, c := range r.Computed {
				if c.Name == pp.Pred.Field && c.Stage < s.Index {
					out = append(out, fmt.Sprintf("%s (stage %d) computed at stage %d", c.Name, s.Index, c.Stage))
				}
			}
		}
	}
	return out
}

// TestCorpusRootNeverReadsComputed: over every ESCU detection, no Root predicate tests
// a column the search computed before it.
func TestCorpusRootNeverReadsComputed(t *testing.T) {
	_, files := escuFiles(t)
	p := escuParser(t)
	withComputed := 0
	for _, f := range files {
		if !p.Detect(f.rel, f.data) {
			continue
		}
		rs, _ := p.Parse(rule.Source{Path: f.rel}, f.data)
		for _, r := range rs {
			if len(r.Computed) > 0 {
				withComputed++
			}
			for _, v := range rootReadsComputed(r) {
				t.Errorf("%s: root reads %s", f.rel, v)
			}
		}
	}
	if withComputed < 1000 {
		t.Errorf("only %d detections compute columns: the check saw too little", withComputed)
	}
}
