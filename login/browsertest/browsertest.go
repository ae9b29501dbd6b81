// Package browsertest gives a test a headless Chromium, driven with
// github.com/chromedp/chromedp.
//
// The browser is the executable that IDP_TEST_CHROMIUM names, else the first
// of chromium, chromium-browser and google-chrome on PATH. Without one, a test
// that calls [New] is skipped on a developer's machine and fails when
// CI=true, so that CI never passes with the browser suite silently skipped.
// `task test:browser` runs the browser tests; by convention their names
// contain "Browser" (go test -run Browser ./...).
//
// Use:
//
//	func TestBrowserLogin(t *testing.T) {
//		ctx := browsertest.New(t)
//		t.Cleanup(func() {
//			if t.Failed() {
//				browsertest.Screenshot(t, ctx, "testdata/failed-login.png")
//			}
//		})
//		if err := chromedp.Do(ctx,
//			chromedp.Navigate(srv.URL+"/login"),
//			chromedp.SendKeys(chromedp.CSS("#phone"), "9105940899"),
//		); err != nil {
//			t.Fatal(err)
//		}
//	}
//
// Every browser is a process of its own with a fresh, temporary user data
// directory (so no cookies or storage carry over between tests), and runs
// headless and without sandbox (CI runs as root).
package browsertest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Timeout bounds the context that [New] and [NewContext] return: every
// action of a test in one browser must be done by then.
const Timeout = 60 * time.Second

// startTimeout bounds the start of the browser process.
const startTimeout = 30 * time.Second

// envChromium names the environment variable with the browser executable.
const envChromium = "IDP_TEST_CHROMIUM"

// candidates are looked up on PATH, in order, when IDP_TEST_CHROMIUM is unset.
var candidates = []string{"chromium", "chromium-browser", "google-chrome"}

// New starts a headless Chromium for the test and returns a chromedp context
// for its first tab. The context ends after [Timeout]; the browser stops and
// its user data directory is removed when the test ends (t.Cleanup).
//
// Without a browser the test is skipped, or fails when CI=true.
func New(t testing.TB) context.Context {
	t.Helper()
	return NewContext(t, context.Background())
}

// NewContext starts another, independent browser: its own process and user
// data directory, so its own cookies, as a second person (or a second device)
// would have. parent may be a context from [New]; the new browser then ends
// no later than parent does, but shares nothing else with it.
//
//	alice := browsertest.New(t)
//	bob := browsertest.NewContext(t, alice)
func NewContext(t testing.TB, parent context.Context) context.Context {
	t.Helper()
	exe := executable(t)

	// Chromium leaves folders in TMPDIR when it is killed; give it one of
	// its own, removed with the browser.
	tmp, err := os.MkdirTemp("", "idp-browsertest-")
	if err != nil {
		t.Fatal("browsertest: ", err)
	}

	var output limitedBuffer
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(parent,
		append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(exe),
			chromedp.Headless,
			chromedp.NoSandbox,
			chromedp.DisableGPU,
			chromedp.NoFirstRun,
			chromedp.Flag("disable-quic", true),
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true),
			chromedp.Flag("disable-dev-shm-usage", true),
			chromedp.WindowSize(1280, 900),
			// No UserDataDir option: chromedp then makes a fresh
			// temporary user data directory for this browser, and
			// removes it (after killing any leftover child process)
			// when the browser stops.
			chromedp.Env("TMPDIR="+tmp),
			chromedp.CombinedOutput(&output),
		)...)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelBrowser() // kills the browser and waits for it
		cancelAlloc()   // waits until its user data directory is removed
		removeAll(tmp)
	})

	// Start the browser now, with a context without deadline: the first Run
	// binds the life of the browser to its context. A failure to start shows
	// here rather than in the test's first action.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(browserCtx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("browsertest: start %s: %v\n%s", exe, err, output.String())
		}
	case <-time.After(startTimeout):
		cancelBrowser()
		t.Fatalf("browsertest: %s did not start within %s\n%s", exe, startTimeout, output.String())
	}

	ctx, cancel := context.WithTimeout(browserCtx, Timeout)
	t.Cleanup(cancel)
	return ctx
}

// Screenshot saves a full-page PNG of the tab of ctx to path (its folder is
// created). Tests call it from t.Cleanup when t.Failed(), to see what the
// browser showed. It works even after ctx's deadline has passed, as long as
// the browser still runs (the browser stops in a cleanup registered by [New],
// which runs after cleanups that the test registers later). A failure to take
// the screenshot is logged, never fatal.
func Screenshot(t testing.TB, ctx context.Context, path string) {
	t.Helper()
	// The deadline of ctx may be what failed the test: take the screenshot
	// with a fresh one, on the same tab.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("browsertest: screenshot %s: %v", path, err)
		return
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Logf("browsertest: screenshot %s: %v", path, err)
			return
		}
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Logf("browsertest: screenshot %s: %v", path, err)
		return
	}
	abs, _ := filepath.Abs(path)
	t.Logf("browsertest: screenshot saved to %s", abs)
}

// executable finds the browser, or skips or fails the test.
func executable(t testing.TB) string {
	t.Helper()
	if exe := os.Getenv(envChromium); exe != "" {
		path, err := exec.LookPath(exe)
		if err != nil {
			t.Fatalf("browsertest: IDP_TEST_CHROMIUM=%s: %v", exe, err)
		}
		return path
	}
	for _, name := range candidates {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("CI=true but no Chromium found (IDP_TEST_CHROMIUM is not set and none of " +
			strings.Join(candidates, ", ") + " is on PATH): .ci/run must install chromium")
	}
	t.Skip("browser suite skipped: no Chromium found; install it (apt-get install chromium) " +
		"or set IDP_TEST_CHROMIUM=/path/to/chromium (task test:browser)")
	return ""
}

// removeAll removes dir, retrying briefly: a child process of the browser can
// still be writing in it just after the browser stops. Failing that, the
// folder is left in TMPDIR; that fails no test.
func removeAll(dir string) {
	for range 20 {
		if os.RemoveAll(dir) == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// limitedBuffer keeps the first 64 KiB of the browser's output, for the
// message when it fails to start.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := 64<<10 - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
