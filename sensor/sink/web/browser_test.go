package web_test

import (
	"bufio"
	"context"
	"encoding/base64"
	stdjson "encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/oisp/oisp-sensor/sensor/sink/web"
)

// browser returns a headless Chromium, or skips the test.
func browser(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium on this machine: the page is checked under node only")
	return ""
}

// devtools drives a headless Chromium over the DevTools protocol on a
// pipe (--remote-debugging-pipe: NUL-terminated JSON messages on fds 3
// and 4), so the test needs no client library.
type devtools struct {
	t       *testing.T
	in      io.Writer
	out     *bufio.Reader
	id      int
	session string
	// logs are the console and log entries the page produced.
	logs []string
}

func startBrowser(t *testing.T) *devtools {
	chromium := browser(t)
	toBrowser, fromTest, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	fromBrowser, toTest, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	// The profile is removed after the browser has exited, children and
	// all (t.TempDir could be removed while a helper process still
	// writes to it).
	profile, err := os.MkdirTemp("", "oisp-web-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--user-data-dir="+profile, "--remote-debugging-pipe", "about:blank")
	cmd.ExtraFiles = []*os.File{toBrowser, toTest} // fd 3: commands, fd 4: answers
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	toBrowser.Close()
	toTest.Close()
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	// A browser that stops answering is killed, which ends the test's
	// reads instead of hanging it.
	watchdog := time.AfterFunc(5*patience, cancel)
	t.Cleanup(func() {
		watchdog.Stop()
		// Browser.close shuts every browser process down; killing only
		// the main one would leave its helpers running.
		fromTest.Write([]byte(`{"id":999999,"method":"Browser.close"}` + "\x00"))
		select {
		case <-exited:
		case <-time.After(patience):
			cancel()
			<-exited
		}
		cancel()
		fromTest.Close()
		fromBrowser.Close()
		for i := 0; i < 50; i++ {
			if os.RemoveAll(profile) == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	return &devtools{t: t, in: fromTest, out: bufio.NewReader(fromBrowser)}
}

// call sends a command and returns its result, keeping the events that
// arrive meanwhile.
func (d *devtools) call(method string, params map[string]any) map[string]any {
	d.t.Helper()
	d.id++
	msg := map[string]any{"id": d.id, "method": method, "params": params}
	if d.session != "" && !strings.HasPrefix(method, "Target.") {
		msg["sessionId"] = d.session
	}
	b, _ := stdjson.Marshal(msg)
	if _, err := d.in.Write(append(b, 0)); err != nil {
		d.t.Fatalf("devtools %s: %v", method, err)
	}
	for {
		raw, err := d.out.ReadBytes(0)
		if err != nil {
			d.t.Fatalf("devtools %s: %v", method, err)
		}
		var m struct {
			ID     int            `json:"id"`
			Method string         `json:"method"`
			Params map[string]any `json:"params"`
			Result map[string]any `json:"result"`
			Error  map[string]any `json:"error"`
		}
		if err := stdjson.Unmarshal(raw[:len(raw)-1], &m); err != nil {
			d.t.Fatalf("devtools: %v: %s", err, raw)
		}
		switch m.Method {
		case "Log.entryAdded":
			d.logs = append(d.logs, fmt.Sprint(m.Params["entry"]))
		case "Runtime.consoleAPICalled", "Runtime.exceptionThrown":
			d.logs = append(d.logs, fmt.Sprint(m.Params))
		}
		if m.ID == d.id {
			if m.Error != nil {
				d.t.Fatalf("devtools %s: %v", method, m.Error)
			}
			return m.Result
		}
	}
}

// eval runs expression in the page (awaiting a promise) and returns its
// value.
func (d *devtools) eval(expression string) any {
	d.t.Helper()
	r := d.call("Runtime.evaluate", map[string]any{"expression": expression, "awaitPromise": true, "returnByValue": true})
	if ex, ok := r["exceptionDetails"]; ok {
		d.t.Fatalf("page: %s: %v", expression, ex)
	}
	return r["result"].(map[string]any)["value"]
}

// waitPage polls a condition in the page until it is true.
func (d *devtools) waitPage(what, cond string) {
	d.t.Helper()
	deadline := time.Now().Add(patience)
	for d.eval("!!("+cond+")") != true {
		if time.Now().After(deadline) {
			d.t.Fatalf("timed out waiting for %s in the page:\n%.4000s", what, d.eval("document.body.innerText"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPageInBrowser loads the dashboard in headless Chromium with real and
// hostile events recorded: the exchanges become rows, a click opens one,
// the hostile text is shown as text and makes no element, the counters
// fill in, new events arrive live, and the browser logs no CSP violation
// or script error.
func TestPageInBrowser(t *testing.T) {
	srv, _ := start(t, web.Config{})
	for _, ev := range hostileInteraction() {
		srv.Record(ev)
	}
	replayFixtures(t, srv, fixtures...)

	d := startBrowser(t)
	targets := d.call("Target.getTargets", nil)["targetInfos"].([]any)
	var page string
	for _, ti := range targets {
		if m := ti.(map[string]any); m["type"] == "page" {
			page = m["targetId"].(string)
		}
	}
	if page == "" {
		t.Fatalf("no page target: %v", targets)
	}
	d.session = d.call("Target.attachToTarget", map[string]any{"targetId": page, "flatten": true})["sessionId"].(string)
	d.call("Log.enable", nil)
	d.call("Runtime.enable", nil)
	d.call("Page.enable", nil)
	d.call("Page.navigate", map[string]any{"url": srv.URL()})

	d.waitPage("the exchanges", `document.querySelectorAll('#ai-rows tr.row').length >= 7`)
	d.waitPage("the counters", `document.querySelectorAll('#counters .counter').length > 5`)
	d.waitPage("the live state", `document.getElementById('conn').className === 'conn live'`)
	// Open the hostile exchange (the oldest, last row).
	d.eval(`(() => { const rows = document.querySelectorAll('#ai-rows tr.row'); rows[rows.length - 1].click(); })()`)
	d.waitPage("the opened exchange", `document.querySelector('#ai-rows tr.detail')`)
	text := d.eval(`document.getElementById('ai-rows').innerText`).(string)
	if strings.Count(text, hostile) < 3 {
		t.Errorf("the hostile text is shown %d times as text, want it in the row, the messages and the JSON:\n%.3000s", strings.Count(text, hostile), text)
	}
	if n := d.eval(`document.querySelectorAll('main img, main script, main svg, main [onerror], main [onload]').length`); n != float64(0) {
		t.Errorf("the hostile text made %v elements", n)
	}
	if d.eval(`typeof window.alert === 'function' && document.title`) != "OISP sensor — live" {
		t.Error("the page's title changed")
	}

	// A new exchange arrives live, and the filters narrow the table.
	more := interaction(2, "a live question")
	for _, ev := range more {
		srv.Record(ev)
	}
	d.waitPage("the live exchange", `document.querySelectorAll('#ai-rows tr.row').length === 8 && document.getElementById('ai-rows').innerText.includes('agent (4002)')`)
	d.eval(`(() => { const f = document.getElementById('f-text'); f.value = 'a live question'; f.dispatchEvent(new Event('input')); })()`)
	d.waitPage("the text filter", `document.querySelectorAll('#ai-rows tr.row').length === 1`)
	d.eval(`document.getElementById('tab-system').click()`)
	d.waitPage("the system view", `document.querySelectorAll('#system-rows tr.row').length === 0 && !document.getElementById('system-table').classList.contains('hidden')`)
	d.eval(`(() => { const f = document.getElementById('f-text'); f.value = ''; f.dispatchEvent(new Event('input')); })()`)
	d.waitPage("the system events", `document.querySelectorAll('#system-rows tr.row').length === 4`)

	// Paused, the view holds still while events wait; resumed, they show.
	d.eval(`document.getElementById('tab-ai').click()`)
	d.waitPage("the AI view", `document.querySelectorAll('#ai-rows tr.row').length === 8`)
	d.eval(`document.getElementById('pause').click()`)
	for _, ev := range interaction(3, "while paused") {
		srv.Record(ev)
	}
	d.waitPage("the paused count", `document.getElementById('pending').textContent === '3 new while paused'`)
	if n := d.eval(`document.querySelectorAll('#ai-rows tr.row').length`); n != float64(8) {
		t.Errorf("paused, the table has %v rows, want still 8", n)
	}
	d.eval(`document.getElementById('pause').click()`)
	d.waitPage("the resumed view", `document.querySelectorAll('#ai-rows tr.row').length === 9 && document.getElementById('pending').textContent === ''`)

	if path := os.Getenv("OISP_WEB_SCREENSHOT"); path != "" {
		// A look at the page for a person: wide, the hostile exchange open.
		d.call("Emulation.setDeviceMetricsOverride", map[string]any{"width": 1400, "height": 1000, "deviceScaleFactor": 1, "mobile": false})
		d.waitPage("the opened exchange", `document.querySelector('#ai-rows tr.detail')`)
		shot := d.call("Page.captureScreenshot", map[string]any{"format": "png"})["data"].(string)
		png, _ := base64.StdEncoding.DecodeString(shot)
		os.WriteFile(path, png, 0o644)
	}
	for _, l := range d.logs {
		if strings.Contains(l, "Content Security Policy") || strings.Contains(l, "Refused") || strings.Contains(l, "exception") || strings.Contains(l, "error") {
			t.Errorf("the browser logged: %s", l)
		}
	}
}
