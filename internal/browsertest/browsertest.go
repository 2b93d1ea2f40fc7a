// Package browsertest starts Debian's headless Chromium for tests driven with
// chromedp. Without Chromium a test fails, never skips, saying how to install it
// (.ci/run does).
package browsertest

import (
	"context"
	"os/exec"
	"testing"

	"github.com/chromedp/chromedp"
)

// Chromium finds the Chromium executable or fails the test.
func Chromium(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Fatal("chromium not found: install it (apt-get install -y --no-install-recommends chromium) or run bash .ci/run")
	return ""
}

// New starts headless Chromium for one test; it stops when the test ends. The
// returned context has no deadline (a deadline on the first action would bound the
// browser's whole life): callers bound their steps. Chromium's start is tried three
// times: on a loaded machine it sometimes exits before its DevTools endpoint is up
// (seen in CI while other packages' tests ran), which says nothing about the pages.
func New(t testing.TB) context.Context {
	t.Helper()
	exe := Chromium(t)
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var bctx context.Context
		if bctx, err = start(t, exe); err == nil {
			return bctx
		}
		t.Logf("start chromium (attempt %d): %v", attempt+1, err)
	}
	t.Fatalf("start chromium: %v", err)
	return nil
}

func start(t testing.TB, exe string) (context.Context, error) {
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelB := chromedp.NewContext(actx)
	if err := chromedp.Do(bctx); err != nil {
		cancelB()
		cancelA()
		return nil, err
	}
	t.Cleanup(cancelA)
	t.Cleanup(cancelB)
	return bctx, nil
}
