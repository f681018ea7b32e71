package main

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/continuums/attest/hack/internal/loadenv"
	"github.com/continuums/attest/webhook/webhooktest"
)

// drive posts body to /validate of s from workers keep-alive clients for d (closed loop: each client sends its next
// request when the answer arrives) and returns the latency percentiles and requests/s, or the first failed
// request's error.
func drive(s *webhooktest.Served, body []byte, workers int, d time.Duration) (result, error) {
	url := s.URL + "/validate"
	var mu sync.Mutex
	var all []time.Duration
	var failed error
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			mine := make([]time.Duration, 0, 4096)
			for time.Now().Before(deadline) {
				t0 := time.Now()
				if _, err := loadenv.Post(s.Client, url, body); err != nil {
					mu.Lock()
					failed = cmp.Or(failed, fmt.Errorf("request: %w", err))
					mu.Unlock()
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
	if failed != nil {
		return result{}, failed
	}
	if len(all) == 0 {
		return result{}, fmt.Errorf("no request finished in %s", d)
	}
	slices.Sort(all)
	p := func(q float64) time.Duration { return all[int(q*float64(len(all)-1))] }
	return result{RPS: float64(len(all)) / d.Seconds(), P50: p(0.5), P90: p(0.9), P99: p(0.99), P999: p(0.999), Requests: len(all)}, nil
}

// check sends body once and requires an allowed AdmissionReview.
func check(s *webhooktest.Served, body []byte) error {
	resp, err := loadenv.Admit(s.Client, s.URL+"/validate", body)
	if err != nil {
		return err
	}
	if !resp.Allowed {
		return fmt.Errorf("want an allowed AdmissionReview, got %+v", resp.Result)
	}
	return nil
}
