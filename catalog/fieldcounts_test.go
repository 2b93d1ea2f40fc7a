package catalog_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/ingest"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/lang/sigma"
	"github.com/ruledex/ruledex/rule"
	"github.com/ruledex/ruledex/winevent"
)

// cover adapts winevent's coverage to the catalog, as cmd/ruledex does.
func cover(wc *winevent.Catalog) catalog.CoverFunc {
	return func(r *rule.Rule) []catalog.RuleEvent {
		var out []catalog.RuleEvent
		for _, row := range wc.Coverage(r) {
			ev := catalog.RuleEvent{Provider: row.Provider, EventID: row.EventID, Via: row.Via, Fields: map[string]string{}}
			for _, u := range row.Fields {
				ev.Fields[u.RuleField] = u.EventField
			}
			out = append(out, ev)
		}
		return out
	}
}

// TestEventFieldCounts ingests the real Sigma corpus and checks the Sysmon 1 page's
// per-field counts against a count made here from the catalog's predicates.
func TestEventFieldCounts(t *testing.T) {
	ctx := context.Background()
	cat, err := catalog.Open(filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	if _, err := ingest.Run(ctx, cat, []string{corpustest.Path(t, "sigma")}, ingest.Options{Parsers: []ingest.Parser{sigma.Parser{}}}); err != nil {
		t.Fatal(err)
	}
	wc, err := winevent.Load(winevent.Dir(corpustest.Dir(t)))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	n, err := cat.SyncRuleEvents(ctx, wc.Fingerprint(), cover(wc))
	t.Logf("first sync: %d rules in %v", n, time.Since(start))
	if err != nil || n == 0 {
		t.Fatalf("sync: %d rules, %v", n, err)
	}
	if again, err := cat.SyncRuleEvents(ctx, wc.Fingerprint(), cover(wc)); err != nil || again != 0 {
		t.Errorf("second sync recomputed %d rules (%v), want 0", again, err)
	}
	const sysmon = "Microsoft-Windows-Sysmon"
	got, err := cat.EventFieldCounts(ctx, sysmon, 1)
	if err != nil {
		t.Fatal(err)
	}

	// Independent count: which rules cover Sysmon 1 (from each rule's IR), then, from
	// the preds table, which Sysmon 1 fields each of them tests (same name, any case;
	// hash parts count as Hashes).
	s1, _ := wc.Event(sysmon, 1)
	names := map[string]string{}
	for _, f := range s1.Fields {
		names[strings.ToLower(f.Name)] = f.Name
	}
	for _, h := range []string{"md5", "sha1", "sha256", "imphash"} {
		names[h] = "Hashes"
	}
	db := cat.DB()
	rows, err := db.QueryContext(ctx, `SELECT pk, language, id FROM rules`)
	if err != nil {
		t.Fatal(err)
	}
	type ref struct {
		pk       int64
		lang, id string
	}
	var refs []ref
	for rows.Next() {
		var x ref
		if err := rows.Scan(&x.pk, &x.lang, &x.id); err != nil {
			t.Fatal(err)
		}
		refs = append(refs, x)
	}
	rows.Close()
	covers := map[int64]bool{}
	for _, x := range refs {
		r, err := cat.Rule(ctx, rule.Language(x.lang), x.id)
		if err != nil {
			t.Fatal(err)
		}
		for _, row := range wc.Coverage(r) {
			if row.Provider == sysmon && row.EventID == 1 {
				covers[x.pk] = true
			}
		}
	}
	want := map[string]map[int64]bool{}
	prows, err := db.QueryContext(ctx, `SELECT rule_pk, field FROM preds`)
	if err != nil {
		t.Fatal(err)
	}
	for prows.Next() {
		var pk int64
		var field string
		if err := prows.Scan(&pk, &field); err != nil {
			t.Fatal(err)
		}
		name, ok := names[strings.ToLower(field)]
		if !ok || !covers[pk] {
			continue
		}
		if want[name] == nil {
			want[name] = map[int64]bool{}
		}
		want[name][pk] = true
	}
	prows.Close()
	if len(want) < 10 {
		t.Fatalf("independent count found only %d fields", len(want))
	}
	for f, set := range want {
		if got[f].Rules != len(set) {
			t.Errorf("Sysmon 1 %s: page says %d rules, predicates say %d", f, got[f].Rules, len(set))
		}
	}
	for f := range got {
		if want[f] == nil {
			t.Errorf("Sysmon 1 %s: page counts %d rules, predicates none", f, got[f].Rules)
		}
	}
	if got["CommandLine"].Rules < 500 || got["Image"].Rules < 500 {
		t.Errorf("implausible counts: CommandLine %d, Image %d", got["CommandLine"].Rules, got["Image"].Rules)
	}
	t.Logf("Sysmon 1 rules: %d; CommandLine %d, Image %d, ParentImage %d, OriginalFileName %d",
		len(covers), got["CommandLine"].Rules, got["Image"].Rules, got["ParentImage"].Rules, got["OriginalFileName"].Rules)

	// 4688 counts Sigma rules on Image under NewProcessName, and the seed's own name.
	sec, err := cat.EventFieldCounts(ctx, "Microsoft-Windows-Security-Auditing", 4688)
	if err != nil {
		t.Fatal(err)
	}
	if sec["NewProcessName"].Rules <= got["Image"].Rules/4 || sec["Image"].Rules != 0 {
		t.Errorf("4688 NewProcessName %d, Image %d", sec["NewProcessName"].Rules, sec["Image"].Rules)
	}

	inds, err := cat.EventIndicators(ctx, sysmon, 1, 10)
	if err != nil || len(inds) != 10 {
		t.Fatalf("indicators: %d, %v", len(inds), err)
	}
	for i, in := range inds {
		if in.Rules < 2 || (i > 0 && in.Rules > inds[i-1].Rules) || len(in.ByLanguage) == 0 || in.ByLanguage[0].Language != rule.Sigma {
			t.Errorf("indicator %d: %+v", i, in)
		}
		users, err := cat.RulesByIndicatorKey(ctx, in.Key, 0)
		if err != nil || len(users) < in.Rules {
			t.Errorf("indicator %s: %d rules share the key, page says %d on this event (%v)", in.Key, len(users), in.Rules, err)
		}
	}
	t.Logf("top Sysmon 1 indicator: %s %s %q in %d rules", inds[0].Field, inds[0].Kind, inds[0].Value, inds[0].Rules)

	pc, err := cat.ProviderRuleCounts(ctx)
	if err != nil || pc[sysmon] < len(covers) {
		t.Errorf("provider counts %v (%v)", pc, err)
	}
	ev, err := cat.EventRuleCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ev {
		if e.Provider == sysmon && e.EventID == 1 && e.Rules != len(covers) {
			t.Errorf("Sysmon 1 rule count %d, want %d", e.Rules, len(covers))
		}
	}
	withField, err := cat.RulesForEvent(ctx, sysmon, 1, "originalfilename", 0)
	if err != nil || len(withField) != got["OriginalFileName"].Rules {
		t.Errorf("RulesForEvent OriginalFileName: %d, want %d (%v)", len(withField), got["OriginalFileName"].Rules, err)
	}
	// A different fingerprint recomputes everything.
	if n2, err := cat.SyncRuleEvents(ctx, "other", cover(wc)); err != nil || n2 != n {
		t.Errorf("fingerprint change recomputed %d of %d (%v)", n2, n, err)
	}
}
