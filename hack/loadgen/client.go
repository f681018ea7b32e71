package main

import (
	"bufio"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/continuums/attest/webhook/webhooktest"
)

// clientCommand runs loadgen as the client process of the latency runs: the API server is another process than
// the webhook, so the client's TLS, HTTP and garbage are not the webhook's (in one process they share its heap and
// collector, and the client's allocations pace the webhook's collections).
const clientCommand = "client"

// job is one run the parent asks of the client process: workers clients posting the body (or with Numbered each
// request its own numbered body) to url for a duration.
type job struct {
	URL      string        `json:"url"`
	CertDir  string        `json:"certDir"`
	Workers  int           `json:"workers"`
	Duration time.Duration `json:"duration"`
	Numbered bool          `json:"numbered,omitempty"`
}

// jobResult is a run's figures, or why it failed.
type jobResult struct {
	result
	Err string `json:"err,omitempty"`
}

// runClient serves jobs read as JSON lines from stdin, answering each with a jobResult line on stdout; the body
// posted is the file named by bodyPath, or for numbered jobs the numbered body in numberedPath (none when "").
// A client (its keep-alive connections) is kept per server across jobs, as the API server keeps its connections to
// a webhook.
func runClient(bodyPath, numberedPath string) error {
	body, err := os.ReadFile(bodyPath)
	if err != nil {
		return err
	}
	var nb *numbered
	if numberedPath != "" {
		b, err := os.ReadFile(numberedPath)
		if err != nil {
			return err
		}
		if nb, err = newNumbered(b, numberedMarks); err != nil {
			return err
		}
	}
	clients := map[string]*webhooktest.Served{}
	in := bufio.NewScanner(os.Stdin)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var j job
		if err := json.Unmarshal(in.Bytes(), &j); err != nil {
			return fmt.Errorf("job %q: %w", in.Text(), err)
		}
		s, ok := clients[j.URL]
		if !ok {
			pool, err := caPool(j.CertDir)
			if err != nil {
				return err
			}
			s = &webhooktest.Served{URL: j.URL, Client: webhooktest.Client(pool)}
			clients[j.URL] = s
		}
		if j.Numbered && nb == nil {
			return fmt.Errorf("a numbered job, and no numbered body")
		}
		var n *numbered
		if j.Numbered {
			n = nb
		}
		r, err := drive(s, body, n, j.Workers, j.Duration)
		res := jobResult{result: r}
		if err != nil {
			res.Err = err.Error()
		}
		if err := out.Encode(res); err != nil {
			return err
		}
	}
	return in.Err()
}

// clientProcess is the parent's end of a client process.
type clientProcess struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

// startClient starts loadgen itself as the client process, posting body or the numbered body (both written to dir;
// numbered may be nil).
func startClient(dir string, body []byte, numbered *numbered) (*clientProcess, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	bodyPath, numberedPath := filepath.Join(dir, "review.json"), ""
	if err := os.WriteFile(bodyPath, body, 0o600); err != nil {
		return nil, err
	}
	if numbered != nil {
		numberedPath = filepath.Join(dir, "numbered.json")
		if err := os.WriteFile(numberedPath, numbered.body, 0o600); err != nil {
			return nil, err
		}
	}
	cmd, in, out, err := startSelf(exec.Command(self, clientCommand, bodyPath, numberedPath))
	if err != nil {
		return nil, fmt.Errorf("start the client process: %w", err)
	}
	return &clientProcess{cmd: cmd, in: in, out: out}, nil
}

// startSelf starts cmd (loadgen itself in a child's role) with its stderr ours and its stdin and stdout piped.
func startSelf(cmd *exec.Cmd) (*exec.Cmd, io.WriteCloser, *bufio.Scanner, error) {
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, nil, err
	}
	return cmd, in, bufio.NewScanner(out), nil
}

// caPool trusts the CA a webhooktest server wrote to certDir.
func caPool(certDir string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(filepath.Join(certDir, "ca.crt"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no certificate", certDir)
	}
	return pool, nil
}

// drive runs a job in the client process against s (its CA in s.CertDir) and returns its figures.
func (c *clientProcess) drive(s *webhooktest.Served, numbered bool, workers int, d time.Duration) (result, error) {
	line, err := json.Marshal(job{URL: s.URL, CertDir: s.CertDir, Workers: workers, Duration: d, Numbered: numbered})
	if err != nil {
		return result{}, err
	}
	if _, err := c.in.Write(append(line, '\n')); err != nil {
		return result{}, fmt.Errorf("client process: %w", err)
	}
	if !c.out.Scan() {
		if err := c.out.Err(); err != nil {
			return result{}, fmt.Errorf("client process: %w", err)
		}
		return result{}, errors.New("client process: exited")
	}
	var r jobResult
	if err := json.Unmarshal(c.out.Bytes(), &r); err != nil {
		return result{}, fmt.Errorf("client process answered %q: %w", c.out.Text(), err)
	}
	if r.Err != "" {
		return result{}, fmt.Errorf("client process: %s", r.Err)
	}
	return r.result, nil
}

// stop ends the client process (its stdin closes) and waits for it.
func (c *clientProcess) stop() error {
	_ = c.in.Close()
	return c.cmd.Wait()
}
