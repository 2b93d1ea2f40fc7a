package hunt

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/lang/elastic"
	"github.com/ruledex/ruledex/lang/kql"
	"github.com/ruledex/ruledex/lang/sigma"
	"github.com/ruledex/ruledex/lang/spl"
	"github.com/ruledex/ruledex/lang/yaral"
	"github.com/ruledex/ruledex/rule"
)

// codecSample parses up to n rule files of each language from the corpus, untrimmed:
// documentation, indicators, settings, correlations and pipelines all occur.
func codecSample(t *testing.T, n int) (files []string, res []parsed) {
	t.Helper()
	root := corpustest.Dir(t)
	for _, c := range []struct {
		dir string
		p   Parser
	}{
		{"sigma/sigmahq", sigma.Parser{}},
		{"sigma/mdecrevoisier", sigma.Parser{}},
		{"kql", kql.Parser{}},
		{"spl/splunk", &spl.Parser{}},
		{"elastic/detection-rules", elastic.Parser{}},
		{"yaral/chronicle", yaral.Parser{}},
	} {
		got := 0
		filepath.WalkDir(filepath.Join(root, c.dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || got >= n {
				return nil
			}
			data, err := os.ReadFile(path)
			if err != nil || !c.p.Detect(path, data) {
				return nil
			}
			rs, diags := c.p.Parse(rule.Source{Repo: c.dir, Path: path}, data)
			if len(rs) == 0 {
				return nil
			}
			p := parsed{rules: rs}
			for _, d := range diags {
				p.warns = append(p.warns, d.String())
			}
			files, res = append(files, path), append(res, p)
			got++
			return nil
		})
		if got == 0 {
			t.Fatalf("no %s rule parsed under %s", c.p.Language(), c.dir)
		}
	}
	return files, res
}

func encodeShard(files []string, res []parsed) []byte {
	enc := newEncoder()
	for i := range files {
		var sum [32]byte
		sum[0], sum[31] = byte(i), byte(i>>8)
		enc.entry(files[i], sum, res[i])
	}
	return enc.shard(len(files))
}

// Every rule of every language decodes to what was encoded, stages sharing Root's
// nodes again.
func TestCodecRoundTrip(t *testing.T) {
	files, res := codecSample(t, 60)
	es, err := decodeShard(encodeShard(files, res))
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != len(files) {
		t.Fatalf("%d entries decoded, %d encoded", len(es), len(files))
	}
	seen := map[string]bool{}
	shared := 0
	for i, e := range es {
		if e.Path != files[i] || e.Sum[0] != byte(i) || e.Sum[31] != byte(i>>8) {
			t.Fatalf("entry %d: path %q sum %x, want %q", i, e.Path, e.Sum, files[i])
		}
		got := parsed{rules: e.rules, errs: e.errs, warns: e.warns}
		if diff := cmp.Diff(res[i], got, cmp.AllowUnexported(parsed{}), cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("%s differs after a round trip (-parsed +decoded):\n%s", files[i], diff)
		}
		for _, r := range e.rules {
			seen[string(r.Language)] = true
			in := map[*rule.Node]bool{}
			rule.Walk(r.Root, func(n *rule.Node, _ bool) bool { in[n] = true; return true })
			for _, st := range r.Stages {
				if st.Node != nil && in[st.Node] {
					shared++
				}
			}
		}
	}
	if len(seen) != 5 || shared == 0 {
		t.Errorf("languages %v, %d stages sharing Root: the sample misses what it should cover", seen, shared)
	}
}

// A shard cut anywhere, or with any byte changed, decodes to an error or to entries,
// never a panic (the file's checksum catches changed bytes before this).
func TestCodecDamagedShard(t *testing.T) {
	files, res := codecSample(t, 2)
	b := encodeShard(files, res)
	step := max(1, len(b)/3000)
	for n := 0; n < len(b); n += step {
		if _, err := decodeShard(b[:n]); !errors.Is(err, errDamaged) {
			t.Fatalf("shard cut at %d of %d bytes: error %v, want %v", n, len(b), err, errDamaged)
		}
	}
	for i := 0; i < len(b); i += step {
		c := slices.Clone(b)
		c[i] ^= 0xa5
		decodeShard(c)
	}
}

// codecFields lists every field of the IR types a rule holds, as codec.go writes
// them: a field the IR gains and the codec does not write would be lost by every
// cached hunt.
var codecFields = map[string]string{
	"Rule": "ID Language Source Name Title Description Status Severity Class Type Authors Date Modified References Tags " +
		"Tactics Techniques LogSource FalsePositives Related Body BodyLang Bodies Condition Root Stages Timeframe Frequency " +
		"GroupBy Correlation Outputs Params Indicators Diagnostics Extra RiskScore Settings Docs Computed",
	"Source":      "Repo RepoURL Path Line Index Commit UpstreamURL",
	"LogSource":   "Product Category Service Definition Tables DataModels DataSources Indexes EventTypes",
	"Related":     "ID Type",
	"Variant":     "Label Body Lang",
	"Node":        "Op Children Pred Name Quant Text Pos",
	"Pred":        "Field Kind Values All Transforms Native Pos",
	"Value":       "S Type Wild",
	"Pos":         "File Line Col",
	"Stage":       "Index Alt Kind Label Negated Op Text Node Aggregation Pos",
	"Aggregation": "Func Field GroupBy Op Value Timespan",
	"Correlation": "Type Rules GroupBy Timespan Conditions Field Aliases Generate",
	"Threshold":   "Op Value",
	"Param":       "Name Value Pos",
	"Indicator":   "Field Canonical Kind Value Key Transforms Negated Stage",
	"Diagnostic":  "Severity Code Pos Message",
	"Setting":     "Name Value",
	"Doc":         "Title Markdown",
	"Computed":    "Name Definition Stage",
}

func TestCodecCoversIR(t *testing.T) {
	seen := map[reflect.Type]bool{}
	var visit func(ty reflect.Type)
	visit = func(ty reflect.Type) {
		for ty.Kind() == reflect.Pointer || ty.Kind() == reflect.Slice || ty.Kind() == reflect.Map {
			if ty.Kind() == reflect.Map {
				visit(ty.Key())
			}
			ty = ty.Elem()
		}
		if ty.Kind() != reflect.Struct || seen[ty] {
			return
		}
		seen[ty] = true
		var names []string
		for i := range ty.NumField() {
			names = append(names, ty.Field(i).Name)
			visit(ty.Field(i).Type)
		}
		if got, want := strings.Join(names, " "), codecFields[ty.Name()]; got != want {
			t.Errorf("rule.%s has fields %q; hunt/codec.go writes %q: encode and decode the new fields, then list them here", ty.Name(), got, want)
		}
	}
	visit(reflect.TypeOf(rule.Rule{}))
	if len(seen) != len(codecFields) {
		t.Errorf("%d IR types reached from rule.Rule, %d listed", len(seen), len(codecFields))
	}
}
