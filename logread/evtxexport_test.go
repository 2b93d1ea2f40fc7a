package logread

import (
	"bytes"
	"encoding/binary"
	"encoding/xml"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ruledex/ruledex/event"
	"github.com/ruledex/ruledex/internal/corpustest"
)

// Differential test against Debian's evtxexport (libevtx-utils), an independent
// decoder: on every EVTX of the corpus the record count and, per record, EventID,
// Channel, Computer, Provider name, EventRecordID and the EventData values agree,
// modulo formatting documented in sameValue.
//
// evtxexport 20181227 (Debian 12) cannot read template-less records: it stops at the
// first one with "invalid binary XML token - unsupported type: 0x05" and exports
// nothing. For such files the reference is the file's own record headers (record
// count and record ids, which need no BinXML decoding); the test says so in its log.

type xEvent struct {
	System struct {
		Provider struct {
			Name string `xml:"Name,attr"`
		}
		EventID       string
		EventRecordID string
		Channel       string
		Computer      string
	}
	EventData struct {
		Data []struct {
			Name  string `xml:"Name,attr"`
			Value string `xml:",chardata"`
		}
	}
}

func evtxexportPath(t *testing.T) string {
	p, err := exec.LookPath("evtxexport")
	if err != nil {
		t.Fatal("evtxexport not found: install Debian's libevtx-utils (.ci/run does: apt-get install -y libevtx-utils); this differential test never skips")
	}
	return p
}

// evtxexportEvents runs evtxexport -f xml and parses its records; ok is false when it
// could not export the file (its stderr is returned).
func evtxexportEvents(t *testing.T, bin, path string) (evs []xEvent, ok bool, stderr string) {
	cmd := exec.Command(bin, "-f", "xml", path)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil || strings.Contains(errb.String(), "Unable to export") {
		return nil, false, errb.String()
	}
	dec := xml.NewDecoder(&out)
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: evtxexport output: %v", path, err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "Event" {
			var e xEvent
			if err := dec.DecodeElement(&e, &se); err != nil {
				t.Fatalf("%s: evtxexport record %d: %v", path, len(evs)+1, err)
			}
			evs = append(evs, e)
		}
	}
	return evs, true, ""
}

// headerRecordIDs lists the record ids of the record headers, chunk by chunk, without
// decoding BinXML.
func headerRecordIDs(t *testing.T, path string) []int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for off := int(binary.LittleEndian.Uint16(b[40:])); off+chunkHdrSize <= len(b); off += chunkSize {
		c := b[off:min(off+chunkSize, len(b))]
		if string(c[:8]) != chunkMagic {
			continue
		}
		free := int(binary.LittleEndian.Uint32(c[48:]))
		for p := chunkHdrSize; p+recordHdrSize <= min(free, len(c)); {
			if !bytes.Equal(c[p:p+4], []byte{0x2a, 0x2a, 0, 0}) {
				break
			}
			size := int(binary.LittleEndian.Uint32(c[p+4:]))
			ids = append(ids, int64(binary.LittleEndian.Uint64(c[p+8:])))
			if size <= 0 {
				break
			}
			p += size
		}
	}
	return ids
}

// sameValue compares a value as we render it with evtxexport's rendering: trailing
// whitespace is not compared (we trim it from string values, as evtx_dump does, but
// not from string arrays); line ends read back from XML are
// LF (XML normalizes CR LF); hex integers are zero-padded by evtxexport (0x00000010)
// and not by us (0x10); times carry nanoseconds there, microseconds here (FILETIME
// values in these logs have none below); GUIDs are lower-case there.
func sameValue(ours, theirs string) bool {
	theirs = strings.TrimRight(theirs, " \t\r\n")
	ours = strings.TrimRight(ours, " \t\r\n")
	ours = strings.ReplaceAll(strings.ReplaceAll(ours, "\r\n", "\n"), "\r", "\n")
	if ours == theirs {
		return true
	}
	if a, err := time.Parse(time.RFC3339Nano, ours); err == nil {
		b, err := time.Parse(time.RFC3339Nano, theirs)
		return err == nil && a.Equal(b)
	}
	if strings.HasPrefix(ours, "0x") && strings.HasPrefix(theirs, "0x") {
		a, e1 := strconv.ParseUint(ours[2:], 16, 64)
		b, e2 := strconv.ParseUint(theirs[2:], 16, 64)
		return e1 == nil && e2 == nil && a == b
	}
	return strings.EqualFold(ours, theirs) && len(ours) == 38 && ours[0] == '{'
}

func sampleEVTX(t *testing.T) []string {
	var out []string
	err := filepath.WalkDir(corpustest.Dir(t), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.EqualFold(filepath.Ext(p), ".evtx") {
			out = append(out, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 100 {
		t.Fatalf("only %d EVTX files in the corpus", len(out))
	}
	return out
}

func TestEvtxexportAgrees(t *testing.T) {
	bin := evtxexportPath(t)
	var files, records, values, fallbackFiles, fallbackRecords int
	for _, path := range sampleEVTX(t) {
		name, _ := filepath.Rel(corpustest.Dir(t), path)
		ours, errs := readAll(t, path)
		for _, e := range errs {
			t.Errorf("%s: %v", name, e)
		}
		files++
		theirs, ok, stderr := evtxexportEvents(t, bin, path)
		if !ok {
			if !strings.Contains(stderr, "unsupported type: 0x05") {
				t.Errorf("%s: evtxexport failed for an unknown reason:\n%s", name, stderr)
				continue
			}
			ids := headerRecordIDs(t, path)
			if len(ids) != len(ours) {
				t.Errorf("%s: %d events, %d record headers", name, len(ours), len(ids))
				continue
			}
			// Forwarded records keep the source's EventRecordID, which differs from
			// the collector's record number in the header: only presence is checked.
			for i := range ids {
				ev := event.Event{Fields: ours[i]}
				for _, n := range []string{"EventID", "Channel", "Computer", "Provider_Name", "EventRecordID"} {
					if v, _ := ev.Get(n); v == "" {
						t.Errorf("%s event %d: no %s", name, i, n)
					}
				}
			}
			fallbackFiles++
			fallbackRecords += len(ids)
			t.Logf("%s: evtxexport cannot read template-less records; checked %d records against their headers", name, len(ids))
			continue
		}
		if len(ours) != len(theirs) {
			t.Errorf("%s: %d events, evtxexport %d", name, len(ours), len(theirs))
			continue
		}
		for i, x := range theirs {
			ev := event.Event{Fields: ours[i]}
			get := func(n string) string {
				if v, ok := ev.Get("System_" + n); ok {
					return v
				}
				v, _ := ev.Get(n)
				return v
			}
			for _, c := range []struct{ name, want string }{
				{"EventID", x.System.EventID}, {"Channel", x.System.Channel}, {"Computer", x.System.Computer},
				{"Provider_Name", x.System.Provider.Name}, {"EventRecordID", x.System.EventRecordID},
			} {
				if got := get(c.name); got != c.want {
					t.Errorf("%s event %d: %s = %q, evtxexport %q", name, i, c.name, got, c.want)
				}
			}
			// Values in order per name: unnamed <Data> repeat under "Data".
			seen := map[string]int{}
			for _, d := range x.EventData.Data {
				n := d.Name
				if n == "" {
					n = "Data"
				}
				k := seen[n]
				seen[n]++
				var got []string
				for _, f := range ours[i] {
					if f.Name == n {
						got = append(got, f.Value)
					}
				}
				if k >= len(got) {
					t.Errorf("%s event %d: EventData %s #%d missing (evtxexport %q)", name, i, n, k, d.Value)
					continue
				}
				if !sameValue(got[k], d.Value) {
					t.Errorf("%s event %d: EventData %s = %q, evtxexport %q", name, i, n, got[k], d.Value)
				}
				values++
			}
			records++
		}
	}
	t.Logf("evtxexport agrees on %d files: %d records, %d EventData values; %d files (%d records) checked against record headers only",
		files, records, values, fallbackFiles, fallbackRecords)
}
