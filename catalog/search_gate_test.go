package catalog_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/ruledex/ruledex/catalog"
	"github.com/ruledex/ruledex/ingest"
	"github.com/ruledex/ruledex/lang/kql"
)

// TestSearchInTurn: a search holds one slot of the catalog's gate from start to end,
// SQLite fallback included (no second slot taken, so no search waits on itself when
// the others are busy), gives it back, waits while every slot is taken, and gives up
// when its request is cancelled.
func TestSearchInTurn(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	files := kqlFiles(t, 300)
	cat, err := catalog.Open(filepath.Join(dir, "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	if _, err := ingest.Run(ctx, cat, files, ingest.Options{Parsers: []ingest.Parser{kql.Parser{}}}); err != nil {
		t.Fatal(err)
	}
	search := func(ctx context.Context, text string) (*catalog.SearchResult, error) {
		return cat.Search(ctx, catalog.SearchQuery{Text: text, Page: 1, PerPage: 20})
	}

	// Every slot but one taken: a first search of a word (ranked in SQLite, the documents
	// read there) still runs, on the one slot.
	n, free := catalog.TakeSearchSlots(cat, -1)
	free()
	_, freeAllButOne := catalog.TakeSearchSlots(cat, n-1)
	done := make(chan error, 1)
	go func() {
		res, err := search(ctx, "process")
		if err == nil && res.Total == 0 {
			err = errors.New("no hit for process")
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a search with one slot free did not finish: it waits for a second slot")
	}
	freeAllButOne()
	for range 3 * n {
		if res, err := search(ctx, "process"); err != nil || res.Total == 0 {
			t.Fatalf("search: %v (total %v): a slot is not given back", err, res)
		}
	}

	// Every slot taken: a search waits, and one whose request is cancelled gives up.
	_, freeAll := catalog.TakeSearchSlots(cat, -1)
	waiting, cancel := context.WithCancel(ctx)
	gaveUp := make(chan error, 1)
	go func() {
		_, err := search(waiting, "process")
		gaveUp <- err
	}()
	go func() {
		_, err := search(ctx, "process")
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("a search ran while every slot was taken (err %v)", err)
	case err := <-gaveUp:
		t.Fatalf("a search ran while every slot was taken (err %v)", err)
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled while waiting: %v, want context.Canceled", err)
	}
	freeAll()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
