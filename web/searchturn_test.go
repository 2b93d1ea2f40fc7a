package web

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ruledex/ruledex/catalog"
)

// Searches wait for a free core in arrival order, give it back when done (or when
// they fail), and stop waiting when their request goes away.
func TestSearchInTurn(t *testing.T) {
	s := testSrv
	ctx := context.Background()
	sq := catalog.SearchQuery{Text: "bitsadmin", Page: 1, PerPage: 20}
	for range 3 * cap(s.searchGate) {
		if res, err := s.searchInTurn(ctx, sq); err != nil || res.Total == 0 {
			t.Fatalf("search: %v (total %v): a core is not given back", err, res)
		}
	}
	// Every core busy: a search waits, and one whose request is cancelled gives up.
	for range cap(s.searchGate) {
		s.searchGate <- struct{}{}
	}
	waiting, cancel := context.WithCancel(ctx)
	gaveUp := make(chan error, 1)
	go func() {
		_, err := s.searchInTurn(waiting, sq)
		gaveUp <- err
	}()
	done := make(chan error, 1)
	go func() {
		_, err := s.searchInTurn(ctx, sq)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("a search ran while every core was taken (err %v)", err)
	case err := <-gaveUp:
		t.Fatalf("a search ran while every core was taken (err %v)", err)
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled while waiting: %v, want context.Canceled", err)
	}
	<-s.searchGate // one core free again
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for range cap(s.searchGate) - 1 {
		<-s.searchGate
	}
}
