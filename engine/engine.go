// Package engine compiles rules from the IR into a matcher that evaluates flat events
// (package event): log-source routing by channel and event ID, a literal prefilter over
// every rule's required literals, and allocation-free evaluation of the few rules whose
// literals were seen.
//
// # Per-event cost
//
// An event's channel and event ID pick a bucket, built on first use: the variants whose
// routes accept it, less those whose own `EventID: N` test excludes that ID (eidGuard),
// and per field the literal set (litSet) of those variants' required literals, with the
// keyword literals (searched in every field) added. Each field value is scanned once
// (ASCII values without folding them, see scanField); a variant becomes a candidate when
// a literal of each of its (up to three) required sets was seen, and only candidates and
// the few variants without literals are evaluated. Regexes pass a cheap
// necessary test first (reGate). Field names resolve to slots through an immutable hash
// table (nameTab). Nothing allocates for an event that matches no rule.
//
// # Semantics
//
// Matching follows the Sigma specification and pySigma, the reference implementation:
//
//   - Strings compare case-insensitively (Unicode simple lowering on both sides) unless
//     the predicate is `cased`. Values produced by base64, base64offset or the UTF-16
//     encodings compare case-sensitively: they are encoded bytes, and folding their
//     letters would accept different text.
//   - Wildcards `*` and `?` (one character, not one byte) with `\*`, `\?`, `\`
//     escapes, as the IR's glob syntax defines; a lone `*` needs the field present.
//   - windash, base64, base64offset, utf16le/utf16be/utf16/wide are expanded at
//     compile time with rule.ExpandValue; any expansion may match.
//   - re: Go's RE2 first (case-sensitive unless `i`; `m` and `s` as flags); patterns
//     RE2 rejects (lookarounds, backreferences) fall back to regexp2 with a 100 ms
//     match timeout. Regexes test the value as logged, never folded.
//   - cidr: IPv4 and IPv6 networks (net/netip); IPv4-mapped IPv6 addresses match
//     their IPv4 network; values that are not addresses never match.
//   - Numbers: `gt`/`gte`/`lt`/`lte` parse the field as a decimal or 0x-hex number;
//     an equality with a number written unquoted in the rule also holds when the
//     field is numerically equal ("4688" = 4688).
//   - null (and exists: false): the field is absent or empty. An empty string needs the field
//     present and empty. exists: true needs the field present, even empty.
//   - fieldref compares two fields of the same event (with startswith, endswith,
//     contains as written after it); an absent field never matches.
//   - Keywords (values without a field) search every field value as substrings.
//   - term, term_prefix, term_suffix (KQL has, hasprefix, hassuffix): the value
//     occurs with no ASCII letter or digit right before it (term, term_prefix) and
//     right after it (term, term_suffix); boundaries are read on the compared text
//     (folded unless cased), so `has "shadowcopy"` does not hold on "shadowcopies".
//   - elem (array fields): any element may match, every element with all. A JSON
//     array is read as one field per element. ECS process.args on an event without
//     it (Sysmon 1, Security 4688) is the CommandLine (or process.command_line)
//     split into arguments as CommandLineToArgvW splits it, so quotes are removed.
//   - A field that occurs several times (unnamed EventData <Data>) matches when any
//     occurrence does.
//   - Event field names match rule field names exactly, else case-insensitively and
//     ignoring spaces (Defender logs "Threat Name", rules write ThreatName).
//
// # Routing
//
// With a Router (CatalogRouter over the Windows event catalog), a rule runs only on
// events of the channels and event IDs its log source means; Sysmon categories with a
// native-audit alternate compile a second variant with the alternate's field renames
// (process_creation on Security 4688: Image → NewProcessName ...), reported in
// Match.Via. An event without a Channel (or EventID) field is not excluded by it:
// flat JSON lines such as {"EventID":4688,"NewProcessName":...} are routed by what
// they carry. Rules whose log source the router does not know run on every event.
//
// # Rules that cannot run
//
// Compile never drops a rule silently: rules with parser errors, opaque condition
// parts, the expand modifier without values for its placeholders (Options.Placeholders), date-part
// modifiers or invalid regexes/networks are returned as Skipped with the reason.
// Correlation rules and `| count() by` aggregations are evaluated by a Correlator
// fed with Match results.
//
// # Other languages
//
// KQL, SPL, Elastic and YARA-L rules run when their pipeline is a single-event filter
// (plus, at most, a thresholded aggregation for the Correlator): every operator keeps
// or regroups rows, and no predicate tests a computed column. Joins, unions, row
// limits, lookups, opaque parts and filters on computed columns are Skipped with the
// reason. With a RuleRouter (CatalogRouter) such rules are routed by the event catalog
// (DeviceProcessEvents and Endpoint.Processes to Sysmon 1 and Security 4688, ...) and
// each field resolves through the field map: column → canonical name → the event's
// name on that route; a name-only column (Defender FileName, CIM process_name, ECS
// process.name) tests the file name of the path it maps to.
package engine

import (
	"sync"
	"sync/atomic"

	"github.com/ruledex/ruledex/event"
	"github.com/ruledex/ruledex/rule"
)

// Route is one kind of event a rule's log source means. Empty Channels or EventIDs
// mean any. Rename maps a rule field to the event field that carries it in this source
// (Image → NewProcessName for Security 4688); fields not in Rename keep their name.
type Route struct {
	Channels []string
	EventIDs []int
	Rename   map[string]string
	// Where adds field equalities the event must also satisfy (registry_set on 4657
	// needs OperationType "Existing registry value modified").
	Where map[string]string
	// Via names an alternate source for output ("Security 4688"); empty for the primary.
	Via string
	// Resolve, when set, maps a rule field to the event field that carries it, and
	// reports whether the rule field holds only the file name of that field (Defender
	// FileName is the last element of Image). Rules of languages other than Sigma
	// name fields in their own vocabulary; Resolve goes through the field map. It
	// replaces Rename. A field the event lacks is then also looked up as written, so
	// Defender-style JSON logs that carry FileName itself still match.
	Resolve func(ruleField string) (eventField string, nameOnly bool)
}

// NativeRouter is a Router that can also route a whole rule of another language, whose
// log source is a table or data model rather than a Sigma log source, resolving its
// fields through the field map.
type NativeRouter interface {
	Router
	RouteRule(r *rule.Rule) (routes []Route, ok bool)
}

// Router maps a rule's log source to the events it means. ok false means the log
// source is unknown to the router; such rules run on every event.
type Router interface {
	Routes(ls rule.LogSource) (routes []Route, ok bool)
}

// RuleRouter is a Router that needs the whole rule, not only its log source: a Sigma
// log source written as a list (category: [ps_module, ps_script]) keeps the list in
// Rule.Extra, and each value routes. Compile prefers RoutesFor when the Router has it.
type RuleRouter interface {
	Router
	RoutesFor(r *rule.Rule) (routes []Route, ok bool)
}

// Options configure Compile.
type Options struct {
	// Router routes rules by log source; nil runs every rule on every event.
	Router Router

	// Placeholders give the values of %name% placeholders for the expand modifier
	// (Sigma's placeholder convention: site-specific lists such as %Admins%). A rule
	// using a placeholder not listed here is skipped with the reason.
	Placeholders map[string][]string

	// bruteForce evaluates every routed rule on every event, bypassing the literal
	// prefilter; tests compare it with the prefiltered path.
	bruteForce bool
}

// Skipped is a rule the engine cannot run, with the reason.
type Skipped struct {
	Rule   *rule.Rule
	Reason string
}

// Match is one rule matching one event. A rule with a `| count() by` aggregation
// matches here on each event its condition selects: such matches are input for a
// Correlator (see Correlator.Suppressed), not alerts.
type Match struct {
	Rule *rule.Rule
	// RuleIndex is Rule's index in Matcher.Rules(), for callers that keep per-rule
	// figures in slices rather than maps keyed by the rule.
	RuleIndex int
	// Fields are the event fields the rule's positive predicates test, copied out of the
	// event (which the reader reuses), in rule order.
	Fields []event.Field
	// Via is the alternate log source the rule matched through ("" for its own).
	Via string
}

// Matcher evaluates compiled rules. It is immutable and safe for concurrent use.
type Matcher struct {
	rules    []*rule.Rule
	variants []*variant
	slots    map[string]int32 // field name as written and folded -> slot
	names    *nameTab         // slots, for the per-event lookups
	nslots   int
	npreds   int // compiled predicates (cpred.id)
	chanSlot int32
	eidSlot  int32
	// sysChanSlot and sysEidSlot are the header's Channel and EventID when a data field
	// of the same name took the plain name (logread: UserData/LogFileCleared/Channel);
	// routing follows the header.
	sysChanSlot int32
	sysEidSlot  int32
	// Prefilter data: every required literal (litKeys) and, per variant, the literals
	// of its required sets. Literal sets are built per bucket (see bucket.go).
	litKeys []litKey
	varLits [][]varLit
	// unconstrained variants have no required literal and are always evaluated when
	// their route accepts the event.
	unconstrained []int32
	bucketMu      sync.Mutex
	buckets       atomic.Pointer[map[bucketKey]*bucket]
	bySignature   map[string]*bucket
	// building: buckets being built, by signature, outside bucketMu (see bucket).
	building map[string]*pendingBucket
	// winFreq counts literals per 4-byte window (see windowFreq); built with the first
	// bucket that needs it.
	winFreq     winFreq
	winFreqOnce sync.Once
	// correlations are kept for the Correlator.
	correlations []*rule.Rule
	pool         sync.Pool
	bruteForce   bool
}

// variant is one rule compiled for one route.
type variant struct {
	rule  int32
	root  *cnode
	chans []string
	eids  []int
	via   string
	preds []*cpred // positive predicates, for reporting matched fields
	// guard, when not nil, are the event IDs the rule's own EventID test accepts (see
	// eidGuard): the bucket of an event with another ID leaves the variant out.
	guard []int
}

type cnode struct {
	op   nodeOp
	kids []*cnode
	p    *cpred
}

// nodeOp is a cnode's operator: a byte where rule.Op is a string, which eval compared
// at every node.
type nodeOp uint8

const (
	opInvalid nodeOp = iota // never holds
	opPred
	opAnd
	opOr
	opNot
	opTrue
)

func nodeOpOf(op rule.Op) nodeOp {
	switch op {
	case rule.OpPred:
		return opPred
	case rule.OpAnd:
		return opAnd
	case rule.OpOr:
		return opOr
	case rule.OpNot:
		return opNot
	case rule.OpTrue:
		return opTrue
	}
	return opInvalid
}

// Rules returns the rules compiled in (not the skipped ones).
func (m *Matcher) Rules() []*rule.Rule { return m.rules }

// Correlations returns the correlation rules, which the Correlator evaluates.
func (m *Matcher) Correlations() []*rule.Rule { return m.correlations }

// Compile builds a Matcher. Rules that cannot run are returned in Skipped with the
// reason; correlation rules are kept for the Correlator.
func Compile(rules []*rule.Rule, opts Options) (*Matcher, []Skipped) {
	return compile(rules, opts, precompileTests(rules, opts.Placeholders))
}

func compile(rules []*rule.Rule, opts Options, tests map[*rule.Pred][]valueTests) (*Matcher, []Skipped) {
	m := &Matcher{slots: map[string]int32{}, bySignature: map[string]*bucket{}, building: map[string]*pendingBucket{},
		bruteForce: opts.bruteForce}
	// About six literals per variant (SigmaHQ): sized ahead, the map is not rehashed
	// as it grows, which was an eighth of compile's serial time.
	c := &compiler{m: m, lits: make(map[litKey]int32, 8*len(rules)), placeholders: opts.Placeholders,
		tests: tests}
	m.chanSlot = c.slot("Channel")
	m.eidSlot = c.slot("EventID")
	m.sysChanSlot = c.slot("System_Channel")
	m.sysEidSlot = c.slot("System_EventID")
	var skipped []Skipped
	for _, r := range rules {
		if r == nil {
			continue
		}
		if r.Correlation != nil {
			m.correlations = append(m.correlations, r)
			continue
		}
		if r.Root == nil {
			skipped = append(skipped, Skipped{r, "no detection logic (the rule has no condition tree)"})
			continue
		}
		if d, bad := firstError(r); bad {
			skipped = append(skipped, Skipped{r, "rule has errors: " + d})
			continue
		}
		if why := unrunnable(r); why != "" {
			skipped = append(skipped, Skipped{r, why})
			continue
		}
		routes := []Route{{}}
		if opts.Router != nil {
			var rs []Route
			var ok bool
			if nr, native := opts.Router.(NativeRouter); native && r.Language != rule.Sigma {
				rs, ok = nr.RouteRule(r)
			} else if rr, isRule := opts.Router.(RuleRouter); isRule {
				rs, ok = rr.RoutesFor(r)
			} else {
				rs, ok = opts.Router.Routes(r.LogSource)
			}
			if ok && len(rs) > 0 {
				routes = rs
			}
		}
		ri := int32(len(m.rules))
		var vs []*variant
		var reqs [][][]litKey
		var err error
		for _, rt := range routes {
			v, req, e := c.compileVariant(r, ri, rt)
			if e != nil {
				err = e
				break
			}
			vs = append(vs, v)
			reqs = append(reqs, req)
		}
		if err != nil {
			skipped = append(skipped, Skipped{r, err.Error()})
			continue
		}
		m.rules = append(m.rules, r)
		for i, v := range vs {
			v.guard = eidGuard(v.root, m.eidSlot)
			vi := int32(len(m.variants))
			m.variants = append(m.variants, v)
			var lits []varLit
			if len(reqs[i]) == 0 || m.bruteForce {
				m.unconstrained = append(m.unconstrained, vi)
			} else {
				for si, set := range reqs[i] {
					bit := uint8(1) << si
					for _, k := range set {
						lits = append(lits, varLit{lit: c.literal(k), bit: bit})
					}
				}
			}
			m.varLits = append(m.varLits, lits)
		}
	}
	m.litKeys = c.litKeys
	m.names = newNameTab(m.slots)
	m.pool.New = func() any { return newState(m) }
	return m, skipped
}

func firstError(r *rule.Rule) (string, bool) {
	for _, d := range r.Diagnostics {
		if d.Severity == rule.Error {
			return d.String(), true
		}
	}
	return "", false
}
