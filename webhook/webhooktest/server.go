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
	ports, err := FreePorts(1)
	if err != nil {
		return 0, err
	}
	return ports[0], nil
}

// FreePorts finds n distinct free loopback ports, holding every listener open until all are chosen: ports picked
// one after another can repeat, because the kernel may hand a just-closed port out again.
func FreePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", net.JoinHostPort(Loopback, "0"))
		if err != nil {
			return nil, fmt.Errorf("find a free loopback port: %w", err)
		}
		defer func() { _ = l.Close() }()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Served is a running webhook.Server.
type Served struct {
	// URL is the webhook port's base URL, https://127.0.0.1:<port>.
	URL string
	// MetricsURL is the metrics port's, http://127.0.0.1:<port> ("" when the options disabled it).
	MetricsURL string
	// ProbeURL is the health probe port's, http://127.0.0.1:<port> ("" when the options disabled it).
	ProbeURL string
	// Client trusts the server's CA only, keeps connections alive and uses no proxy.
	Client *http.Client
	// Pool trusts the server's CA, for clients of other TLS settings.
	Pool *x509.CertPool
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

// Serve runs webhook.NewServer(o) on free loopback ports with a fresh certificate (o's Host, Port and CertDir are
// set here, and the metrics and probe addresses unless o sets them; "0" disables either) until the test ends, and
// returns once the webhook port answers HTTP and the probe port's /healthz answers 200; with
// o.CertificatesWritten open it returns once the probe port answers. The cleanup cancels the server's context
// and waits for Start to return.
func Serve(tb testing.TB, o webhook.ServerOptions) *Served {
	tb.Helper()
	dir := tb.TempDir()
	pool, err := WriteServingCert(dir, Loopback)
	if err != nil {
		tb.Fatal(err)
	}
	ports, err := FreePorts(3)
	if err != nil {
		tb.Fatal(err)
	}
	o.Host, o.Port, o.CertDir = Loopback, ports[0], dir
	s := &Served{URL: "https://" + net.JoinHostPort(Loopback, strconv.Itoa(ports[0])), Client: Client(pool), Pool: pool, CertDir: dir}
	s.MetricsURL = plainAddress(&o.MetricsBindAddress, ports[1])
	s.ProbeURL = plainAddress(&o.HealthProbeBindAddress, ports[2])
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
	tb.Cleanup(func() {
		s.Client.CloseIdleConnections()
		cancel()
		<-exited
		if startErr != nil {
			tb.Errorf("webhook server: %v", startErr)
		}
	})
	if err := s.awaitHealthy(exited, o.CertificatesWritten == nil); err != nil {
		tb.Fatal(err)
	}
	return s
}

// plainAddress gives an unset bind address the free loopback port and returns its http:// base URL ("" for "0").
func plainAddress(addr *string, free int) string {
	switch *addr {
	case "0":
		return ""
	case "":
		*addr = net.JoinHostPort(Loopback, strconv.Itoa(free))
	}
	return "http://" + *addr
}

// awaitHealthy polls until the probe port's /healthz answers 200 and, with webhookToo, the webhook port answers
// any HTTP response (it serves only the admission paths), or the server exits, or a generous deadline passes (a
// hung start-up, not a slow one).
func (s *Served) awaitHealthy(exited <-chan struct{}, webhookToo bool) error {
	var urls []string
	if s.ProbeURL != "" {
		urls = append(urls, s.ProbeURL+"/healthz")
	}
	if webhookToo {
		urls = append(urls, s.URL+"/")
	}
	deadline := time.Now().Add(time.Minute)
	var last error
	for _, url := range urls {
		for {
			select {
			case <-exited:
				return errors.New("webhook server exited before serving")
			default:
			}
			resp, err := s.Client.Get(url)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusOK || url == s.URL+"/" {
					break
				}
				err = errors.New(resp.Status)
			}
			last = err
			if time.Now().After(deadline) {
				return fmt.Errorf("webhook server did not become healthy: GET %s: %w", url, last)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}
