package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/continuums/attest/webhook/webhooktest"
)

// drive posts body to /validate of s from workers keep-alive clients for d (closed loop: each client sends its next
// request when the answer arrives) and returns the latency percentiles and requests/s.
func drive(s *webhooktest.Served, body []byte, workers int, d time.Duration) result {
	url := s.URL + "/validate"
	var mu sync.Mutex
	var all []time.Duration
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			mine := make([]time.Duration, 0, 4096)
			for time.Now().Before(deadline) {
				t0 := time.Now()
				if _, err := post(s.Client, url, body); err != nil {
					fmt.Println("request:", err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(all) == 0 {
		return result{}
	}
	slices.Sort(all)
	p := func(q float64) time.Duration { return all[int(q*float64(len(all)-1))] }
	return result{rps: float64(len(all)) / d.Seconds(), p50: p(0.5), p90: p(0.9), p99: p(0.99), p999: p(0.999), requests: len(all)}
}

func post(c *http.Client, url string, body []byte) ([]byte, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	out, err := drain(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("HTTP %d: %s", resp.StatusCode, out)
	}
	return out, err
}

func drain(r io.ReadCloser) ([]byte, error) {
	defer func() { _ = r.Close() }()
	return io.ReadAll(r)
}

// check sends body once and requires an allowed AdmissionReview.
func check(s *webhooktest.Served, body []byte) error {
	out, err := post(s.Client, s.URL+"/validate", body)
	if err != nil {
		return err
	}
	var rv admissionv1.AdmissionReview
	if err := json.Unmarshal(out, &rv); err != nil {
		return fmt.Errorf("want an AdmissionReview, got %s: %w", out, err)
	}
	if rv.Response == nil || !rv.Response.Allowed {
		return fmt.Errorf("want an allowed AdmissionReview, got %s", out)
	}
	return nil
}
