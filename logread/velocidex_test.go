package logread

import (
	"fmt"
	"os"
	"testing"

	"github.com/Velocidex/ordereddict"
	evtx "www.velocidex.com/golang/evtx"
)

// velocidexFields decodes path with velocidex's parser and returns, per record, the
// fields both decoders must agree on: Channel, Computer, Provider_Name, EventRecordID,
// EventID and the string EventData values (velocidex renders hex integers and times as
// numbers and keeps trailing whitespace, so those are left out; it also returns the raw
// bytes of Int32 values, a bug in v0.2.0, so unprintable strings are skipped).
func velocidexFields(t testing.TB, path string) []map[string]string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunks, err := evtx.GetChunks(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, c := range chunks {
		recs, err := c.Parse(0)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			m := map[string]string{}
			d, _ := r.Event.(*ordereddict.Dict)
			var ed *ordereddict.Dict
			if d != nil {
				ev, _ := d.Get("Event")
				ed, _ = ev.(*ordereddict.Dict)
			}
			var sys any
			if ed != nil {
				sys, _ = ed.Get("System")
			}
			sd, _ := sys.(*ordereddict.Dict)
			if sd == nil {
				// velocidex v0.2.0 cannot decode template-less records (forwarded
				// events); a nil map marks the record as not comparable.
				out = append(out, nil)
				continue
			}
			for _, k := range []string{"Channel", "Computer", "EventRecordID"} {
				if v, ok := sd.Get(k); ok {
					m[k] = fmt.Sprint(v)
				}
			}
			if v, ok := sd.Get("EventID"); ok {
				if vd, ok := v.(*ordereddict.Dict); ok {
					v, _ = vd.Get("Value")
				}
				m["EventID"] = fmt.Sprint(v)
			}
			if p, ok := sd.Get("Provider"); ok {
				if pd, ok := p.(*ordereddict.Dict); ok {
					if n, ok := pd.Get("Name"); ok {
						m["Provider_Name"] = fmt.Sprint(n)
					}
				}
			}
			if data, ok := ed.Get("EventData"); ok {
				if dd, ok := data.(*ordereddict.Dict); ok {
					for _, k := range dd.Keys() {
						v, _ := dd.Get(k)
						if s, ok := v.(string); ok && s == trimRight(s) && printable(s) {
							m[k] = s
						}
					}
				}
			}
			out = append(out, m)
		}
	}
	return out
}

func trimRight(s string) string {
	for len(s) > 0 && isSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\r' && c != '\n' && c != '\t' {
			return false
		}
	}
	return true
}

// unbrace drops the braces around a GUID: velocidex renders GUID values bare, where we
// (and Windows) write {...}.
func unbrace(s string) string {
	if len(s) == 38 && s[0] == '{' && s[37] == '}' && isBareGUID([]byte(s[1:37])) {
		return s[1:37]
	}
	return s
}
