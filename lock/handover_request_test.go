package lock

import (
	"context"
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/regent-k8s/regent/kubefake"
)

// requestHandover annotates the Lease as kubectl annotate would.
func requestHandover(t *testing.T, env *kubefake.Env, to string) {
	t.Helper()
	lease := getLease(t, env)
	if lease.Annotations == nil {
		lease.Annotations = map[string]string{}
	}
	lease.Annotations[HandoverToAnnotation] = to
	putLease(t, env, lease)
}

// renewOnce steps the clock by a RetryPeriod and waits for the holder's renewal to succeed.
func renewOnce(t *testing.T, env *kubefake.Env, renewed <-chan Renewal) {
	t.Helper()
	env.Clock.Step(DefaultTimings.RetryPeriod)
	for {
		if r := kubefake.Receive(t, renewed, "a renewal"); r.Err == nil {
			return
		}
	}
}

func renewals() (Option, <-chan Renewal) {
	ch := make(chan Renewal, 16)
	return WithRenewObserver(func(r Renewal) { ch <- r }), ch
}

func TestARequestedHandoverReachesTheHolderAtItsNextRenewal(t *testing.T) {
	env := kubefake.NewEnv()
	observe, renewed := renewals()
	term, err := newTestLease(t, env, me, observe).Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	named := newTestLease(t, env, "named_3", WithHandoverAliases("named-pod"))
	res := acquireAsync(context.Background(), named)
	env.Await(t, "the named waiter's expiry timer", func() bool { return env.Clock.Waiters() >= 3 })

	requestHandover(t, env, "named-pod")
	if closed(term.HandoverRequested()) {
		t.Fatal("the request was noticed before any renewal")
	}
	renewOnce(t, env, renewed)
	if !closed(term.HandoverRequested()) || term.RequestedSuccessor() != "named-pod" {
		t.Fatalf("after a renewal: requested %v, successor %q; want the request to named-pod",
			closed(term.HandoverRequested()), term.RequestedSuccessor())
	}
	if term.Err() != nil {
		t.Fatalf("a request ended the term (%v): only the holder's handover may", term.Err())
	}
	if err := term.HandOver(context.Background(), term.RequestedSuccessor()); err != nil {
		t.Fatalf("HandOver: %v", err)
	}
	r := kubefake.Receive(t, res, "the candidate named by its alias to take the lease at once")
	if r.err != nil {
		t.Fatal(r.err)
	}
	releaseTerm(t, r.term)
}

func TestAHandoverRequestNamingTheHolderIsIgnored(t *testing.T) {
	env := kubefake.NewEnv()
	observe, renewed := renewals()
	term, err := newTestLease(t, env, me, observe, WithHandoverAliases("my-pod")).Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer releaseTerm(t, term)
	for _, to := range []string{me, "my-pod", ""} {
		requestHandover(t, env, to)
		renewOnce(t, env, renewed)
		if closed(term.HandoverRequested()) {
			t.Fatalf("a request naming %q was taken as a request to hand over", to)
		}
	}
}

func TestASemaphoreSlotIgnoresAHandoverRequest(t *testing.T) {
	env := kubefake.NewEnv()
	observe, renewed := renewals()
	s, err := NewSemaphore(env.Client.CoordinationV1(), testNS, testName, 1, WithIdentity(me), WithClock(env.Clock), observe)
	if err != nil {
		t.Fatal(err)
	}
	term, err := s.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer releaseTerm(t, term)
	slot, err := env.Client.CoordinationV1().Leases(testNS).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range slot.Items {
		lease := slot.Items[i].DeepCopy()
		if recordOf(lease).holder != me {
			continue
		}
		lease.Annotations = map[string]string{HandoverToAnnotation: "other"}
		lease.ResourceVersion = ""
		if err := env.Tracker.Update(coordinationv1.SchemeGroupVersion.WithResource("leases"), lease, testNS); err != nil {
			t.Fatal(err)
		}
	}
	renewOnce(t, env, renewed)
	if closed(term.HandoverRequested()) {
		t.Fatal("a semaphore slot's term took a request it cannot act on")
	}
}
