package audit_test

import (
	"context"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/continuums/attest/audit"
)

// TestElectHandsOver: of two replicas only one leads; when it stops, the other takes over.
func TestElectHandsOver(t *testing.T) {
	client := fake.NewClientset()
	var mu sync.Mutex
	leading := map[string]bool{}
	changes := make(chan string, 10)
	start := func(id string) context.CancelFunc {
		ctx, cancel := context.WithCancel(context.Background())
		o := audit.ElectOptions{Namespace: "attest-system", Name: "attest-audit", Identity: id,
			LeaseDuration: time.Second, RenewDeadline: 500 * time.Millisecond, RetryPeriod: 100 * time.Millisecond}
		go func() {
			_ = audit.Elect(ctx, client, o, func(ctx context.Context) {
				mu.Lock()
				leading[id] = true
				mu.Unlock()
				changes <- id
				<-ctx.Done()
				mu.Lock()
				leading[id] = false
				mu.Unlock()
			})
		}()
		return cancel
	}
	stopA := start("a")
	first := <-changes
	if first != "a" {
		t.Fatalf("%s leads first", first)
	}
	stopB := start("b")
	defer stopB()
	time.Sleep(1500 * time.Millisecond) // longer than the lease: b must not take it while a renews
	mu.Lock()
	if leading["b"] {
		t.Fatal("both replicas lead")
	}
	mu.Unlock()
	stopA()
	select {
	case id := <-changes:
		if id != "b" {
			t.Fatalf("%s took over", id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("b did not take over within 5 s of a stopping")
	}
	lease, err := client.CoordinationV1().Leases("attest-system").Get(context.Background(), "attest-audit", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *lease.Spec.HolderIdentity != "b" {
		t.Errorf("the Lease names %s", *lease.Spec.HolderIdentity)
	}
}
