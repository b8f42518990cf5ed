package e2e

import (
	"context"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/regent-k8s/regent/e2e/controlplane"
	"github.com/regent-k8s/regent/lock"
)

// deletionTimings give a deleted Lease's old holder a long window before its next renewal tells
// it of the deletion, so that a successor that did not wait would overlap it visibly.
var deletionTimings = lock.Timings{LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 1500 * time.Millisecond}

// kubectl delete lease while the leader works, and once deleted and at once created again empty
// (kubectl apply of a bare manifest). Each time the leader is also cut off from the API server
// right after the deletion, so that it learns of nothing and works on until its renew deadline,
// as a leader behind a slow or broken connection would: the next leader must start only after
// the old one stopped, and its token must be above the old one's, so that a fencing store keeps
// accepting it. A leader that is not cut off learns of the deletion at its next renewal and
// ends its term; like every candidate that did not follow the deletion, it then waits a lease
// duration before it creates the Lease again.
func TestLeaseDeletedWhileHeld(t *testing.T) {
	ns := namespace(t)
	ctx := context.Background()
	cands, rec, _ := runThree(t, ns, "deleted", deletionTimings)
	leases := cp.Client(controlplane.AdminUser).CoordinationV1().Leases(ns)
	cur := rec.next(t)
	for i, tt := range []struct{ cut, recreate bool }{{cut: false}, {cut: true}, {cut: true}, {cut: true, recreate: true}} {
		// The leader works a while, and a candidate healed after the last round reads the Lease
		// again (its retries are at most a RetryPeriod apart): real time on a real server.
		time.Sleep(deletionTimings.RetryPeriod + 500*time.Millisecond)
		deleted := time.Now()
		if err := leases.Delete(ctx, "deleted", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if tt.cut {
			cands[cur.who].cut.cut.Store(true)
		}
		if tt.recreate {
			if _, err := leases.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "deleted"}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		next := rec.next(t)
		cands[cur.who].cut.cut.Store(false)
		t.Logf("deletion %d (leader cut off: %v, created again: %v): %s (token %d) -> %s (token %d) after %v",
			i, tt.cut, tt.recreate, cur.who, cur.token.Seq, next.who, next.token.Seq, next.start.Sub(deleted).Round(time.Millisecond))
		if next.token.Seq <= cur.token.Seq {
			t.Errorf("deletion %d: token %d after %d: a fencing store would refuse the new leader", i, next.token.Seq, cur.token.Seq)
		}
		cur = next
	}
}

// The leader's record cleared by someone else while it works: client-go's release after its own
// leader lost the Lease writes such a free record over whatever record it reads, and so does an
// operator who edits the holder away. As after a deletion, the leader is also cut off right after,
// in some rounds, so that it works on until its renew deadline: no other candidate may take the
// free record before the leader's record would have expired, and the tokens keep growing.
func TestLeaseClearedWhileHeld(t *testing.T) {
	ns := namespace(t)
	ctx := context.Background()
	cands, rec, _ := runThree(t, ns, "cleared", deletionTimings)
	leases := cp.Client(controlplane.AdminUser).CoordinationV1().Leases(ns)
	cur := rec.next(t)
	for i, cut := range []bool{false, true, true} {
		time.Sleep(deletionTimings.RetryPeriod + 500*time.Millisecond) // the leader works a while
		cleared := time.Now()
		for {
			l, err := leases.Get(ctx, "cleared", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			now, empty, one := metav1.NewMicroTime(time.Now()), "", int32(1)
			l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.AcquireTime, l.Spec.RenewTime = &empty, &one, &now, &now
			if _, err = leases.Update(ctx, l, metav1.UpdateOptions{}); err == nil {
				break
			} else if !apierrors.IsConflict(err) {
				t.Fatal(err)
			}
		}
		if cut {
			cands[cur.who].cut.cut.Store(true)
		}
		next := rec.next(t)
		cands[cur.who].cut.cut.Store(false)
		t.Logf("clear %d (leader cut off: %v): %s (token %d) -> %s (token %d) after %v",
			i, cut, cur.who, cur.token.Seq, next.who, next.token.Seq, next.start.Sub(cleared).Round(time.Millisecond))
		if next.token.Seq <= cur.token.Seq {
			t.Errorf("clear %d: token %d after %d", i, next.token.Seq, cur.token.Seq)
		}
		cur = next
	}
}
