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
//     main pipeline reads. Later filters test aggregated rows and stay in their stage.
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
