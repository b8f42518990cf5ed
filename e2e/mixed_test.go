package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/regent-k8s/regent/e2e/controlplane"
	"github.com/regent-k8s/regent/leader"
	"github.com/regent-k8s/regent/lock"
)

// runClientGo runs a client-go leaderelection candidate on the Lease until ctx ends. Each time it
// leads it works for hold and then gives up: its term ends when the work stops (recorded before
// client-go releases), so the recorded interval covers everything it did as leader. It then
// steps aside for rest before campaigning again.
func runClientGo(ctx context.Context, t *testing.T, client kubernetes.Interface, ns, name, id string, hold, rest time.Duration, rec *terms, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			rctx, cancel := context.WithCancel(ctx)
			le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
				Lock: &resourcelock.LeaseLock{
					LeaseMeta:  metav1.ObjectMeta{Namespace: ns, Name: name},
					Client:     client.CoordinationV1(),
					LockConfig: resourcelock.ResourceLockConfig{Identity: id},
				},
				LeaseDuration:   fast.LeaseDuration,
				RenewDeadline:   fast.RenewDeadline,
				RetryPeriod:     fast.RetryPeriod,
				ReleaseOnCancel: true,
				Callbacks: leaderelection.LeaderCallbacks{
					OnStartedLeading: func(lctx context.Context) {
						rec.begin(id, lock.Token{})
						select {
						case <-time.After(hold):
						case <-lctx.Done():
						}
						rec.finish(id)
						cancel()
					},
					OnStoppedLeading: func() {},
				},
			})
			if err != nil {
				t.Error(err)
				cancel()
				return
			}
			le.Run(rctx)
			cancel()
			select {
			case <-time.After(rest):
			case <-ctx.Done():
			}
		}
	}()
}

// 5. A mixed fleet: client-go and regent candidates on one Lease never lead at once, and both lead.
func TestMixedFleetWithClientGo(t *testing.T) {
	ns := namespace(t)
	const lockName = "mixed"
	ctx, cancel := context.WithCancel(context.Background())
	rec := newTerms()
	var wg sync.WaitGroup
	for i := range 2 {
		c := newCandidate(t, controlplane.AdminUser, ns, lockName, fmt.Sprintf("regent-%d", i), fast)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				_ = c.election.RunAsLeader(ctx, func(wctx context.Context) error {
					token, _ := leader.TokenFrom(wctx)
					rec.begin(c.name, token)
					defer rec.finish(c.name)
					select {
					case <-time.After(300 * time.Millisecond):
					case <-wctx.Done():
					}
					return nil
				})
				// Step aside for a while: regent takes a released Lease on its watch event, so
				// without a pause the polling client-go candidates would never get a turn.
				select {
				case <-time.After(time.Second):
				case <-ctx.Done():
				}
			}
		}()
	}
	// A regent waiter cannot tell client-go's release of its own record from its release of
	// another holder's, which client-go also writes (docs/design.md), so it takes the free record
	// only once the record it replaced would have expired. client-go candidates step aside for
	// longer than that, or they would always come first.
	for i := range 2 {
		runClientGo(ctx, t, cp.Client(controlplane.AdminUser), ns, lockName, fmt.Sprintf("client-go-%d", i), 300*time.Millisecond, fast.LeaseDuration+time.Second, rec, &wg)
	}
	seen := map[string]int{}
	for handovers := 0; handovers < 12 || seen["client-go-0"]+seen["client-go-1"] < 2; handovers++ {
		iv := rec.next(t)
		seen[iv.who]++
	}
	cancel()
	wg.Wait()
	rec.check(t)
	t.Logf("terms per candidate: %v", seen)
	if seen["regent-0"]+seen["regent-1"] < 2 {
		t.Error("no regent candidate led")
	}
}
