package kubefake_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/regent-k8s/regent/kubefake"
	"github.com/regent-k8s/regent/leader"
	"github.com/regent-k8s/regent/lock"
)

// Two candidates on one Lease in a fake cluster: one leads, the other waits, and a release hands
// leadership over at once.
func Example() {
	ctx := context.Background()
	env := kubefake.NewEnv()
	election := func(identity string) *leader.Election {
		l, err := lock.NewLease(env.Client.CoordinationV1(), "default", "worker",
			lock.WithIdentity(identity), lock.WithClock(env.Clock))
		if err != nil {
			panic(err)
		}
		e, err := leader.New(l, leader.WithClock(env.Clock))
		if err != nil {
			panic(err)
		}
		return e
	}
	a, b := election("a"), election("b")

	la, err := a.Lead(ctx)
	fmt.Println("a leads:", err == nil, "token", la.Token().Seq)
	_, err = b.Lead(ctx, leader.WaitAtMost(10*time.Millisecond))
	fmt.Println("b leads while a does:", !errors.Is(err, lock.ErrHeld))
	if err := la.Release(ctx); err != nil {
		panic(err)
	}
	lb, err := b.Lead(ctx)
	fmt.Println("b leads after a's release:", err == nil, "token", lb.Token().Seq)
	_ = lb.Release(ctx)
	// Output:
	// a leads: true token 1
	// b leads while a does: false
	// b leads after a's release: true token 2
}
