// Package yaral reads Google SecOps (Chronicle) YARA-L 2.0 rules into ruledex's IR.
// It has its own tolerant lexer and parser: there is no Go YARA-L parser, and the
// public corpus includes machine conversions from Sigma that are valid but unusual.
//
// Reading choices, so pages, counts and neighbors can be explained:
//
//   - Fields are UDM paths without the event variable (`$e.target.process.file.full_path`
//     is field target.process.file.full_path; the Native text keeps the variable).
//     fieldmap's "udm/<category>" and "udm" contexts give them canonical names.
//   - Kinds are what YARA-L means. `=` and `!=` on strings are case-sensitive
//     (transform cased) unless `nocase` follows; a value without letters ("4720")
//     is not marked cased, since case cannot change the test. re.regex and `/re/` are unanchored
//     searches; nocase is the i flag and the pattern is never case-folded. A regex
//     that is a plain literal with optional ^/$ anchors (and leading/trailing .*) is
//     stored as the equivalent eq/starts_with/ends_with/match, so `\\certutil\.exe$`
//     nocase counts with Sigma's `Image|endswith: \certutil.exe`, while the unanchored
//     `.*\\bitsadmin\.exe` of converted rules stays a substring test (match), never
//     ends_with. strings.contains/starts_with/ends_with are match/starts_with/
//     ends_with, cased unless applied to strings.to_lower/to_upper of the field with a
//     value already in that case (a value in the other case can never match: opaque).
//   - `any $e.f ...` adds transform elem; `all` adds elem and sets Pred.All.
//   - UDM has no null (an unset string reads as ""): `!= ""` is is_not_null and
//     `= ""` is is_null.
//   - Reference lists: `f in %list` (and `in regex %list`, `in cidr %list`) are
//     predicates of kind in (regex, cidr) whose one value is the list name with
//     Value.Type rule.ListRef: an opaque marker, since the list's contents live in the
//     SIEM. Each list used is also a Setting "reference list". No warning: the rule is
//     fully understood, only its data is elsewhere.
//   - Placeholders: `$e.f = $x` binds, it does not filter. A placeholder bound to two
//     fields of one event is a fieldref predicate between them; bound in several event
//     variables it is a join, recorded in Correlation.Aliases (placeholder -> event
//     variable -> field). Match variables also filter: Chronicle drops events whose
//     match variables hold the zero value unless `options: allow_zero_values = true`,
//     so each binding of a match variable adds an is_not_null predicate.
//   - Shape. One event variable: Root is the AND of the events section, one stage per
//     top-level statement (a filter that is one top-level or shows its alternatives,
//     numbered by Stage.Alt, as Sigma's do). `match` (group-by over a window) sets GroupBy, Timeframe and
//     a Setting and shows as a pipeline stage "match"; it is not an aggregation on its
//     own (issue 11 §3). A threshold in the condition (`#e > 5`, `#placeholder > 1`,
//     `$outcome > 10`) adds an aggregation stage (count, value_count, outcome). Several
//     event variables: a correlation (temporal, or temporal_ordered when the events
//     section orders event timestamps), one selection stage per variable, a
//     correlation stage with match and condition, and no Root.
//   - outcome: every `$name = expr` is a computed column (Rule.Computed, Outputs) shown
//     as a pipeline stage "outcome"; never a predicate. A constant $risk_score (35 or
//     max(35)) sets RiskScore. ATT&CK ids in string outcome columns named *mitre*/
//     *technique*/*tactic* count as the rule's techniques and tactics.
//   - meta: rule_name (else the rule's name) is the title; rule_id the id; mitre,
//     technique, tactic and mitre_attack_* values give techniques (T1197; T1078/004 in
//     a URL is T1078.004) and tactics (names or TA ids); every other key is kept in Extra.
//   - Log source: metadata.event_type values are EventTypes and, when they agree, the
//     Sigma category (PROCESS_LAUNCH is process_creation...); converted rules that test
//     Windows event ids in metadata.product_event_type get the category of those ids.
//     Product: meta product, else platform, else metadata.product_name/vendor_name.
//     A top-level `$e.metadata.event_type = "X"` whose type gave the category is the
//     rule's log source (as a Sigma logsource or a KQL table): it shows as a stage
//     without a Node and is not a predicate of Root, so rules of other languages can
//     be equivalent. meta sigma_uuid links the Sigma original (related, derived).
//   - Rules under rules/_deprecated/ have status deprecated.
//   - Anything not modeled (arithmetic, timestamp functions, comparisons between
//     computed values) is an opaque node with a located warning; syntax errors are
//     located errors and the rest of the rule still reads.
package yaral
