package engine

import (
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/ruledex/ruledex/fieldmap"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/neighbors"
	"github.com/ruledex/ruledex/rule"
	"github.com/ruledex/ruledex/winevent"
)

// windowsKinds are the telemetry the issue names: process, file, registry, network and
// PowerShell events.
var windowsKinds = []string{"process_creation", "file_", "registry_", "network_connection", "dns_query", "ps_", "image_load"}

// TestHuntRunsOtherLanguages is the hunt acceptance of issue 11: of the KQL, SPL,
// Elastic and YARA-L rules whose shape is a single-event filter on Windows process,
// file, registry, network or PowerShell telemetry, the engine runs at least 80% per
// language. The skip reasons of the rest are logged.
func TestHuntRunsOtherLanguages(t *testing.T) {
	cat, err := winevent.Load(corpustest.Path(t, "events"))
	if err != nil {
		t.Fatal(err)
	}
	fm := fieldmap.Default()
	var cands []*rule.Rule
	for _, r := range pipelineCorpus(t) {
		f := neighbors.NewForm(fm, r, neighbors.Options{})
		if f.Shape != neighbors.ShapeSingle || !strings.HasPrefix(f.Class, "windows/") {
			continue
		}
		for _, k := range windowsKinds {
			if strings.Contains(f.Class, "/"+k) {
				cands = append(cands, r)
				break
			}
		}
	}
	_, skipped := Compile(cands, Options{Router: CatalogRouter{Catalog: cat}})
	total, skip := map[rule.Language]int{}, map[rule.Language]int{}
	reasons := map[string]int{}
	for _, r := range cands {
		total[r.Language]++
	}
	for _, s := range skipped {
		skip[s.Rule.Language]++
		reason := s.Reason
		if i := strings.IndexAny(reason, "\"(:"); i > 0 {
			reason = reason[:i]
		}
		reasons[string(s.Rule.Language)+": "+reason]++
	}
	for _, l := range []rule.Language{rule.Kusto, rule.Splunk, rule.Elastic, rule.YaraL} {
		run := total[l] - skip[l]
		share := float64(run) / float64(max(1, total[l]))
		t.Logf("%-8s runs %4d of %4d single-event Windows rules (%.1f%%)", l, run, total[l], 100*share)
		if total[l] == 0 || share < 0.80 {
			t.Errorf("%s: runs %d of %d (%.1f%%), want at least 80%%", l, run, total[l], 100*share)
		}
	}
	var rs []string
	for r, n := range reasons {
		rs = append(rs, r+" ×"+strconv.Itoa(n))
	}
	sort.Strings(rs)
	t.Logf("skipped: %s", strings.Join(rs, "; "))
}
