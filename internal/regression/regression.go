// Package regression reads the SigmaHQ regression cases of the shared corpus (a rule
// id, an EVTX and its JSON twin, the expected match count) for tests. It is apart from
// corpustest because it decodes logs, and logread's own tests use corpustest.
package regression

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ruledex/ruledex/event"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/logread"
	"go.yaml.in/yaml/v3"
)

// Case is one SigmaHQ regression test: a rule and an EVTX (with a JSON twin)
// on which it must fire MatchCount times.
type Case struct {
	Dir        string
	RuleID     string
	Title      string
	EVTX       string
	MatchCount int
}

// JSON is the case's evtx_dump-style JSON twin of its EVTX.
func (c Case) JSON() string { return strings.TrimSuffix(c.EVTX, ".evtx") + ".json" }

// Cases reads every info.yml under regression/regression_data.
func Cases(tb testing.TB) []Case {
	tb.Helper()
	root := corpustest.Path(tb, "regression")
	var out []Case
	err := filepath.WalkDir(filepath.Join(root, "regression_data"), func(p string, de os.DirEntry, err error) error {
		if err != nil || de.IsDir() || de.Name() != "info.yml" {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var info struct {
			Meta []struct {
				ID    string `yaml:"id"`
				Title string `yaml:"title"`
			} `yaml:"rule_metadata"`
			Tests []struct {
				Type       string `yaml:"type"`
				Path       string `yaml:"path"`
				MatchCount int    `yaml:"match_count"`
			} `yaml:"regression_tests_info"`
		}
		if err := yaml.Unmarshal(data, &info); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if len(info.Meta) == 0 {
			return fmt.Errorf("%s: no rule_metadata", p)
		}
		for _, t := range info.Tests {
			if t.Type != "evtx" {
				continue
			}
			out = append(out, Case{Dir: filepath.Dir(p), RuleID: info.Meta[0].ID, Title: info.Meta[0].Title,
				EVTX: filepath.Join(root, t.Path), MatchCount: t.MatchCount})
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// ReadEvents decodes a whole log file, copying each event (readers reuse theirs).
func ReadEvents(path string) ([]event.Event, error) {
	r, err := logread.Open(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []event.Event
	var errs []error
	for {
		var ev event.Event
		err := r.Next(&ev)
		if err == io.EOF {
			break
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cp := event.Event{File: ev.File, Offset: ev.Offset, Fields: make([]event.Field, len(ev.Fields))}
		for i, f := range ev.Fields {
			cp.Fields[i] = event.Field{Name: strings.Clone(f.Name), Value: strings.Clone(f.Value)}
		}
		out = append(out, cp)
	}
	return out, errors.Join(errs...)
}
