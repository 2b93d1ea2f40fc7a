package hunt

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math/bits"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ruledex/ruledex/event"
	"github.com/ruledex/ruledex/rule"
)

// Record is one output row: a rule matching an event, or a correlation alert.
type Record struct {
	Rule     *rule.Rule
	Time     time.Time // zero when the event has none
	TimeText string    // the event's time as logged
	Computer string
	Channel  string
	EventID  string
	File     string
	// Fields are the event fields the rule tested (for alerts: the group and figures).
	Fields []event.Field
	// Via names the alternate log source a match came through (Security 4688 for a
	// Sysmon process_creation rule).
	Via string
	// Alert marks a correlation or aggregation alert.
	Alert bool
}

// Output receives records. Encode runs on the workers, concurrently, so that
// formatting (the costly part) uses every core; Write receives the encoded records
// in input order, from one goroutine, and must not keep p (the buffer is reused).
type Output interface {
	Encode(dst []byte, r *Record) []byte
	Write(p []byte) error
	Close() error
}

// Format is an output format.
type Format int

const (
	Text Format = iota
	JSON
	CSV
)

// NewOutput writes records to w as they come.
func NewOutput(w io.Writer, f Format) Output {
	o := &streamOutput{f: f, bw: bufio.NewWriterSize(w, 256<<10)}
	if f == CSV {
		o.bw.WriteString("rule_id,title,level,time,computer,channel,event_id,file,fields\n")
	}
	return o
}

type streamOutput struct {
	f  Format
	bw *bufio.Writer
	// heads holds each rule's JSON head (rule_id, title, level), encoded once: a
	// SigmaHQ rule matches thousands of events, and quoting its title for each was a
	// quarter of the output's bytes to scan.
	heads sync.Map // *rule.Rule -> []byte
}

func (o *streamOutput) Encode(dst []byte, r *Record) []byte {
	if o.f != JSON {
		return encode(dst, o.f, r)
	}
	var head []byte
	if h, ok := o.heads.Load(r.Rule); ok {
		head = h.([]byte)
	} else {
		head = appendJSONHead(nil, r)
		o.heads.Store(r.Rule, head)
	}
	return appendJSONBody(append(dst, head...), r)
}
func (o *streamOutput) Write(p []byte) error {
	_, err := o.bw.Write(p)
	return err
}
func (o *streamOutput) Close() error { return o.bw.Flush() }

func encode(dst []byte, f Format, r *Record) []byte {
	switch f {
	case JSON:
		return appendJSON(dst, r)
	case CSV:
		return appendCSV(dst, r)
	}
	return appendText(dst, r)
}

// NewTimeline collects every record and writes them sorted by time at Close (CSV or
// JSON lines). Unlike NewOutput it holds all matches in memory: a timeline needs them.
func NewTimeline(w io.Writer, f Format) Output {
	return &timeline{f: f, w: w}
}

type timeline struct {
	f    Format
	w    io.Writer
	recs []timed
	seq  int
}

type timed struct {
	t   time.Time
	seq int
	b   []byte
}

func (t *timeline) Encode(dst []byte, r *Record) []byte {
	// A fixed-size prefix carries the time to Write, which only sees bytes.
	var ts [8]byte
	n := r.Time.UnixNano()
	if r.Time.IsZero() {
		n = -1 << 63
	}
	for i := range ts {
		ts[i] = byte(uint64(n) >> (8 * i))
	}
	dst = append(dst, ts[:]...)
	body := encode(nil, t.f, r)
	dst = strconv.AppendInt(dst, int64(len(body)), 10)
	dst = append(dst, ':')
	return append(dst, body...)
}

func (t *timeline) Write(p []byte) error {
	for len(p) > 0 {
		var n uint64
		for i := 0; i < 8; i++ {
			n |= uint64(p[i]) << (8 * i)
		}
		p = p[8:]
		colon := bytes.IndexByte(p, ':')
		size, _ := strconv.Atoi(string(p[:colon]))
		body := bytes.Clone(p[colon+1 : colon+1+size])
		p = p[colon+1+size:]
		tm := time.Time{}
		if int64(n) != -1<<63 {
			tm = time.Unix(0, int64(n)).UTC()
		}
		t.recs = append(t.recs, timed{t: tm, seq: t.seq, b: body})
		t.seq++
	}
	return nil
}

func (t *timeline) Close() error {
	sort.SliceStable(t.recs, func(i, j int) bool { return t.recs[i].t.Before(t.recs[j].t) })
	bw := bufio.NewWriterSize(t.w, 256<<10)
	if t.f == CSV {
		bw.WriteString("rule_id,title,level,time,computer,channel,event_id,file,fields\n")
	}
	for _, r := range t.recs {
		bw.Write(r.b)
	}
	return bw.Flush()
}

func (r *Record) ruleID() string { return r.Rule.ID }

func (r *Record) timeText() string {
	if r.TimeText != "" {
		return r.TimeText
	}
	if !r.Time.IsZero() {
		return r.Time.Format(time.RFC3339Nano)
	}
	return ""
}

// appendJSON writes the record as one JSON object per line with the keys rule_id,
// title, level, time, computer, channel, event_id (a number when it is one), file,
// fields (an object in rule order; a repeated name keeps its first value).
func appendJSON(b []byte, r *Record) []byte {
	return appendJSONBody(appendJSONHead(b, r), r)
}

// appendJSONHead writes the part of a JSON record that depends only on its rule.
func appendJSONHead(b []byte, r *Record) []byte {
	b = append(b, `{"rule_id":`...)
	b = appendJSONString(b, r.ruleID())
	b = append(b, `,"title":`...)
	b = appendJSONString(b, r.Rule.Title)
	b = append(b, `,"level":`...)
	return appendJSONString(b, r.Rule.Severity)
}

// appendJSONBody writes the rest of a JSON record, after appendJSONHead.
func appendJSONBody(b []byte, r *Record) []byte {
	b = append(b, `,"time":`...)
	b = appendJSONString(b, r.timeText())
	b = append(b, `,"computer":`...)
	b = appendJSONString(b, r.Computer)
	b = append(b, `,"channel":`...)
	b = appendJSONString(b, r.Channel)
	b = append(b, `,"event_id":`...)
	if _, err := strconv.Atoi(r.EventID); err == nil {
		b = append(b, r.EventID...)
	} else if r.EventID == "" {
		b = append(b, "null"...)
	} else {
		b = appendJSONString(b, r.EventID)
	}
	b = append(b, `,"file":`...)
	b = appendJSONString(b, r.File)
	b = append(b, `,"fields":{`...)
	for i, f := range r.Fields {
		dup := false
		for _, g := range r.Fields[:i] {
			if g.Name == f.Name {
				dup = true
				break
			}
		}
		if dup {
			continue
		}
		if b[len(b)-1] != '{' {
			b = append(b, ',')
		}
		b = appendJSONString(b, f.Name)
		b = append(b, ':')
		b = appendJSONString(b, f.Value)
	}
	return append(b, "}}\n"...)
}

const hexDigits = "0123456789abcdef"

// jsonPlain marks the bytes appendJSONString copies as they are: printable ASCII but
// '"' and '\\'. One table load per byte instead of four comparisons: values are most
// of the output.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// special8 flags, in the high bit of each byte, the bytes of x that need a look: every
// byte below 0x20, '"', '\\' or non-ASCII is flagged (the usual SWAR tests for a byte
// below n and a zero byte); a byte after a flagged one may be flagged too, never one
// before it, so the lowest flag is at or before the first byte that needs a look.
func special8(x uint64) uint64 {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	below := (x - lo*0x20) &^ x
	quote := x ^ (lo * '"')
	bslash := x ^ (lo * '\\')
	return (below | (quote-lo)&^quote | (bslash-lo)&^bslash | x) & hi
}

// appendJSONString quotes s as encoding/json does without HTML escaping: invalid UTF-8
// becomes U+FFFD, control characters and U+2028/2029 are escaped.
func appendJSONString(b []byte, s string) []byte {
	b = slices.Grow(b, len(s)+2)
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		// Eight plain bytes at a time (long command lines and paths are most of the
		// output), then straight to the first byte that may need a look: Windows paths
		// have a backslash every few bytes, and stepping to it byte by byte was most
		// of this function's time.
		for i+8 <= len(s) {
			m := special8(uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
				uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56)
			if m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if jsonPlain[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&15])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func fieldsText(fs []event.Field) string {
	var sb strings.Builder
	for i, x := range fs {
		if i > 0 {
			sb.WriteString("; ")
		}
		sb.WriteString(x.Name)
		sb.WriteByte('=')
		sb.WriteString(oneLine(x.Value))
	}
	return sb.String()
}

func appendCSV(b []byte, r *Record) []byte {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write([]string{r.ruleID(), r.Rule.Title, r.Rule.Severity, r.timeText(), r.Computer, r.Channel, r.EventID, r.File, fieldsText(r.Fields)})
	w.Flush()
	return append(b, buf.Bytes()...)
}

func appendText(b []byte, r *Record) []byte {
	where := r.Channel
	if r.EventID != "" {
		where += "/" + r.EventID
	}
	if r.Via != "" {
		where += " [native-audit route]"
	}
	return fmt.Appendf(b, "%s  %-8s  %s [%s]\n    %s  %s  %s\n    %s\n", r.timeText(), r.Rule.Severity, oneLine(r.Rule.Title), r.ruleID(),
		r.Computer, where, r.File, fieldsText(r.Fields))
}

// oneLine folds line breaks so a value stays on its output line.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.NewReplacer("\r\n", `\n`, "\n", `\n`, "\r", `\r`).Replace(s)
}

// RuleCount is one line of the per-rule summary.
type RuleCount struct {
	ID      string `json:"rule_id"`
	Title   string `json:"title"`
	Level   string `json:"level"`
	Matches int    `json:"matches"`
}

// Summary is what a hunt did. It marshals as the --json-summary object.
type Summary struct {
	Files        int      `json:"files"`
	Events       int64    `json:"events"`
	Bytes        int64    `json:"bytes"`
	Matches      int      `json:"matches"`
	Alerts       int      `json:"alerts"`
	OutOfRange   int64    `json:"events_outside_time_range"`
	ReadErrors   int      `json:"read_errors"`
	OpenFailures int      `json:"inputs_not_readable"`
	RulesLoaded  int      `json:"rules_loaded"`
	RulesSkipped []string `json:"rules_skipped"`
	Filtered     int      `json:"rules_filtered_out"`
	RuleWarnings []string `json:"rule_warnings"`
	// AbsentFields lists the loaded rules that test fields none of their Sysmon events
	// carries (winevent.AbsentFields): on raw Sysmon logs those tests are never true.
	AbsentFields []string       `json:"rules_testing_absent_fields"`
	Empty        []string       `json:"inputs_without_events"`
	ByLevel      map[string]int `json:"by_level"`
	ByRule       []RuleCount    `json:"by_rule"`
	Seconds      float64        `json:"seconds"`
}

// WriteJSON writes the summary as one indented JSON object.
func (s *Summary) WriteJSON(w io.Writer) error {
	if s.RulesSkipped == nil {
		s.RulesSkipped = []string{}
	}
	if s.Empty == nil {
		s.Empty = []string{}
	}
	if s.RuleWarnings == nil {
		s.RuleWarnings = []string{}
	}
	if s.AbsentFields == nil {
		s.AbsentFields = []string{}
	}
	if s.ByRule == nil {
		s.ByRule = []RuleCount{}
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteTable writes the end-of-hunt summary: totals, matches per level and per rule
// (most matches first), skipped rules and read problems.
func (s *Summary) WriteTable(w io.Writer, verbose bool) {
	d := time.Duration(s.Seconds * float64(time.Second))
	fmt.Fprintf(w, "hunt: %d %s, %d %s, %d %s, %d correlation %s in %s\n", s.Files, plural(s.Files, "file", "files"),
		s.Events, plural(int(min(s.Events, 2)), "event", "events"), s.Matches, plural(s.Matches, "match", "matches"),
		s.Alerts, plural(s.Alerts, "alert", "alerts"), d.Round(time.Millisecond))
	fmt.Fprintf(w, "rules: %d loaded, %d skipped", s.RulesLoaded, len(s.RulesSkipped))
	if s.Filtered > 0 {
		fmt.Fprintf(w, ", %d filtered out", s.Filtered)
	}
	if n := len(s.RuleWarnings); n > 0 {
		fmt.Fprintf(w, ", %d parser %s", n, plural(n, "warning", "warnings"))
		if !verbose {
			fmt.Fprint(w, " (--verbose lists them)")
		}
	}
	if n := len(s.AbsentFields); n > 0 {
		fmt.Fprintf(w, ", %d testing fields their Sysmon events never carry", n)
		if !verbose {
			fmt.Fprint(w, " (--verbose lists them)")
		}
	}
	fmt.Fprintln(w)
	if s.OutOfRange > 0 {
		fmt.Fprintf(w, "time range: %d events outside --from/--to (or without a time)\n", s.OutOfRange)
	}
	if len(s.ByRule) > 0 {
		fmt.Fprintf(w, "\n%-13s %8s\n", "level", "matches")
		for i := len(Levels) - 1; i >= 0; i-- {
			if n := s.ByLevel[Levels[i]]; n > 0 {
				fmt.Fprintf(w, "%-13s %8d\n", Levels[i], n)
			}
		}
		if n := s.ByLevel[""]; n > 0 {
			fmt.Fprintf(w, "%-13s %8d\n", "(no level)", n)
		}
		fmt.Fprintf(w, "\n%8s  %-13s %s\n", "matches", "level", "rule")
		for i, rc := range s.ByRule {
			if i == 30 && !verbose {
				fmt.Fprintf(w, "%8s  %d more rules (--verbose lists all)\n", "...", len(s.ByRule)-30)
				break
			}
			fmt.Fprintf(w, "%8d  %-13s %s [%s]\n", rc.Matches, rc.Level, oneLine(rc.Title), rc.ID)
		}
		fmt.Fprintln(w)
	}
	for i, x := range s.RulesSkipped {
		if i == 20 && !verbose {
			fmt.Fprintf(w, "  ... %d more skipped rules (--verbose lists all)\n", len(s.RulesSkipped)-20)
			break
		}
		fmt.Fprintf(w, "  skipped %s\n", x)
	}
	if verbose {
		for _, x := range s.RuleWarnings {
			fmt.Fprintf(w, "  warning %s\n", x)
		}
		for _, x := range s.AbsentFields {
			fmt.Fprintf(w, "  absent fields %s\n", x)
		}
	}
	for _, e := range s.Empty {
		fmt.Fprintf(w, "warning: %s yielded no events\n", e)
	}
	if s.ReadErrors > 0 || s.OpenFailures > 0 {
		fmt.Fprintf(w, "errors: %d damaged records or values, %d inputs not readable\n", s.ReadErrors, s.OpenFailures)
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
