package workbench

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

//go:embed static
var static embed.FS

// maxBody caps a request body: an input (the webhook logs at most 64 KiB of one) and a policy source.
const maxBody = 4 << 20

// Handler serves the page and its API. It answers only requests addressed to a loopback host (Host header) and,
// when the browser says where a request comes from (Origin), only from the page itself: the page evaluates code,
// and a site the user visits must not reach it through DNS rebinding or a cross-site form.
func (w *Workbench) Handler() http.Handler {
	mux := http.NewServeMux()
	files, _ := fs.Sub(static, "static") // the embedded directory exists: go:embed fails the build otherwise
	mux.Handle("GET /", http.FileServerFS(files))
	mux.HandleFunc("GET /api/state", func(rw http.ResponseWriter, _ *http.Request) {
		writeJSON(rw, http.StatusOK, map[string]any{"records": nonNil(w.Records()), "policies": w.Policies(), "selected": w.Selected()})
	})
	mux.HandleFunc("POST /api/evaluate", func(rw http.ResponseWriter, r *http.Request) {
		var req EvalRequest
		if !readJSON(rw, r, &req) {
			return
		}
		res, err := w.Evaluate(r.Context(), req)
		if err != nil {
			writeError(rw, http.StatusBadRequest, err)
			return
		}
		writeJSON(rw, http.StatusOK, res)
	})
	mux.HandleFunc("POST /api/save", func(rw http.ResponseWriter, r *http.Request) {
		var req SaveRequest
		if !readJSON(rw, r, &req) {
			return
		}
		res, errs, err := w.Save(r.Context(), req)
		switch {
		case errors.Is(err, ErrExists):
			writeError(rw, http.StatusConflict, err)
		case err != nil:
			writeError(rw, http.StatusBadRequest, err)
		case len(errs) > 0:
			writeJSON(rw, http.StatusUnprocessableEntity, map[string]any{"compileErrors": errs})
		default:
			writeJSON(rw, http.StatusOK, res)
		}
	})
	return loopbackOnly(mux)
}

func nonNil(rs []Record) []Record {
	if rs == nil {
		return []Record{}
	}
	return rs
}

// loopbackOnly refuses requests whose Host is not a loopback address or localhost (DNS rebinding: a name the
// attacker controls resolving to 127.0.0.1), and requests whose Origin is not the page's own host, then sets
// headers that keep the page from being framed or loading anything but its own files.
func loopbackOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if !loopbackHost(r.Host) {
			http.Error(rw, "the workbench answers only at 127.0.0.1, [::1] or localhost", http.StatusMisdirectedRequest)
			return
		}
		if o := r.Header.Get("Origin"); o != "" {
			u, err := url.Parse(o)
			if err != nil || u.Scheme != "http" || u.Host != r.Host {
				http.Error(rw, "cross-origin requests are refused", http.StatusForbidden)
				return
			}
		}
		if r.Method == http.MethodPost && r.Header.Get("Content-Type") != "application/json" {
			// A form or a no-cors fetch from another site cannot send this type without a preflight we never answer.
			http.Error(rw, "the API takes application/json", http.StatusUnsupportedMediaType)
			return
		}
		h := rw.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(rw, r)
	})
}

// loopbackHost reports whether a Host header names a loopback address or localhost (with a port or without).
func loopbackHost(host string) bool {
	h, port, err := net.SplitHostPort(host)
	if err != nil {
		h, port = host, ""
	}
	if port != "" {
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return false
		}
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func readJSON(rw http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(rw, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(rw, http.StatusBadRequest, fmt.Errorf("request body: %w", err))
		return false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		writeError(rw, http.StatusBadRequest, fmt.Errorf("request body: one JSON object expected"))
		return false
	}
	return true
}

func writeJSON(rw http.ResponseWriter, code int, v any) {
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(code)
	_ = json.NewEncoder(rw).Encode(v)
}

func writeError(rw http.ResponseWriter, code int, err error) {
	writeJSON(rw, code, map[string]string{"error": err.Error()})
}

// Serve serves the workbench on l until ctx ends.
func (w *Workbench) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{Handler: w.Handler(), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	err := srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		<-done
		return nil
	}
	return err
}
