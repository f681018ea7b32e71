package webhooktest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/continuums/attest/webhook"
)

// Loopback is the only address the helpers serve on.
const Loopback = "127.0.0.1"

// FreePort finds a free TCP port on loopback by listening on port 0 and closing the listener.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(Loopback, "0"))
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Served is a running webhook.Server.
type Served struct {
	// URL is the server's base URL, https://127.0.0.1:<port>.
	URL string
	// Client trusts the server's CA only, keeps connections alive and uses no proxy.
	Client *http.Client
	// CertDir holds the serving certificate; writing a new one there rotates it.
	CertDir string
}

// Client returns an HTTP/1.1 client that trusts only pool, keeps up to 256 idle connections and never uses a proxy.
func Client(pool *x509.CertPool) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     time.Minute,
	}}
}

// Serve runs webhook.NewServer(o) on a free loopback port with a fresh certificate (o's Host, Port and CertDir are
// set here) until the test ends, and returns once /healthz answers. The cleanup cancels the server's context and
// waits for Start to return.
func Serve(tb testing.TB, o webhook.ServerOptions) *Served {
	tb.Helper()
	dir := tb.TempDir()
	pool, err := WriteServingCert(dir, Loopback)
	if err != nil {
		tb.Fatal(err)
	}
	port, err := FreePort()
	if err != nil {
		tb.Fatal(err)
	}
	o.Host, o.Port, o.CertDir = Loopback, port, dir
	srv, err := webhook.NewServer(o)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var startErr error
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		startErr = srv.Start(ctx)
	}()
	s := &Served{URL: "https://" + net.JoinHostPort(Loopback, strconv.Itoa(port)), Client: Client(pool), CertDir: dir}
	tb.Cleanup(func() {
		s.Client.CloseIdleConnections()
		cancel()
		<-exited
		if startErr != nil {
			tb.Errorf("webhook server: %v", startErr)
		}
	})
	if err := s.awaitHealthy(exited); err != nil {
		tb.Fatal(err)
	}
	return s
}

// awaitHealthy polls /healthz until it answers 200, the server exits, or a generous deadline passes (a hung
// start-up, not a slow one).
func (s *Served) awaitHealthy(exited <-chan struct{}) error {
	deadline := time.Now().Add(time.Minute)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("webhook server exited before serving")
		default:
		}
		resp, err := s.Client.Get(s.URL + "/healthz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = errors.New(resp.Status)
		}
		last = err
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("webhook server did not become healthy: %w", last)
}
