package web

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// FuzzSearch sends arbitrary search text and filters through the search API: the
// answer is a result (200) or a client error (400), never a server error, and always
// JSON in the API's error or result shape.
func FuzzSearch(f *testing.F) {
	for _, seed := range []struct{ q, lang, tech, page string }{
		{"bitsadmin", "", "", ""},
		{"BITS payload downloaded via commandline", "sigma", "", "1"},
		{`"quoted" OR NOT (x`, "", "T1197", ""},
		{"credential dump*", "kusto", "t1003.001", "2"},
		{"NEAR(a b) title:foo ^x", "splunk", "", "999"},
		{"\\bitsadmin.exe /transfer", "", "", "0"},
		{"<script>alert(1)</script>", "cobol", "T99", "-1"},
		{"***", "", "", ""},
	} {
		f.Add(seed.q, seed.lang, seed.tech, seed.page)
	}
	f.Fuzz(func(t *testing.T, q, lang, tech, page string) {
		v := url.Values{}
		v.Set("q", q)
		if lang != "" {
			v.Set("language", lang)
		}
		if tech != "" {
			v.Set("technique", tech)
		}
		if page != "" {
			v.Set("page", page)
		}
		req := httptest.NewRequest(http.MethodGet, "/api/search?"+v.Encode(), nil)
		w := httptest.NewRecorder()
		testSrv.ServeHTTP(w, req)
		switch w.Code {
		case http.StatusOK:
			var res SearchResponse
			if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil {
				t.Fatalf("200 with bad JSON: %v", err)
			}
			if res.Total < len(res.Results) {
				t.Fatalf("total %d < %d results", res.Total, len(res.Results))
			}
		case http.StatusBadRequest:
			var e apiError
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Status != 400 || e.Error == "" {
				t.Fatalf("400 body %q", w.Body.String())
			}
		default:
			t.Fatalf("status %d for %s: %s", w.Code, v.Encode(), w.Body.String())
		}
	})
}
