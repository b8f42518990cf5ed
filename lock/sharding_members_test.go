package lock

import (
	"context"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"

	"github.com/regent-k8s/regent/kubefake"
)

func memberExists(env *kubefake.Env, s *Sharding, identity string) bool {
	_, err := env.Tracker.Get(coordinationv1.SchemeGroupVersion.WithResource("leases"), testNS, s.MemberName(identity))
	return err == nil
}

func TestALeavingMemberDeletesItsMembershipLease(t *testing.T) {
	env := kubefake.NewEnv()
	a := newTestSharding(t, env, "a_1", 2)
	ledger := newShardLedger(t, env)
	ctx, cancel := context.WithCancel(context.Background())
	done := runAsync(ctx, a, ledger.work("a"))
	env.Await(t, "a runs both shards", func() bool { return ledger.counts()["a"] == 2 })
	if !memberExists(env, a, "a_1") {
		t.Fatal("no membership Lease while a runs")
	}
	cancel()
	if err := kubefake.Receive(t, done, "a's Run"); err != nil {
		t.Fatal(err)
	}
	if memberExists(env, a, "a_1") {
		t.Error("a's membership Lease is left behind after a left")
	}
}

func TestTheSmallestLiveMemberDeletesFreeAndExpiredMembershipLeases(t *testing.T) {
	// z crashed (its membership held, not renewed); y left without deleting its Lease (an older
	// version, or its delete failed). a, the only live member, deletes both: y's at once, z's
	// once it expires as observed (a LeaseDuration), and never a live member's.
	env := kubefake.NewEnv()
	a := newTestSharding(t, env, "a_1", 2)
	for _, who := range []string{"z_9", "y_9"} {
		holder := who
		if who == "y_9" {
			holder = ""
		}
		m := shardObject(0, holder, kubefake.Epoch)
		m.Name = a.MemberName(who)
		if err := env.Tracker.Add(m); err != nil {
			t.Fatal(err)
		}
	}
	ledger := newShardLedger(t, env)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := runAsync(ctx, a, ledger.work("a"))
	env.Await(t, "y's free membership Lease deleted", func() bool { return !memberExists(env, a, "y_9") })
	if !memberExists(env, a, "z_9") {
		t.Fatal("z's membership Lease was deleted while it counted as live")
	}
	for range 10 {
		if !memberExists(env, a, "z_9") {
			break
		}
		env.Await(t, "a's timers", func() bool { return env.Clock.Waiters() > 0 })
		env.Clock.Step(2 * time.Second)
	}
	env.Await(t, "z's expired membership Lease deleted", func() bool { return !memberExists(env, a, "z_9") })
	if !memberExists(env, a, "a_1") {
		t.Error("a's own membership Lease was deleted")
	}
	cancel()
	if err := kubefake.Receive(t, done, "a's Run"); err != nil {
		t.Fatal(err)
	}
}
