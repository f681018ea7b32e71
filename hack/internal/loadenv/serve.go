package loadenv

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/continuums/attest/webhook/webhooktest"
)

// Serve is an `attest serve` process on loopback with the Env's config and a fresh serving certificate.
type Serve struct {
	cmd *exec.Cmd
	// PID is the serve process (a cp'd copy of the binary).
	PID int
	// Base is https://127.0.0.1:<port>, the webhook port (the admission paths only).
	Base string
	// MetricsURL is http://127.0.0.1:<port>/metrics and ReadyzURL http://127.0.0.1:<port>/readyz: serve's metrics
	// and probe ports, plain HTTP apart from the webhook port.
	MetricsURL string
	ReadyzURL  string
	// Client trusts the serving certificate only.
	Client *http.Client
	// Pool holds the serving certificate, for more clients; CertDir is where its CA is (ca.crt).
	Pool    *x509.CertPool
	CertDir string
	// LogPath receives serve's stdout and stderr.
	LogPath string
	log     *os.File
}

// StartServe runs bin as `attest serve --config <Env's> <args...>` on three free loopback ports (webhook, metrics,
// probes) and returns once the probe port's /readyz answers 200. It runs
// a copy made by cp, as hack/bench-check.sh does: a binary the linker has just written (or one written in a single
// large write) maps more of itself per page fault than an installed one, up to 20 MiB more RSS.
func (e *Env) StartServe(ctx context.Context, bin string, args ...string) (*Serve, error) {
	certs := filepath.Join(e.Dir, "certs")
	pool, err := webhooktest.WriteServingCert(certs, webhooktest.Loopback)
	if err != nil {
		return nil, err
	}
	free, err := webhooktest.FreePorts(3)
	if err != nil {
		return nil, err
	}
	var ports [3]string
	for i, port := range free {
		ports[i] = webhooktest.Loopback + ":" + strconv.Itoa(port)
	}
	s := &Serve{Pool: pool, CertDir: certs, Client: webhooktest.Client(pool), Base: "https://" + ports[0],
		MetricsURL: "http://" + ports[1] + "/metrics", ReadyzURL: "http://" + ports[2] + "/readyz",
		LogPath: filepath.Join(e.Dir, "serve.log")}
	if s.log, err = os.Create(s.LogPath); err != nil {
		return nil, err
	}
	attest := filepath.Join(e.Dir, "attest")
	if out, err := exec.Command("cp", bin, attest).CombinedOutput(); err != nil {
		_ = s.log.Close()
		return nil, fmt.Errorf("cp %s: %w: %s", bin, err, out)
	}
	_, port, _ := strings.Cut(ports[0], ":")
	s.cmd = exec.CommandContext(ctx, attest, append([]string{"serve", "--host", webhooktest.Loopback, "--port", port,
		"--metrics-bind-address", ports[1], "--health-probe-bind-address", ports[2],
		"--cert-dir", certs, "--config", e.ConfigPath()}, args...)...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		_ = s.log.Close()
		return nil, err
	}
	s.PID = s.cmd.Process.Pid
	if err := AwaitReady(s.Client, s.ReadyzURL, 30*time.Second); err != nil {
		s.Stop()
		return nil, fmt.Errorf("attest serve: %w\n%s", err, s.Log())
	}
	return s, nil
}

// Stop sends SIGTERM and waits for the process; safe twice.
func (s *Serve) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	_ = s.cmd.Wait()
	_ = s.log.Close()
	s.cmd = nil
}

// Log is what serve has written so far.
func (s *Serve) Log() string {
	b, _ := os.ReadFile(s.LogPath)
	return string(b)
}

// Status reads the kB figures of the process's /proc status (VmRSS, VmHWM, RssAnon, RssFile, ...).
func (s *Serve) Status() (map[string]float64, error) { return ProcStatus(s.PID) }

// Scrape reads unlabelled series from the metrics port's /metrics.
func (s *Serve) Scrape(names ...string) (map[string]float64, error) {
	return Scrape(s.Client, s.MetricsURL, names...)
}

// Post sends body to path and returns the response body; a status other than 200 is an error.
func Post(c *http.Client, url string, body []byte) ([]byte, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	out, err := Drain(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("HTTP %d: %s", resp.StatusCode, out)
	}
	return out, err
}

// Admit posts an AdmissionReview and returns its response.
func Admit(c *http.Client, url string, body []byte) (*admissionv1.AdmissionResponse, error) {
	out, err := Post(c, url, body)
	if err != nil {
		return nil, err
	}
	var rv admissionv1.AdmissionReview
	if err := json.Unmarshal(out, &rv); err != nil {
		return nil, fmt.Errorf("want an AdmissionReview, got %s: %w", out, err)
	}
	if rv.Response == nil {
		return nil, fmt.Errorf("AdmissionReview without a response: %s", out)
	}
	return rv.Response, nil
}

// Drain reads and closes r.
func Drain(r io.ReadCloser) ([]byte, error) {
	defer func() { _ = r.Close() }()
	return io.ReadAll(r)
}

// AwaitReady polls url until it answers 200.
func AwaitReady(c *http.Client, url string, d time.Duration) error {
	deadline := time.Now().Add(d)
	var last error
	for time.Now().Before(deadline) {
		resp, err := c.Get(url)
		if err == nil {
			_, _ = Drain(resp.Body)
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s", resp.Status)
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %s: %w", d, last)
}

// ProcStatus reads the kB figures of /proc/<pid>/status.
func ProcStatus(pid int) (map[string]float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	out := map[string]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		fields := strings.Fields(v)
		if !ok || len(fields) != 2 || fields[1] != "kB" {
			continue
		}
		if n, err := strconv.ParseFloat(fields[0], 64); err == nil {
			out[k] = n
		}
	}
	return out, sc.Err()
}

// Scrape reads the named unlabelled series of a Prometheus text exposition.
func Scrape(c *http.Client, url string, names ...string) (map[string]float64, error) {
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	body, err := Drain(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		for _, n := range names {
			if v, ok := strings.CutPrefix(line, n+" "); ok {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					out[n] = f
				}
			}
		}
	}
	return out, nil
}

// MiB prints a kB figure in MiB.
func MiB(kb float64) string { return fmt.Sprintf("%.1f MiB", kb/1024) }

// ProcCPU is the user and system CPU time the process has used, from /proc/<pid>/stat (in clock ticks of
// 10 ms: Linux's USER_HZ is 100).
func ProcCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command name (in parentheses, which may hold spaces): state is the first, utime the
	// 12th and stime the 13th.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fields))
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}
