// Package rule is ruledex's intermediate representation (IR): one language-neutral
// model for Sigma, Kusto, Splunk, Elastic and YARA-L rules. Parsers produce it, the catalog stores it,
// the engine compiles it, the web and CLI render it. It imports nothing of ours.
package rule

import "strings"

// Language names a rule language. The values are stable: they appear in URLs
// (/rules/<lang>/<id>/), JSON and the catalog.
type Language string

const (
	Sigma   Language = "sigma"
	Kusto   Language = "kusto"
	Splunk  Language = "splunk"
	Elastic Language = "elastic" // Elastic detection rules: EQL, Kibana query (kuery), Lucene, ES|QL
	YaraL   Language = "yaral"   // Google SecOps (Chronicle) YARA-L 2.0
)

// Languages lists every language, in the order pages list them.
var Languages = []Language{Sigma, Kusto, Splunk, Elastic, YaraL}

// ParseLanguage returns the language named s (its id as in URLs), and whether it is one.
func ParseLanguage(s string) (Language, bool) {
	for _, l := range Languages {
		if string(l) == s {
			return l, true
		}
	}
	return "", false
}

// LanguageIDs returns the language ids joined for messages ("sigma, kusto, ...").
func LanguageIDs() string {
	ids := make([]string, len(Languages))
	for i, l := range Languages {
		ids[i] = string(l)
	}
	return strings.Join(ids, ", ")
}

// Display is the human name used in breadcrumbs ("Detection rules › Sigma").
func (l Language) Display() string {
	switch l {
	case Sigma:
		return "Sigma"
	case Kusto:
		return "Kusto"
	case Splunk:
		return "Splunk"
	case Elastic:
		return "Elastic"
	case YaraL:
		return "YARA-L"
	}
	return string(l)
}

// Class says whether a rule detects something in telemetry. Only detections are
// listed in browse pages and counted in ATT&CK coverage; the others stay searchable.
type Class string

const (
	Detection     Class = "detection"      // predicates over telemetry (the default)
	VendorFeed    Class = "vendor-feed"    // only forwards a third-party product's alerts
	BuildingBlock Class = "building-block" // feeds other rules, never alerts alone
	Hunting       Class = "hunting"        // a hunting query, not a scheduled detection
	Tutorial      Class = "tutorial"       // teaching material (webcasts, learning sessions)
)

// Pos locates something in a source file. Line and Col are 1-based; 0 means unknown.
type Pos struct {
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
	Col  int    `json:"col,omitempty"`
}

// Source says where a rule came from.
type Source struct {
	// Repo is the repository as shown on pages, without scheme:
	// "github.com/mdecrevoisier/SIGMA-detection-rules". For plain folders it is the folder path.
	Repo string `json:"repo"`
	// RepoURL is the browsable repository URL ("https://github.com/..."), empty when unknown.
	RepoURL string `json:"repo_url,omitempty"`
	// Path is the file path relative to the repository root, with forward slashes.
	Path string `json:"path"`
	// Line is the first line of this rule in the file (files may hold several rules).
	Line int `json:"line,omitempty"`
	// Index is the rule's position among the rules of its file, from 0.
	Index int `json:"index,omitempty"`
	// Commit is the repository commit the file was read at, when known.
	Commit string `json:"commit,omitempty"`
	// UpstreamURL links to the file upstream (RepoURL + "/blob/<ref>/" + Path), empty when unknown.
	UpstreamURL string `json:"upstream_url,omitempty"`
}

// LogSource is what telemetry a rule reads. Sigma fills Product/Category/Service;
// KQL fills Tables; SPL fills DataModels and DataSources.
type LogSource struct {
	Product    string   `json:"product,omitempty"`
	Category   string   `json:"category,omitempty"`
	Service    string   `json:"service,omitempty"`
	Definition string   `json:"definition,omitempty"`
	Tables     []string `json:"tables,omitempty"`
	DataModels []string `json:"data_models,omitempty"`
	// DataSources are declared sources such as ESCU's data_source or Sentinel's requiredDataConnectors.
	DataSources []string `json:"data_sources,omitempty"`
	// Indexes are Elastic index patterns (logs-endpoint.events.process-*, winlogbeat-*).
	Indexes []string `json:"indexes,omitempty"`
	// EventTypes are UDM metadata.event_type values (PROCESS_LAUNCH) or EQL event
	// categories (process) the rule selects.
	EventTypes []string `json:"event_types,omitempty"`
}

// Empty reports whether nothing is known about the log source.
func (l LogSource) Empty() bool {
	return l.Product == "" && l.Category == "" && l.Service == "" && len(l.Tables) == 0 &&
		len(l.DataModels) == 0 && len(l.DataSources) == 0 && len(l.Indexes) == 0 && len(l.EventTypes) == 0
}

// Related links a rule to another by id (Sigma `related`).
type Related struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

// Param is a named parameter of a rule (KQL `let threshold = 10;`, an SPL macro argument).
type Param struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	Pos   Pos    `json:"pos"`
}

// Rule is one detection rule in any language.
type Rule struct {
	// ID is the upstream id when the rule has one (Sigma `id`, Sentinel `id`, ESCU `id`),
	// else a stable hash of repository, path and index (see StableID). The catalog may
	// suffix it when two files claim the same id.
	ID       string   `json:"id"`
	Language Language `json:"language"`
	Source   Source   `json:"source"`
	// Name is a secondary identifier some formats have (Sigma `name`, used by correlations).
	Name        string `json:"name,omitempty"`
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	Status      string `json:"status,omitempty"`
	Severity    string `json:"severity,omitempty"` // Sigma level; informational, low, medium, high, critical
	Class       Class  `json:"class"`
	// Type is the document kind within its language, shown as "Kind" in metadata:
	// Sigma "rule", "correlation" or "filter"; Sentinel "analytic" or "hunting"; ESCU
	// "TTP", "Anomaly", "Hunting"...; empty when the format has none.
	Type       string   `json:"type,omitempty"`
	Authors    []string `json:"authors,omitempty"`
	Date       string   `json:"date,omitempty"`     // as written upstream (YYYY-MM-DD or YYYY/MM/DD)
	Modified   string   `json:"modified,omitempty"` // as written upstream
	References []string `json:"references,omitempty"`
	Tags       []string `json:"tags,omitempty"` // as written
	// Tactics are ATT&CK tactic short names ("command-and-control"), normalized by the
	// parser from any spelling (attack.Command_and_control, Sentinel "CommandAndControl").
	Tactics []string `json:"tactics,omitempty"`
	// Techniques are ATT&CK technique IDs, upper-cased ("T1197", "T1558.004"). Names
	// are looked up in the ATT&CK bundle, never stored in the rule.
	Techniques     []string  `json:"techniques,omitempty"`
	LogSource      LogSource `json:"logsource"`
	FalsePositives []string  `json:"falsepositives,omitempty"`
	Related        []Related `json:"related,omitempty"`
	// Body is the rule text verbatim, exactly as in the file (for multi-rule files, this
	// rule's part). BodyLang names its syntax for highlighting: "yaml", "kusto", "spl".
	Body     string `json:"body"`
	BodyLang string `json:"body_lang"`
	// Bodies holds further variants of the same rule in one file (e.g. the Defender XDR
	// and Sentinel versions of one KQL query), each verbatim.
	Bodies []Variant `json:"bodies,omitempty"`
	// Condition is the rule's condition as written (Sigma `condition`, a KQL/SPL query's
	// filtering part). A Sigma list of conditions is kept one per line; they are OR-ed.
	Condition string `json:"condition,omitempty"`
	// Root is the rule's logic as a boolean tree over predicates. Nil for rules whose
	// logic is only pipeline stages or a correlation.
	Root *Node `json:"root,omitempty"`
	// Stages is the rule as shown on its page: Stage 0 is the condition as written,
	// then one stage per top-level conjunct (or per pipeline operator), see REFERENCE §1.7.
	Stages []Stage `json:"stages"`
	// Timeframe is the time window (Sigma timeframe/correlation timespan, Sentinel queryPeriod).
	Timeframe string `json:"timeframe,omitempty"`
	// Frequency is how often a scheduled rule runs (Sentinel queryFrequency).
	Frequency string `json:"frequency,omitempty"`
	// GroupBy lists aggregation group-by fields, when the rule aggregates.
	GroupBy []string `json:"group_by,omitempty"`
	// Correlation is set for Sigma correlation rules.
	Correlation *Correlation `json:"correlation,omitempty"`
	// Outputs are the fields the rule emits (KQL project/extend/summarize, entityMappings, customDetails).
	Outputs []string `json:"outputs,omitempty"`
	Params  []Param  `json:"params,omitempty"`
	// Indicators are derived from the predicates (see package fieldmap); filled before storing.
	Indicators  []Indicator  `json:"indicators,omitempty"`
	Diagnostics []Diagnostic `json:"diagnostics,omitempty"`
	// Extra keeps metadata fields the IR has no slot for, verbatim as strings, so nothing is lost.
	Extra map[string]string `json:"extra,omitempty"`

	// RiskScore is the rule's risk score as its language states it (Elastic risk_score,
	// ESCU rba score, YARA-L outcome $risk_score when constant); 0 when none.
	RiskScore int `json:"risk_score,omitempty"`
	// Settings are shown on the page as the rule's parameters table: Elastic rule type
	// parameters (threshold, new_terms fields and window, ML job and anomaly threshold,
	// building_block_type, maturity), YARA-L match window, options and reference lists.
	Settings []Setting `json:"settings,omitempty"`
	// Docs are prose sections in Markdown (Elastic note = investigation guide, setup;
	// ESCU how_to_implement, known_false_positives). Untrusted: render with raw HTML off
	// and only http(s) links.
	Docs []Doc `json:"docs,omitempty"`
	// Computed are columns the rule computes rather than reads from the event (KQL
	// extend/summarize/parse, SPL eval/rex/stats, ES|QL eval/stats, YARA-L outcome);
	// predicates on them never become raw-field indicators.
	Computed []Computed `json:"computed,omitempty"`
}

// Setting is one named parameter of a rule, as written (see Rule.Settings).
type Setting struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Doc is a prose section of a rule (see Rule.Docs).
type Doc struct {
	Title    string `json:"title"`    // "Investigation guide", "Setup", "How to implement"
	Markdown string `json:"markdown"` // as written upstream
}

// Computed is a column the rule derives (see Rule.Computed).
type Computed struct {
	Name       string `json:"name"`
	Definition string `json:"definition"` // the expression as written: tolower(FileName), count() by host
	Stage      int    `json:"stage"`      // the stage that defines it
}

// Variant is one more body of the same rule.
type Variant struct {
	Label string `json:"label"` // e.g. "Defender XDR", "Sentinel"
	Body  string `json:"body"`
	Lang  string `json:"lang"`
}

// HasErrors reports whether any diagnostic is an error.
func (r *Rule) HasErrors() bool {
	for _, d := range r.Diagnostics {
		if d.Severity == Error {
			return true
		}
	}
	return false
}

// Correlation is a Sigma correlation rule's definition.
type Correlation struct {
	Type     string   `json:"type"`  // event_count, value_count, temporal, temporal_ordered, value_sum, value_avg, value_percentile
	Rules    []string `json:"rules"` // referenced rule ids or names
	GroupBy  []string `json:"group_by,omitempty"`
	Timespan string   `json:"timespan,omitempty"`
	// Condition: Op is one of gt, gte, lt, lte, eq, neq; Field for value_* types.
	Conditions []Threshold                  `json:"conditions,omitempty"`
	Field      string                       `json:"field,omitempty"`
	Aliases    map[string]map[string]string `json:"aliases,omitempty"` // alias -> rule -> field
	Generate   bool                         `json:"generate,omitempty"`
}

// Threshold is one comparison of an aggregate against a number.
type Threshold struct {
	Op    string  `json:"op"` // gt, gte, lt, lte, eq, neq
	Value float64 `json:"value"`
}
