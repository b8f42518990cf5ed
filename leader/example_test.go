package leader_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/regent-k8s/regent/kubefake"
	"github.com/regent-k8s/regent/leader"
	"github.com/regent-k8s/regent/lock"
)

// newElection is an election on a fake cluster; in a program, pass a real clientset's
// CoordinationV1() and leave the clock alone.
func newElection(env *kubefake.Env, identity string) *leader.Election {
	l, err := lock.NewLease(env.Client.CoordinationV1(), "default", "my-singleton",
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

// RunAsLeader waits to lead, runs the work with a context that ends when leadership is lost,
// waits for the work to return, and only then releases the lock.
func ExampleElection_RunAsLeader() {
	election := newElection(kubefake.NewEnv(), "worker-0")
	err := election.RunAsLeader(context.Background(), func(ctx context.Context) error {
		token, _ := leader.TokenFrom(ctx) // pass it to stores that refuse stale writers
		fmt.Println("leading with token", token.Seq)
		return nil // the work is done; a long-running worker returns when ctx ends
	})
	fmt.Println("returned:", err)
	// Output:
	// leading with token 1
	// returned: <nil>
}

// Lead gives a handle on one term. Return Err after the work, so that a lost term reads as
// ErrLost and RetryOnLost leads again.
func ExampleElection_Lead() {
	ctx := context.Background()
	election := newElection(kubefake.NewEnv(), "worker-0")
	l, err := election.Lead(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("leading:", l.Err() == nil, "token", l.Token().Seq)
	_ = l.Release(context.WithoutCancel(ctx))
	fmt.Println("after Release:", errors.Is(l.Err(), lock.ErrReleased))
	// Output:
	// leading: true token 1
	// after Release: true
}

// A second candidate waits while the first leads; WaitAtMost bounds the wait only.
func ExampleWaitAtMost() {
	ctx := context.Background()
	env := kubefake.NewEnv()
	first, second := newElection(env, "worker-0"), newElection(env, "worker-1")
	l, _ := first.Lead(ctx)
	defer l.Release(ctx)
	_, err := second.Lead(ctx, leader.WaitAtMost(10*time.Millisecond))
	fmt.Println("held:", errors.Is(err, lock.ErrHeld), "timed out:", errors.Is(err, context.DeadlineExceeded))
	// Output:
	// held: true timed out: true
}
