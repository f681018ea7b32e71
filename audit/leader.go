package audit

import (
	"context"
	"errors"
	"log/slog"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// ElectOptions name the Lease and its timing.
type ElectOptions struct {
	Namespace, Name, Identity string
	// LeaseDuration is how long a holder that stopped renewing keeps the Lease (default 15 s); RenewDeadline and
	// RetryPeriod default to 10 s and 2 s, as controller-runtime's.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	Log                                       *slog.Logger
}

// Elect runs lead while this process holds the coordination.k8s.io Lease, campaigning again whenever it loses
// it, until ctx ends; the Lease is released when ctx ends, so another replica takes over at once on a graceful
// stop (within LeaseDuration when a holder dies). Only the audit is elected: every replica keeps serving
// admissions.
func Elect(ctx context.Context, client kubernetes.Interface, o ElectOptions, lead func(ctx context.Context)) error {
	if o.Namespace == "" || o.Name == "" || o.Identity == "" {
		return errors.New("audit: the Lease needs a namespace, a name and an identity")
	}
	if o.LeaseDuration <= 0 {
		o.LeaseDuration = 15 * time.Second
	}
	if o.RenewDeadline <= 0 {
		o.RenewDeadline = 10 * time.Second
	}
	if o.RetryPeriod <= 0 {
		o.RetryPeriod = 2 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: o.Namespace, Name: o.Name},
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: o.Identity},
	}
	for ctx.Err() == nil {
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: lock, LeaseDuration: o.LeaseDuration, RenewDeadline: o.RenewDeadline, RetryPeriod: o.RetryPeriod,
			ReleaseOnCancel: true, Name: o.Name,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(ctx context.Context) {
					o.Log.Info("holding the audit Lease: auditing", "lease", o.Namespace+"/"+o.Name, "identity", o.Identity)
					lead(ctx)
				},
				OnStoppedLeading: func() {
					o.Log.Info("audit Lease released or lost", "lease", o.Namespace+"/"+o.Name, "identity", o.Identity)
				},
				OnNewLeader: func(id string) {
					if id != o.Identity {
						o.Log.Info("another replica audits", "holder", id)
					}
				},
			},
		})
		if err != nil {
			return err
		}
		le.Run(ctx)
	}
	return nil
}
