package browsertest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

const formPage = `<!doctype html>
<html lang="ru"><head><meta charset="utf-8"><title>Форма</title></head>
<body>
<form method="post" action="/submit">
  <label for="name">Имя</label>
  <input id="name" name="name" autocomplete="off">
  <button id="send" type="submit">Отправить</button>
</form>
</body></html>`

// TestBrowserForm: a person fills a field and submits the form; the server
// receives the value. It also checks Screenshot.
func TestBrowserForm(t *testing.T) {
	received := make(chan string, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, formPage)
	})
	mux.HandleFunc("POST /submit", func(w http.ResponseWriter, r *http.Request) {
		select {
		case received <- r.PostFormValue("name"):
		default:
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, `<!doctype html><meta charset="utf-8"><p id="done">Спасибо</p>`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	ctx := New(t)
	t.Cleanup(func() {
		if t.Failed() {
			Screenshot(t, ctx, filepath.Join(t.TempDir(), "failed.png"))
		}
	})

	const name = "Иван Petrov-1"
	if err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/"),
		chromedp.SendKeys(chromedp.ID("name"), name),
		chromedp.Click(chromedp.ID("send")),
		chromedp.WaitVisible(chromedp.ID("done")),
	); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-received:
		if got != name {
			t.Errorf("server received name=%q, want %q", got, name)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the server received no form")
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("done")))
	if err != nil {
		t.Fatal(err)
	}
	if text != "Спасибо" {
		t.Errorf("page shows %q after submit", text)
	}

	path := filepath.Join(t.TempDir(), "shots", "page.png")
	Screenshot(t, ctx, path)
	png, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("%s is not a PNG", path)
	}
}

// TestBrowserTwoBrowsers: NewContext gives a second browser that does not
// share the first one's cookies.
func TestBrowserTwoBrowsers(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /set", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "who", Value: "alice", Path: "/", HttpOnly: true})
		io.WriteString(w, `<!doctype html><p id="out">set</p>`)
	})
	mux.HandleFunc("GET /show", func(w http.ResponseWriter, r *http.Request) {
		who := "nobody"
		if c, err := r.Cookie("who"); err == nil {
			who = c.Value
		}
		fmt.Fprintf(w, `<!doctype html><p id="out">%s</p>`, who)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	alice := New(t)
	bob := NewContext(t, alice)

	show := func(ctx context.Context) string {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/show")); err != nil {
			t.Fatal(err)
		}
		text, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("out")))
		if err != nil {
			t.Fatal(err)
		}
		return text
	}
	if err := chromedp.Do(alice, chromedp.Navigate(srv.URL+"/set")); err != nil {
		t.Fatal(err)
	}
	if got := show(alice); got != "alice" {
		t.Errorf("first browser: cookie shows %q, want alice", got)
	}
	if got := show(bob); got != "nobody" {
		t.Errorf("second browser: cookie shows %q, want nobody (it must not share cookies)", got)
	}
}

// recorder is a testing.TB that records Fatal and Skip instead of acting on
// the real test, so the rules for a missing browser can be tested anywhere.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper()                   { r.TB.Helper() }
func (r *recorder) Fatal(args ...any)         { r.fatal = fmt.Sprint(args...); runtime.Goexit() }
func (r *recorder) Fatalf(f string, a ...any) { r.fatal = fmt.Sprintf(f, a...); runtime.Goexit() }
func (r *recorder) Skip(args ...any)          { r.skip = fmt.Sprint(args...); runtime.Goexit() }
func (r *recorder) Skipf(f string, a ...any)  { r.skip = fmt.Sprintf(f, a...); runtime.Goexit() }

func call(t *testing.T, f func(testing.TB)) *recorder {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r
}

// TestNoBrowser: without a browser a test is skipped, or fails under CI=true;
// a wrong IDP_TEST_CHROMIUM always fails. It starts no browser.
func TestNoBrowser(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv(envChromium, "")

	t.Setenv("CI", "")
	r := call(t, func(tb testing.TB) { New(tb) })
	if r.fatal != "" || !strings.Contains(r.skip, "browser suite skipped") {
		t.Errorf("without CI: fatal %q, skip %q; want a skip", r.fatal, r.skip)
	}

	t.Setenv("CI", "true")
	r = call(t, func(tb testing.TB) { New(tb) })
	if r.skip != "" || !strings.Contains(r.fatal, "CI=true but no Chromium found") {
		t.Errorf("with CI=true: fatal %q, skip %q; want a failure", r.fatal, r.skip)
	}

	t.Setenv("CI", "")
	t.Setenv(envChromium, filepath.Join(t.TempDir(), "no-such-chromium"))
	r = call(t, func(tb testing.TB) { New(tb) })
	if r.skip != "" || !strings.Contains(r.fatal, "IDP_TEST_CHROMIUM=") {
		t.Errorf("with a wrong IDP_TEST_CHROMIUM: fatal %q, skip %q; want a failure", r.fatal, r.skip)
	}
}
