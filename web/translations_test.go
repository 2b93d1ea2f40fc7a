package web

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/fieldmap"
	"github.com/ruledex/ruledex/ingest"
	"github.com/ruledex/ruledex/lang/elastic"
	"github.com/ruledex/ruledex/lang/kql"
	"github.com/ruledex/ruledex/lang/sigma"
	"github.com/ruledex/ruledex/lang/spl"
	"github.com/ruledex/ruledex/lang/yaral"
	"github.com/ruledex/ruledex/page"
	"github.com/ruledex/ruledex/rule"
	"github.com/ruledex/ruledex/translate"
)

// testTranslator is what the CLI gives the server: translations verified with the
// real parsers.
func testTranslator(r *rule.Rule) []page.Translation {
	read := func(lang rule.Language, name string, data []byte) ([]*rule.Rule, error) {
		for _, p := range []ingest.Parser{sigma.Parser{}, kql.Parser{}, &spl.Parser{}, elastic.Parser{}, yaral.Parser{}} {
			if p.Language() == lang && p.Detect(name, data) {
				rs, _ := p.Parse(rule.Source{Path: name}, data)
				return rs, nil
			}
		}
		return nil, errors.New("no parser")
	}
	return page.Translations(r, translate.All(fieldmap.Default(), r, read))
}

// TestTranslationsSection: the seed rule's page shows it in every other language, each
// query escaped, with a copy button, and the API carries the same translations.
func TestTranslationsSection(t *testing.T) {
	dir := t.TempDir()
	cat, err := catalog.Open(filepath.Join(dir, "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	seedDir := filepath.Join(corpusDir, "sigma", "mdecrevoisier", "windows-bits")
	if _, err := ingest.Run(context.Background(), cat, []string{seedDir}, ingest.Options{Parsers: testParsers()}); err != nil {
		t.Fatal(err)
	}
	srv, err := New(Options{Catalog: cat, Attack: testAtt, Events: testEv, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		NoPrerender: true, Translate: testTranslator})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(srv)
	defer ts.Close()
	r, err := cat.RuleByRef(context.Background(), "BITS payload downloaded via commandline")
	if err != nil {
		t.Fatal(err)
	}
	_, body := getFrom(t, ts, page.RuleURL(r.Language, r.ID))
	for _, want := range []string{
		`id="translations"`,
		`<button type="button" class="copy" data-copy="tr-kql">Copy</button>`,
		`| where FileName =~ &#34;bitsadmin.exe&#34;`,
		`process.name : &#34;bitsadmin.exe&#34;`,
		"re.regex($e.target.process.file.full_path, `\\\\bitsadmin\\.exe$`) nocase",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("rule page lacks %s", want)
		}
	}
	if probs := markupProblems(body); len(probs) > 0 {
		t.Errorf("markup: %v", probs)
	}
	_, api := getFrom(t, ts, "/api"+strings.TrimSuffix(page.RuleURL(r.Language, r.ID), "/"))
	if !strings.Contains(api, `"translations":[`) || !strings.Contains(api, `"target":"yaral"`) {
		t.Errorf("API lacks the translations: %.300s", api)
	}
}
