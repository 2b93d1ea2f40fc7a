package neighbors

import (
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/ruledex/ruledex/engine"
	"github.com/ruledex/ruledex/event"
	"github.com/ruledex/ruledex/fieldmap"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/logread"
	"github.com/ruledex/ruledex/rule"
	"github.com/ruledex/ruledex/winevent"
)

// pairKey names a checked pair for the per-tier, per-language-pair counts.
func pairKey(a, b *rule.Rule, basis string) string {
	la, lb := string(a.Language), string(b.Language)
	if la > lb {
		la, lb = lb, la
	}
	return la + " ⇄ " + lb + " " + basis
}

// shared reports whether an event (provider:id) is one both forms can match. Across
// telemetry the stricter rule may read events the broader one does not (a Defender
// process event read as Sysmon 1, a Sigma rule on 4688 fields): the field-map tier
// claims the relation for the activity both see, so only those events are checked.
func shared(a, b *Form, evKey string) bool {
	return (a.Events == nil || a.Events[evKey]) && (b.Events == nil || b.Events[evKey])
}

// TestSoundnessAllLanguages is issue 11's property test: every relation of both tiers,
// in every language, checked by the hunting engine (which runs KQL and SPL rules on
// Windows events through the field map) on the regression and sample events, and on
// witness events built for each stricter rule. Zero violations.
func TestSoundnessAllLanguages(t *testing.T) {
	f := allLanguageFixture(t)
	res, cat := f.res, f.cat
	m, _ := engine.Compile(f.rules, engine.Options{Router: engine.CatalogRouter{Catalog: cat}})
	compiled := map[string]bool{}
	byLang := map[rule.Language]int{}
	for _, r := range m.Rules() {
		compiled[Key(r)] = true
		byLang[r.Language]++
	}
	t.Logf("%d of %d rules compiled: %v", len(m.Rules()), len(f.rules), byLang)
	// Issue 11: the engine runs the single-event filters of every language on Windows
	// telemetry. Those are the provable single-event forms with known events.
	runnable, filters := map[rule.Language]int{}, map[rule.Language]int{}
	for _, r := range f.rules {
		fo := res.Forms[Key(r)]
		if r.Language == rule.Sigma || !fo.Provable || fo.Events == nil {
			continue
		}
		filters[r.Language]++
		if compiled[Key(r)] {
			runnable[r.Language]++
		}
	}
	for l, n := range filters {
		t.Logf("%s: the engine runs %d of %d single-event filters on Windows events", l, runnable[l], n)
		if runnable[l]*10 < n*8 {
			t.Errorf("%s: the engine runs only %d of %d single-event filters", l, runnable[l], n)
		}
	}
	byKey := map[string]*rule.Rule{}
	for _, r := range f.rules {
		byKey[Key(r)] = r
	}

	// Real events.
	matched := map[string]map[int]bool{}
	var evKeys []string
	var files []string
	for _, dir := range []string{corpustest.Path(t, "regression"), corpustest.Path(t, "evtx")} {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".evtx") {
				files = append(files, p)
			}
			return nil
		})
	}
	var ev event.Event
	var out []engine.Match
	for _, fn := range files {
		r, err := logread.Open(fn)
		if err != nil {
			t.Fatalf("%s: %v", fn, err)
		}
		for {
			err := r.Next(&ev)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				var le *logread.Error
				if errors.As(err, &le) {
					continue
				}
				t.Fatalf("%s: %v", fn, err)
			}
			n := len(evKeys)
			evKeys = append(evKeys, eventKey(&ev))
			out = m.Match(&ev, out[:0])
			for _, mt := range out {
				k := Key(mt.Rule)
				if matched[k] == nil {
					matched[k] = map[int]bool{}
				}
				matched[k][n] = true
			}
		}
		r.Close()
	}
	fires := func(ev *event.Event, key string) bool {
		for _, mt := range m.Match(ev, nil) {
			if Key(mt.Rule) == key {
				return true
			}
		}
		return false
	}

	checked := map[string]int{}
	exercised, witnesses, distinguished, strict := 0, 0, 0, 0
	violations := 0
	broaderWitness := map[string]bool{} // strict pairs whose broader rule got a witness
	check := func(stricter, broader string, basis, diff string, isStrict bool) {
		a, b := res.Forms[stricter], res.Forms[broader]
		if !compiled[stricter] || !compiled[broader] {
			return
		}
		checked[pairKey(byKey[stricter], byKey[broader], basis)]++
		for e := range matched[stricter] {
			if !shared(a, b, evKeys[e]) {
				continue
			}
			exercised++
			if !matched[broader][e] {
				violations++
				t.Errorf("event %d (%s): %s matches, %s (%s) does not; %s", e, evKeys[e], stricter, broader, basis, diff)
				break
			}
		}
		sr := byKey[stricter]
		foundDistinct := false
		for _, row := range cat.Coverage(sr) {
			if !shared(a, b, row.Provider+":"+strconv.Itoa(row.EventID)) {
				continue
			}
			w := witnessAll(sr, row, 0)
			if !fires(w, stricter) {
				continue
			}
			witnesses++
			if !fires(w, broader) {
				violations++
				t.Errorf("witness %v: stricter %s (%q) matches, broader %s (%q) does not (%s: %s)",
					w.Fields, stricter, sr.Title, broader, byKey[broader].Title, basis, diff)
			}
			if isStrict && !foundDistinct {
				// A distinguishing witness: built for the broader rule only.
				// Either the broader rule's own witness, or one that also trips a filter
				// the stricter rule adds (written first so the broader rule's values
				// do not take its fields).
				var cands []*event.Event
				for _, k := range []int{0, 1, 2, 3, -1} {
					cands = append(cands, witnessAll(byKey[broader], row, k))
				}
				for _, n := range negatedConjuncts(sr.Root) {
					d := witnessNode(sr, n, row)
					for _, fl := range witnessAll(byKey[broader], row, 0).Fields {
						if _, ok := d.Get(fl.Name); !ok {
							d.Add(fl.Name, fl.Value)
						}
					}
					cands = append(cands, d)
				}
				for _, d := range cands {
					if !fires(d, broader) {
						continue
					}
					broaderWitness[broader+"\x00"+stricter] = true
					if !fires(d, stricter) {
						foundDistinct = true
						break
					}
				}
			}
		}
		if isStrict {
			strict++
			if foundDistinct {
				distinguished++
			}
		}
	}
	for broader, rels := range res.Stricter {
		for _, rel := range rels {
			check(rel.Key, broader, rel.Basis, rel.Difference, true)
		}
	}
	for a, rels := range res.Equivalent {
		for _, rel := range rels {
			check(a, rel.Key, rel.Basis, rel.Difference, false)
		}
	}
	var keys []string
	for k := range checked {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var lines []string
	for _, k := range keys {
		lines = append(lines, k+": "+strconv.Itoa(checked[k]))
	}
	t.Logf("%d events; directed pairs checked (both rules run by the engine):\n%s\n%d real-event checks, %d witnesses, %d of %d strict pairs with a distinguishing witness (%d where the builder found a witness of the broader rule); %d violations",
		len(evKeys), strings.Join(lines, "\n"), exercised, witnesses, distinguished, strict, len(broaderWitness), violations)
	if witnesses == 0 {
		t.Error("no witness matched: the test proves nothing")
	}
	// A strict relation must be strict: where a witness of the broader rule can be
	// built at all, nearly always one of them is missed by the stricter rule.
	if distinguished*10 < len(broaderWitness)*9 {
		t.Errorf("only %d of %d strict pairs with a broader witness have a distinguishing one", distinguished, len(broaderWitness))
	}
}

func eventKey(ev *event.Event) string {
	prov, _ := ev.Get("Provider_Name")
	id, _ := ev.Get("EventID")
	return prov + ":" + strings.TrimSpace(id)
}

// witnessAll builds an event meant to satisfy r on one event of its coverage, in that
// event's field names (Image on Sysmon 1, NewProcessName on 4688; a Defender FileName
// becomes a full Image path with that file name). Variant k writes alternative k of each
// OR and value k of each list (counted from the end when negative), which tends to
// satisfy the broader of two
// rules and not the stricter.
func witnessAll(r *rule.Rule, row winevent.CoverageRow, k int) *event.Event {
	return witnessFrom(r, r.Root, row, k)
}

// witnessNode is a witness for one node of r (the inside of a filter) alone.
func witnessNode(r *rule.Rule, n *rule.Node, row winevent.CoverageRow) *event.Event {
	return witnessFrom(r, n, row, 0)
}

// negatedConjuncts are the insides of r's top-level filters (and not x).
func negatedConjuncts(n *rule.Node) []*rule.Node {
	var out []*rule.Node
	var walk func(*rule.Node)
	walk = func(n *rule.Node) {
		if n == nil {
			return
		}
		switch n.Op {
		case rule.OpAnd, rule.OpRef:
			for _, k := range n.Children {
				walk(k)
			}
		case rule.OpNot:
			if len(n.Children) == 1 {
				out = append(out, n.Children[0])
			}
		}
	}
	walk(n)
	return out
}

func witnessFrom(r *rule.Rule, root *rule.Node, row winevent.CoverageRow, k int) *event.Event {
	at := func(n int) int { return ((k % n) + n) % n }
	ev := &event.Event{}
	ev.Add("Channel", row.Channel)
	ev.Add("EventID", strconv.Itoa(row.EventID))
	ev.Add("Provider_Name", row.Provider)
	fm := fieldmap.Default()
	ctx := fieldmap.Contexts(r)
	eventField := func(field string) (string, bool) {
		name, nameOnly := field, false
		if e, ok := fm.Lookup(ctx, field); ok && r.Language != rule.Sigma {
			name, nameOnly = e.Canonical, e.NameOnly
		}
		for _, u := range row.Fields {
			if strings.EqualFold(u.RuleField, field) || strings.EqualFold(u.RuleField, name) {
				return u.EventField, nameOnly
			}
		}
		return name, nameOnly
	}
	var walk func(n *rule.Node)
	walk = func(n *rule.Node) {
		pick := func(ks []*rule.Node) *rule.Node { return ks[at(len(ks))] }
		switch n.Op {
		case rule.OpAnd, rule.OpRef:
			for _, k := range n.Children {
				walk(k)
			}
		case rule.OpOr:
			if len(n.Children) > 0 {
				walk(pick(n.Children))
			}
		case rule.OpQuant:
			if n.Quant == "all" {
				for _, k := range n.Children {
					walk(k)
				}
			} else if len(n.Children) > 0 {
				walk(pick(n.Children))
			}
		case rule.OpPred:
			p := n.Pred
			if p.Field == "" || len(p.Values) == 0 {
				return
			}
			for _, t := range p.Transforms {
				if t != rule.TCased {
					return
				}
			}
			i := at(len(p.Values))
			vals := p.Values[i : i+1]
			if p.All {
				vals = p.Values
			}
			field, nameOnly := eventField(p.Field)
			var b strings.Builder
			if nameOnly {
				b.WriteString(`C:\w\`)
			}
			for _, v := range vals {
				if v.Wild || nameOnly && strings.ContainsAny(v.S, `\/`) {
					return
				}
				switch p.Kind {
				case rule.Eq, rule.In:
					b.WriteString(v.S)
				case rule.Match:
					b.WriteString("x" + v.S + "x")
				case rule.StartsW:
					b.WriteString(v.S + "tail")
				case rule.EndsW:
					b.WriteString("head" + v.S)
				case rule.Term, rule.TermPrefix, rule.TermSuffix:
					b.WriteString("x " + v.S + " x")
				default:
					return
				}
				if p.All && (p.Kind == rule.Eq || p.Kind == rule.In) {
					break
				}
			}
			if _, ok := ev.Get(field); !ok {
				ev.Add(field, b.String())
			}
		}
	}
	if root != nil {
		walk(root)
	}
	return ev
}
