package web

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestPrerender: a server with pre-rendering fills its cache with every rule page in
// the background, so the first request for any rule page is a cache hit; cached pages
// go out gzip-compressed to clients that take it and plain to the rest.
func TestPrerender(t *testing.T) {
	var logs bytes.Buffer
	srv, err := New(Options{Catalog: testCat, Attack: testAtt, Events: testEv, Logger: slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(srv)
	defer ts.Close()
	paths, err := testCat.RulePaths(t.Context())
	if err != nil || len(paths) < 5000 {
		t.Fatalf("%d rule paths, %v", len(paths), err)
	}
	last := RuleURL(paths[len(paths)-1][0], paths[len(paths)-1][1])
	deadline := time.Now().Add(3 * time.Minute)
	for !srv.cache.has(last) {
		if time.Now().After(deadline) {
			t.Fatalf("the last rule page %s was not pre-rendered in time", last)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, p := range []string{seedURL(t), RuleURL(paths[0][0], paths[0][1]), last} {
		req, _ := http.NewRequest("GET", ts.URL+p, nil)
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.Header.Get("X-Ruledex-Cache") != "hit" || resp.Header.Get("Content-Encoding") != "gzip" {
			t.Errorf("%s: first request: cache %q, encoding %q", p, resp.Header.Get("X-Ruledex-Cache"), resp.Header.Get("Content-Encoding"))
			continue
		}
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		unz, _ := io.ReadAll(zr)
		// The same page, asked for without compression.
		req.Header.Set("Accept-Encoding", "identity")
		resp, err = http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		plain, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.Header.Get("Content-Encoding") != "" || !bytes.Equal(plain, unz) || !strings.Contains(string(plain), "</html>") {
			t.Errorf("%s: plain response differs from the gzip one (%d vs %d bytes)", p, len(plain), len(unz))
		}
	}
	srv.Close()
	if !strings.Contains(logs.String(), "rule pages pre-rendered") { // Close has stopped every writer
		t.Errorf("no pre-render log line: %s", logs.String())
	}
}

// syncWriter lets the server's log goroutines share one buffer.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func TestAcceptsGzip(t *testing.T) {
	for _, tt := range []struct {
		h    string
		want bool
	}{{"gzip", true}, {"gzip, deflate, br", true}, {"br;q=1.0, gzip;q=0.8", true}, {"gzip;q=0", false}, {"identity", false}, {"", false}, {"GZIP", true}} {
		r, _ := http.NewRequest("GET", "/", nil)
		r.Header.Set("Accept-Encoding", tt.h)
		if got := acceptsGzip(r); got != tt.want {
			t.Errorf("%q: %v", tt.h, got)
		}
	}
}

// TestCacheOnSecondRequest: a page asked for once is not kept (one-off searches would
// only cost compression and memory); asked again it is cached, and the third request
// is a hit.
func TestCacheOnSecondRequest(t *testing.T) {
	p := "/api/search?q=" + fmt.Sprint(time.Now().UnixNano()) + "+OR+bitsadmin"
	for i, want := range []string{"", "", "hit"} {
		resp, _ := get(t, p)
		if got := resp.Header.Get("X-Ruledex-Cache"); got != want {
			t.Errorf("request %d: cache %q, want %q", i+1, got, want)
		}
	}
}
