package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/continuums/attest/hack/internal/loadenv"
	"github.com/continuums/attest/webhook/webhooktest"
)

// seqMark stands in a body for the number of each request that posts it (see numbered): a DNS label, so that it
// may be an object's name, beginning with a letter no hexadecimal digest holds (newNumbered counts the marks).
const seqMark = "q0000000"

// numbered is a body whose seqMark occurrences each request replaces by its own number, so that every request
// differs in what every policy reads (its name, an annotation, a container's name): an `attest serve`
// process, whose memo cannot be turned off, then decides each as a Deployment it has not seen.
type numbered struct {
	body  []byte
	marks []int // the offsets of seqMark in body
	next  atomic.Int64
}

func newNumbered(body []byte, want int) (*numbered, error) {
	n := &numbered{body: body}
	for off := 0; ; {
		i := bytes.Index(body[off:], []byte(seqMark))
		if i < 0 {
			break
		}
		n.marks = append(n.marks, off+i)
		off += i + len(seqMark)
	}
	if len(n.marks) != want {
		return nil, fmt.Errorf("the numbered body holds %q %d times, want %d", seqMark, len(n.marks), want)
	}
	return n, nil
}

// fill writes the next request's body into buf (the body's length) and returns it.
func (n *numbered) fill(buf []byte) []byte {
	buf = append(buf[:0], n.body...)
	seq := strconv.AppendInt(nil, 10_000_000+n.next.Add(1)%10_000_000, 10)[1:] // 7 digits
	for _, at := range n.marks {
		copy(buf[at+1:at+len(seqMark)], seq)
	}
	return buf
}

// drive posts body to /validate of s from workers keep-alive clients for d (closed loop: each client sends its next
// request when the answer arrives) and returns the latency percentiles and requests/s, or the first failed
// request's error. With numbered set, each request posts its own numbered body instead.
func drive(s *webhooktest.Served, body []byte, numbered *numbered, workers int, d time.Duration) (result, error) {
	url := s.URL + "/validate"
	if numbered != nil {
		body = numbered.body
	}
	var mu sync.Mutex
	var all []time.Duration
	var failed error
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			mine := make([]time.Duration, 0, 4096)
			own := make([]byte, 0, len(body))
			for time.Now().Before(deadline) {
				posted := body
				if numbered != nil {
					own = numbered.fill(own)
					posted = own
				}
				t0 := time.Now()
				if _, err := loadenv.Post(s.Client, url, posted); err != nil {
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

// numberedMarks is how often numberedReview's body holds seqMark: the object's name and the request's, an
// annotation, and the first container's name (input.containers holds it; not its environment, which policies
// reading input.containers cannot see and whose change is a memo hit for them).
const numberedMarks = 4

// numberedReview is the review of obj (a Deployment) numbered: what every library policy reads differs between two
// of its requests (the name for production-replicas, the annotations for gdpr-annotations and soc2-audit-logging,
// a container's name for the rest), and nothing a policy judges does (the images, and so their verification, stay).
func numberedReview(obj map[string]any) (*numbered, error) {
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var o map[string]any
	if err := json.Unmarshal(raw, &o); err != nil {
		return nil, err
	}
	md, _ := o["metadata"].(map[string]any)
	spec, _ := o["spec"].(map[string]any)
	tmpl, _ := spec["template"].(map[string]any)
	podSpec, _ := tmpl["spec"].(map[string]any)
	containers, _ := podSpec["containers"].([]any)
	if md == nil || len(containers) == 0 {
		return nil, fmt.Errorf("numbered review: not a Deployment with containers")
	}
	md["name"] = seqMark
	annotations, _ := md["annotations"].(map[string]any)
	if annotations == nil {
		annotations = map[string]any{}
		md["annotations"] = annotations
	}
	annotations["loadgen.attest.continuu.ms/seq"] = seqMark
	containers[0].(map[string]any)["name"] = seqMark
	return newNumbered(loadenv.Review("0b1c2d3e", o), numberedMarks)
}

// sameAnswer requires served's answer to a numbered body to be validate's to body: allowed alike, with as many
// warnings (their texts name the objects, which differ).
func sameAnswer(served *webhooktest.Served, nb *numbered, validate *webhooktest.Served, body []byte) error {
	want, err := loadenv.Admit(validate.Client, validate.URL+"/validate", body)
	if err != nil {
		return err
	}
	got, err := loadenv.Admit(served.Client, served.URL+"/validate", nb.fill(nil))
	if err != nil {
		return err
	}
	if got.Allowed != want.Allowed || len(got.Warnings) != len(want.Warnings) {
		return fmt.Errorf("a numbered Deployment is answered allowed %t with %d warnings %q, the validate target's allowed %t with %d %q",
			got.Allowed, len(got.Warnings), got.Warnings, want.Allowed, len(want.Warnings), want.Warnings)
	}
	return nil
}
