package engine

import (
	"math/rand"
	"testing"

	"github.com/ruledex/ruledex/event"
)

// TestEventTimeSameAsSlow holds the one-pass EventTime to the reference, a getFold per
// time field in order, on events mixing exact and case-folded names (also through the
// non-ASCII letters that fold to ASCII ones), repeats, empty and unparsable values.
func TestEventTimeSameAsSlow(t *testing.T) {
	names := []string{
		"System_TimeCreated", "system_timecreated", "TimeCreated", "TIMECREATED", "SystemTime",
		"@timestamp", "@TimeStamp", "timestamp", "UtcTime", "utctime", "EventTime", "time", "Time",
		"\u017fystemTime", "Sy\u017ftemTime", "timeſtamp", "TimeCreatedX", "Tim", "Image", "CommandLine",
		"EventID", "Channel", "", "t\u212Ame", "\u017f",
	}
	values := []string{
		"", "2024-01-02T03:04:05.123456Z", "2023-12-31T23:59:59Z", "2020-05-06 07:08:09.5",
		"1700000000", "1700000000123", "not a time", " 2021-01-01T00:00:00Z ", "0001-01-01T00:00:00Z",
	}
	rnd := rand.New(rand.NewSource(13))
	differ := 0
	for n := 0; n < 20000; n++ {
		var ev event.Event
		for k := rnd.Intn(12); k > 0; k-- {
			ev.Add(names[rnd.Intn(len(names))], values[rnd.Intn(len(values))])
		}
		got, gok := EventTime(&ev)
		want, wok := eventTimeSlow(&ev)
		if gok != wok || !got.Equal(want) || got.Location() != want.Location() {
			t.Fatalf("event %v: EventTime = %v, %v; reference %v, %v", ev.Fields, got, gok, want, wok)
		}
		if wok {
			differ++
		}
	}
	if differ < 1000 {
		t.Fatalf("only %d events with a time: the test does not exercise EventTime", differ)
	}
}

// TestEventTimeFoldedNames covers the cases the random test may hit rarely: the exact
// name wins over an earlier folded one, and a name spelt with U+017F (long s) folds.
func TestEventTimeFoldedNames(t *testing.T) {
	var ev event.Event
	ev.Add("timecreated", "2020-01-01T00:00:00Z")
	ev.Add("TimeCreated", "2021-01-01T00:00:00Z")
	if tm, ok := EventTime(&ev); !ok || tm.Year() != 2021 {
		t.Errorf("exact name after a folded one: got %v, %v; want 2021", tm, ok)
	}
	ev.Reset()
	ev.Add("\u017fystemTime", "2022-01-01T00:00:00Z")
	if tm, ok := EventTime(&ev); !ok || tm.Year() != 2022 {
		t.Errorf("SystemTime spelt with U+017F: got %v, %v; want 2022", tm, ok)
	}
}
