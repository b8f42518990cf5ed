package leader

import (
	"context"
	"errors"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/regent-k8s/regent/kubefake"
	"github.com/regent-k8s/regent/lock"
)

func TestHandOverPassesTheLeadershipToTheNamedCandidate(t *testing.T) {
	env := kubefake.NewEnv()
	a, b := newElection(t, env, "a_1"), newElection(t, env, "b_2")
	la, err := a.Lead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	led := leadAsync(t, b)
	env.Await(t, "b to wait for the held lease", func() bool { return env.Clock.Waiters() >= 2 })
	if err := la.HandOver(context.Background(), ""); err == nil || la.Err() != nil {
		t.Fatalf("HandOver to no one = %v with the leadership ending (%v); want a refusal that leaves it", err, la.Err())
	}
	if err := la.HandOver(context.Background(), "b_2"); err != nil {
		t.Fatalf("HandOver: %v", err)
	}
	if !errors.Is(la.Err(), lock.ErrReleased) {
		t.Errorf("the handed-over leadership's Err = %v, want lock.ErrReleased", la.Err())
	}
	lb := kubefake.Receive(t, led, "b to lead, with no time passing")
	if lb == nil {
		t.FailNow()
	}
	if err := lb.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := la.Release(context.Background()); err != nil {
		t.Errorf("Release after HandOver = %v, want the handover's result (nil)", err)
	}
}

func TestARequestedHandoverStopsTheWorkAndHandsOverToTheNamedCandidate(t *testing.T) {
	env := kubefake.NewEnv()
	a, b := newElection(t, env, "a_1"), newElection(t, env, "b_2")
	working := make(chan struct{})
	var stoppedBeforeHandover bool
	result := make(chan error, 1)
	go func() {
		result <- a.RunAsLeader(context.Background(), func(ctx context.Context) error {
			close(working)
			<-ctx.Done()
			// The work stops while the lease still names a: nobody else leads yet.
			stoppedBeforeHandover = holder(t, env) == "a_1"
			return ctx.Err()
		})
	}()
	kubefake.Receive(t, working, "a to lead")
	led := leadAsync(t, b)
	env.Await(t, "b to wait for the held lease", func() bool { return env.Clock.Waiters() >= 3 })

	lease, err := env.Client.CoordinationV1().Leases("default").Get(context.Background(), "lock", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lease.Annotations = map[string]string{lock.HandoverToAnnotation: "b_2"} // kubectl annotate
	if _, err := env.Client.CoordinationV1().Leases("default").Update(context.Background(), lease, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	env.Clock.Step(lock.DefaultTimings.RetryPeriod) // a's next renewal brings the request

	err = kubefake.Receive(t, result, "a's RunAsLeader to return")
	var req *HandoverRequestedError
	if !errors.As(err, &req) || req.To != "b_2" || !errors.Is(err, ErrLost) {
		t.Fatalf("RunAsLeader = %v, want a *HandoverRequestedError to b_2 that matches ErrLost", err)
	}
	if !stoppedBeforeHandover {
		t.Error("the lease had left a before a's work stopped")
	}
	lb := kubefake.Receive(t, led, "b to lead, with no more time passing")
	if lb == nil {
		t.FailNow()
	}
	if err := lb.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
}
