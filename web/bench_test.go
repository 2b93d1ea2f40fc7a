package web

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// benchQueries are searches a detection engineer types.
var benchQueries = []string{"bitsadmin", "powershell", "mimikatz", "lsass", "rundll32", "certutil", "schtasks",
	"encoded command", "credential dump*", "T1059", "scheduled task", "lateral movement", "CommandLine"}

// serveDirect calls the handler without a network round trip; uncached adds a unique
// parameter so the page cache cannot answer.
func serveDirect(b *testing.B, path string) {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	w := httptest.NewRecorder()
	testSrv.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		b.Fatalf("%s: status %d", path, w.Code)
	}
}

func BenchmarkSearchAPIUncached(b *testing.B) {
	for i := 0; b.Loop(); i++ {
		serveDirect(b, fmt.Sprintf("/api/search?q=%s&uncached=%d", url.QueryEscape(benchQueries[i%len(benchQueries)]), i))
	}
}

func BenchmarkBrowseUncached(b *testing.B) {
	for i := 0; b.Loop(); i++ {
		serveDirect(b, fmt.Sprintf("/api/search?uncached=%d", i))
	}
}

func BenchmarkRulePageUncached(b *testing.B) {
	var res SearchResponse
	getJSON(&testing.T{}, "/api/search?per_page=200", &res)
	for i := 0; b.Loop(); i++ {
		serveDirect(b, fmt.Sprintf("%s?uncached=%d", res.Results[i%len(res.Results)].URL, i))
	}
}

func BenchmarkRulePageCached(b *testing.B) {
	var res SearchResponse
	getJSON(&testing.T{}, "/api/search?per_page=200", &res)
	for i := 0; b.Loop(); i++ {
		serveDirect(b, res.Results[i%len(res.Results)].URL)
	}
}

// BenchmarkSearchCold: a different two-word search each time, so neither the page cache
// nor the ranking cache can answer (the cold path of bench/webload -cold).
func BenchmarkSearchCold(b *testing.B) {
	n := len(benchQueries)
	for i := 0; b.Loop(); i++ {
		a, c := benchQueries[i%n], benchQueries[(i/n+1+i)%n]
		serveDirect(b, fmt.Sprintf("/api/search?q=%s&page=%d", url.QueryEscape(a+" OR "+c), i/(n*n)+1))
	}
}
