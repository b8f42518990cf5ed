package lock_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/regent-k8s/regent/kubefake"
	"github.com/regent-k8s/regent/lock"
)

// A Lease lock used directly: one term, its fencing token, a conditional release. Most programs
// use package leader on top of it.
func ExampleNewLease() {
	ctx := context.Background()
	env := kubefake.NewEnv() // in a program: clientset.CoordinationV1(), and no clock option
	l, err := lock.NewLease(env.Client.CoordinationV1(), "default", "my-lock",
		lock.WithIdentity("worker-0"), lock.WithClock(env.Clock))
	if err != nil {
		fmt.Println(err)
		return
	}
	term, err := l.Acquire(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("held with token", term.Token().Seq)
	fmt.Println("released:", term.Release(ctx) == nil)
	// Output:
	// held with token 1
	// released: true
}

// TryAcquire makes one attempt; a held lock is a *HeldError naming the holder.
func ExampleLease_TryAcquire() {
	ctx := context.Background()
	env := kubefake.NewEnv()
	a, _ := lock.NewLease(env.Client.CoordinationV1(), "default", "cron", lock.WithIdentity("a"), lock.WithClock(env.Clock))
	b, _ := lock.NewLease(env.Client.CoordinationV1(), "default", "cron", lock.WithIdentity("b"), lock.WithClock(env.Clock))
	term, _ := a.TryAcquire(ctx)
	defer term.Release(ctx)
	_, err := b.TryAcquire(ctx)
	var held *lock.HeldError
	fmt.Println(errors.As(err, &held), held.Holder)
	// Output:
	// true a
}

// A semaphore of 2: two processes hold a slot each, a third is refused until one releases.
func ExampleNewSemaphore() {
	ctx := context.Background()
	env := kubefake.NewEnv() // in a program: clientset.CoordinationV1(), and no clock option
	newSem := func(id string) *lock.Semaphore {
		s, err := lock.NewSemaphore(env.Client.CoordinationV1(), "default", "importers", 2,
			lock.WithIdentity(id), lock.WithClock(env.Clock))
		if err != nil {
			panic(err)
		}
		return s
	}
	a, _ := newSem("a").Acquire(ctx)
	b, _ := newSem("b").Acquire(ctx)
	fmt.Println(a.Lock() != b.Lock())
	_, err := newSem("c").TryAcquire(ctx)
	fmt.Println(errors.Is(err, lock.ErrHeld))
	_ = a.Release(ctx)
	c, err := newSem("c").TryAcquire(ctx)
	fmt.Println(err == nil && c.Lock() == a.Lock())
	_ = b.Release(ctx)
	_ = c.Release(ctx)
	// Output:
	// true
	// true
	// true
}
