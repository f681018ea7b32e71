package workbench_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestLoopbackOnly: the page evaluates code, so it answers only requests addressed to loopback (DNS rebinding
// sends the attacker's host name) and only from itself (Origin), and the API takes only JSON (a cross-site form
// cannot send it without a preflight).
func TestLoopbackOnly(t *testing.T) {
	dir := t.TempDir()
	wb := newWorkbench(t, dir, nil)
	h := wb.Handler()
	const body = `{"input":{"request":{"Operation":"CREATE","Kind":"Pod"},"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"a","image":"gcr.io/company/a:1"}]}}},"policy":"no-privileged"}`
	cases := []struct {
		name, method, path, host, origin, ctype, body string
		code                                          int
	}{
		{name: "the page at 127.0.0.1", method: "GET", path: "/", host: "127.0.0.1:8123", code: 200},
		{name: "the page at localhost", method: "GET", path: "/", host: "localhost:8123", code: 200},
		{name: "the page at [::1]", method: "GET", path: "/", host: "[::1]:8123", code: 200},
		{name: "a rebound name", method: "GET", path: "/api/state", host: "attacker.example:8123", code: 421},
		{name: "a LAN address", method: "GET", path: "/api/state", host: "192.168.1.20:8123", code: 421},
		{name: "localhost as a subdomain", method: "GET", path: "/api/state", host: "localhost.attacker.example", code: 421},
		{name: "evaluate from the page", method: "POST", path: "/api/evaluate", host: "127.0.0.1:8123", origin: "http://127.0.0.1:8123", ctype: "application/json", body: body, code: 200},
		{name: "evaluate from another site", method: "POST", path: "/api/evaluate", host: "127.0.0.1:8123", origin: "http://attacker.example", ctype: "application/json", body: body, code: 403},
		{name: "evaluate from another port", method: "POST", path: "/api/evaluate", host: "127.0.0.1:8123", origin: "http://127.0.0.1:9999", ctype: "application/json", body: body, code: 403},
		{name: "a form post", method: "POST", path: "/api/evaluate", host: "127.0.0.1:8123", ctype: "application/x-www-form-urlencoded", body: "a=b", code: 415},
		{name: "an unknown field", method: "POST", path: "/api/evaluate", host: "127.0.0.1:8123", ctype: "application/json", body: `{"polcy":"x"}`, code: 400},
		{name: "two objects", method: "POST", path: "/api/evaluate", host: "127.0.0.1:8123", ctype: "application/json", body: body + body, code: 400},
		{name: "save of an unknown policy", method: "POST", path: "/api/save", host: "127.0.0.1:8123", ctype: "application/json", body: `{"policy":"nope","name":"x","input":{"request":{}}}`, code: 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
			r.Host = c.host
			if c.origin != "" {
				r.Header.Set("Origin", c.origin)
			}
			if c.ctype != "" {
				r.Header.Set("Content-Type", c.ctype)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != c.code {
				t.Fatalf("HTTP %d, want %d: %s", rec.Code, c.code, rec.Body)
			}
			if c.code == http.StatusOK && !strings.Contains(rec.Header().Get("Content-Security-Policy"), "default-src 'self'") {
				t.Fatalf("no CSP: %v", rec.Header())
			}
		})
	}
}
