package e2e

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/continuums/attest/e2e/harness"
)

// create is one Pod create of the load and how it ended.
type create struct {
	name       string
	start, end time.Time
	err        error
}

// TestReplicaKilledUnderLoad runs two ATTEST replicas as the manifests do (both keeping the certificate in the
// Secret) behind one URL, a round-robin TCP proxy standing in for the Service, and creates Pods from 8 clients
// while one replica is killed with SIGKILL. The only creates that fail are those whose webhook call was on a
// connection to the killed replica when it died: they fail closed ("failed calling webhook", failurePolicy Fail),
// within a moment of the kill, no more than the calls in flight, and each succeeds when retried; every create
// before the kill and after that moment succeeds on the surviving replica.
func TestReplicaKilledUnderLoad(t *testing.T) {
	requireLocal(t)
	ctx := context.Background()
	ns := namespace(t, "e2e-replicas")
	replicas := make([]*harness.Attest, 2)
	for i, name := range []string{"a", "b"} {
		r, err := cluster.StartReplica(ctx, harness.ReplicaOptions{Name: name, ManagedCerts: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.Stop)
		replicas[i] = r
	}
	for _, r := range replicas {
		if err := r.WaitReady(ctx, 60*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	// The registered URL now reaches the proxy, which balances over the two replicas; the harness's own ATTEST
	// comes back afterwards.
	cluster.StopAttest()
	proxy, err := harness.StartProxy(net.JoinHostPort("127.0.0.1", strconv.Itoa(cluster.AttestPort)),
		net.JoinHostPort("127.0.0.1", strconv.Itoa(replicas[0].Port)), net.JoinHostPort("127.0.0.1", strconv.Itoa(replicas[1].Port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		proxy.Close()
		for _, r := range replicas {
			r.Stop()
		}
		if err := cluster.StartAttest(ctx); err != nil {
			t.Errorf("restart the harness's ATTEST: %v", err)
			return
		}
		if err := cluster.WaitForWebhook(ctx, privilegedPod("default", "probe")); err != nil {
			t.Errorf("the harness's ATTEST after the test: %v", err)
		}
	})
	if err := cluster.WaitForWebhook(ctx, privilegedPod(ns, "probe")); err != nil {
		t.Fatal(err)
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", cluster.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS = -1 // no client-side rate limit: the clients wait for their answers, nothing else
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const clients = 8
	before, after := 6*time.Second, 12*time.Second
	var (
		mu      sync.Mutex
		creates []create
		stop    atomic.Bool
		n       atomic.Int64
		wg      sync.WaitGroup
	)
	do := func(name string) create {
		c := create{name: name, start: time.Now()}
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: trustedImage}}},
		}
		// A server dry run goes through both webhooks like any create and stores nothing, so the load leaves
		// no Pods behind.
		_, c.err = client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		c.end = time.Now()
		return c
	}
	for range clients {
		wg.Go(func() {
			for !stop.Load() {
				c := do(fmt.Sprintf("load-%d", n.Add(1)))
				mu.Lock()
				creates = append(creates, c)
				mu.Unlock()
			}
		})
	}
	time.Sleep(before)
	// Kill the replica carrying the most connections now.
	stats := proxy.Stats()
	victim := 0
	if stats[1].Active > stats[0].Active {
		victim = 1
	}
	killed := time.Now()
	replicas[victim].Kill()
	t.Logf("killed replica %s (pid %d) with SIGKILL while %d of the API server's connections were open to it (%d to the other)",
		replicas[victim].Name, replicas[victim].PID(), stats[victim].Active, stats[1-victim].Active)
	time.Sleep(after)
	stop.Store(true)
	wg.Wait()

	var failed []create
	okBefore, okAfter := 0, 0
	reasons := map[string]int{}
	for _, c := range creates {
		switch {
		case c.err != nil:
			failed = append(failed, c)
			reasons[reason(c.err)]++
		case c.end.Before(killed):
			okBefore++
		default:
			okAfter++
		}
	}
	var first, last time.Duration
	for i, c := range failed {
		if d := c.end.Sub(killed); i == 0 || d < first {
			first = d
		}
		if d := c.end.Sub(killed); d > last {
			last = d
		}
	}
	var lines []string
	if len(failed) > 0 {
		lines = append(lines, fmt.Sprintf("(answered %s to %s after the kill)", first.Round(time.Millisecond), last.Round(time.Millisecond)))
	}
	for r, k := range reasons {
		lines = append(lines, fmt.Sprintf("%d x %s", k, r))
	}
	sort.Strings(lines)
	t.Logf("%d creates from %d clients in %s: %d before the kill, %d after it, %d failed:\n  %s", len(creates), clients, before+after,
		okBefore, okAfter, len(failed), strings.Join(lines, "\n  "))
	for _, s := range proxy.Stats() {
		t.Logf("proxy backend %s: %d connections, %d dials refused", s.Addr, s.Total, s.Refused)
	}
	if okBefore == 0 || okAfter == 0 {
		t.Fatalf("no load on one side of the kill: %d creates admitted before it, %d after", okBefore, okAfter)
	}
	// At most one webhook call per client is in flight at any moment (the API server calls the mutating and then
	// the validating webhook), so no more creates than clients can have been on the killed replica.
	if len(failed) > clients {
		t.Errorf("%d creates failed; at most %d (one per client) can have been in flight on the killed replica", len(failed), clients)
	}
	for _, c := range failed {
		if !strings.Contains(c.err.Error(), "failed calling webhook") {
			t.Errorf("%s failed other than by a webhook call that did not complete: %v", c.name, c.err)
		}
		if c.start.After(killed.Add(2 * time.Second)) {
			t.Errorf("%s was sent %s after the kill and still failed: %v", c.name, c.start.Sub(killed).Round(time.Millisecond), c.err)
		}
		if c.end.Before(killed) {
			t.Errorf("%s failed before the kill: %v", c.name, c.err)
		}
		// What a controller or a person does with a failed create: send it again. It is admitted now.
		if again := do(c.name); again.err != nil {
			t.Errorf("%s failed again when retried: %v", c.name, again.err)
		}
	}
}

// reason is the part of a failed create's error that says why, without the request's URL and names.
func reason(err error) string {
	s := err.Error()
	if i := strings.Index(s, "failed calling webhook"); i >= 0 {
		s = s[i:]
	}
	if i := strings.LastIndex(s, "\": "); i >= 0 {
		if j := strings.Index(s, "Post \""); j >= 0 && j < i {
			s = s[:j] + "Post …: " + s[i+3:]
		}
	}
	return s
}
