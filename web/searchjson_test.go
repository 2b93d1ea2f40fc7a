package web

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/ruledex/ruledex/catalog"
)

// TestSearchJSONMatchesEncodingJSON: the search API's own encoder writes exactly what
// encoding/json writes, for real searches and for hostile strings.
func TestSearchJSONMatchesEncodingJSON(t *testing.T) {
	var responses []*SearchResponse
	for _, q := range []string{"", "q=bitsadmin", "q=powershell+OR+cmd&language=kusto&page=2", "q=%22scheduled+task%22", "q=zzzznothing", "q=alert&class=vendor-feed"} {
		r := httptest.NewRequest("GET", "/api/search?"+q, nil)
		resp, _, err := testSrv.search(r)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		responses = append(responses, resp)
	}
	hostile := "<script>&\"\\\x00\x01\b\f\n\r\t\x7f é \u2028\u2029 \xff\xfe end"
	responses = append(responses, &SearchResponse{Query: hostile, Filters: map[string]string{"b": hostile, "a": ""},
		Results: []SearchHit{{SearchHit: catalog.SearchHit{ID: hostile, Title: hostile, Snippet: hostile, Marked: hostile}, URL: hostile}},
		Facets:  map[string][]catalog.FacetValue{"z": nil, "field": {{Value: hostile, Count: -3}}}},
		&SearchResponse{})
	// The same hit again with another title and snippet (a catalog change that kept the
	// rule's URL): the hit cache must not answer with the old encoding.
	if len(responses[1].Results) == 0 {
		t.Fatal("no hit for bitsadmin")
	}
	changed := *responses[1]
	changed.Results = slices.Clone(changed.Results)
	changed.Results[0].Title += " (renamed) <b>"
	changed.Results[0].Snippet = ""
	changed.Results[1].Snippet = "other " + hostile
	responses = append(responses, &changed)
	check := func(pass string) {
		for i, r := range responses {
			want, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.appendJSON(nil); !bytes.Equal(got, want) {
				n := 0
				for n < min(len(got), len(want)) && got[n] == want[n] {
					n++
				}
				t.Errorf("%s: response %d differs at byte %d:\n got %.200q\nwant %.200q", pass, i, n, got[n:], want[n:])
			}
		}
	}
	// Each response without the hit cache, with an empty one, then again from it.
	cache := &hitJSONCache{}
	for _, r := range responses {
		r.hitJSON = nil
	}
	check("no cache")
	for _, r := range responses {
		r.hitJSON = cache
	}
	check("cache filled")
	if cache.n.Load() == 0 {
		t.Fatal("the hit cache holds nothing")
	}
	check("from the cache")
}
