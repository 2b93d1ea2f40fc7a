// Package kql reads Kusto (KQL) detection rules — Sentinel YAML, raw .kql/.csl/.txt
// files and Markdown write-ups — into ruledex's IR. It carries its own tolerant lexer
// and parser (go/scanner style): no usable Go KQL parser exists, and rules in the wild
// are often not quite valid KQL.
//
// Reading choices, so pages and counts can be explained:
//
//   - One rule per query. Raw files and Markdown fences may hold several queries; a
//     tabular statement ends a query, and a blank line followed by a new table name
//     (or a `let` at the start of a line) starts the next one even without `;`.
//     Sentinel YAML is always one rule. Consecutive queries that are the Defender XDR
//     and Sentinel versions of one another (by heading or comment label, or identical
//     up to Timestamp/TimeGenerated) become one rule with the second in Bodies.
//   - Stages: 0 is the condition (the where clauses of the main pipeline as written,
//     else the query); then one parameter stage for scalar and list lets; one stage per
//     tabular or function let (its filters as Node); then the main pipeline, one stage
//     per operator (consecutive extend/project/sort... collapse). A where that is a
//     negation as a whole is a negated stage, so it shows under Exclusions.
//   - Root is the AND of the event-level filters: the where clauses before the first
//     aggregating operator (summarize, join, union...), plus those of a tabular let the
//     main pipeline reads. Later filters test aggregated rows and stay in their stage,
//     as do all filters of a pipeline that reads a let which aggregates or joins.
//   - Operators mean what the Kusto reference says: the has family is term matching
//     (has, has_any, has_all → rule.Term; hasprefix → TermPrefix; hassuffix →
//     TermSuffix), contains is substring matching (rule.Match); in/in~ are Eq with
//     several values, so they count with ==/=~; ==, !=, in, the _cs variants and
//     matches regex are case-sensitive (rule.TCased), =~, !~, in~ and the unsuffixed
//     string operators are not. A regex gets flag "i" for (?i) or a tolower() field,
//     and its pattern is never case-folded.
//   - Columns made by extend, project (x = f(...)), parse, parse-kv, mv-expand and
//     summarize are listed in Rule.Computed with their definition and stage.
//     Predicates on them stay in their stage; in Root an opaque node stands for them,
//     so Root never passes for the rule's whole logic.
//   - A summarize followed by a filter or a row limit is an aggregation
//     (StageAggregation); one with nothing of the kind after it only groups, stays a
//     pipeline stage with its Aggregation filled in, and leaves the rule an event
//     filter. A tabular let's stage names the operator that makes it join or
//     aggregate (Op "join", "summarize"...), so what reads it has that shape.
//   - Filters of a join, lookup or union operand that reads another Defender XDR
//     (Device*), SecurityEvent or ASIM table than the main pipeline name their columns
//     Table.Column (DeviceFileEvents.FileName), the way CIM names Dataset.field, so the
//     field map reads them in that table: there one column name means different things
//     from table to table. Other tables' columns keep their plain names.
//   - Time windows (Timestamp > ago(7d), between (ago(1d) .. now())) are not
//     predicates: they set the rule's Timeframe when the format gives none.
//   - extend/project-rename of a bare column (x = tolower(FileName)) is an alias:
//     predicates on x are predicates on FileName, case-insensitive after tolower.
//   - Predicates the lowering cannot model (a test against a tabular let, arithmetic)
//     are OpOpaque nodes with a warning; syntax errors are located errors and the parser
//     resynchronizes at the next `|` or statement. Prose pasted into query files is
//     skipped with a warning.
//   - A rule whose tables are all alert or incident tables (SecurityAlert, AlertInfo,
//     *Alerts_CL, SecurityIncident), or that selects a vendor's detection events
//     (EventType == "DetectionSummaryEvent"), is classed vendor-feed.
package kql
