package lock

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"time"

	"go.uber.org/zap"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/utils/clock"
)

// Run takes part in the sharding: it joins as a member, runs work(ctx, i) for every shard i it
// holds, each in a goroutine of its own and under the term of shard i's Lease, and keeps its
// share of the shards (see Sharding) until ctx ends.
//
// A shard's work must return once its ctx is done; context.Cause tells why: ErrMoved (the shard
// goes to another member), ErrLeaving (Run's ctx ended), or the shard's *LostError (its Lease
// could not be renewed, or was taken or deleted). The shard is released only after its work
// has returned. Work that returns nil earlier leaves its shard held, and idle, until one of
// those happens; work that returns an error earlier ends Run with a *ShardError.
//
// When ctx ends, Run releases the membership, stops every shard's work, releases each shard once
// its work has returned, and returns nil. It also ends, in the same way, on a *ShardError or on
// a Kubernetes failure that retrying does not mend (an *APIError); transient failures are
// retried. A Sharding value runs one Run at a time.
func (s *Sharding) Run(ctx context.Context, work func(ctx context.Context, shard int) error) error {
	if ctx == nil {
		return errNil("ctx")
	}
	if work == nil {
		return errNil("work")
	}
	if !s.startRun() {
		return &ConfigError{Field: "Run", Value: s.String(), Reason: "is already running on this value"}
	}
	defer s.endRun()
	member, err := s.member.Acquire(ctx)
	switch {
	case ctx.Err() != nil:
		return nil
	case err != nil:
		return err
	}
	s.o.log.Info("joined", zap.Int("shards", s.k))

	wctx, stopWatch := context.WithCancel(ctx)
	events := make(chan observation[*coordinationv1.Lease])
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		s.watcher().run(wctx, events)
	}()
	r := &shardingRun{s: s, work: work, member: member, clock: s.o.clock,
		shards: map[int]*leaseCandidate{}, members: map[string]memberView{}, running: map[int]*shardWork{},
		finished: make(chan shardExit, s.k), rejoined: make(chan rejoin, 1)}
	err = r.loop(ctx, events)
	r.leave()
	stopWatch()
	<-watchDone
	return err
}

func (s *Sharding) startRun() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return false
	}
	s.running = true
	return true
}

func (s *Sharding) endRun() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running = false
}

// shardingRun is one Run: what the member knows of the others and of the shards, and the work it
// runs.
type shardingRun struct {
	s     *Sharding
	work  func(ctx context.Context, shard int) error
	clock clock.Clock

	member   *Term // this process's membership; nil while it is being taken again
	rejoined chan rejoin
	joining  bool               // a join is under way: its result is yet to arrive on rejoined
	stopJoin context.CancelFunc // ends the join under way

	listed  bool // the sharding's objects have been listed
	shards  map[int]*leaseCandidate
	members map[string]memberView // the other members' Leases, by name
	expiry  clock.Timer           // fires when the next other member's record expires

	running  map[int]*shardWork
	finished chan shardExit // buffered for every shard: a shard's goroutine never waits on it
}

// memberView is another member's Lease as observed here.
type memberView struct {
	record     leaseRecord
	observedAt time.Time // when the record was first seen as it is, on the lock's clock
	ref        memberRef // the version observed
	collected  bool      // this version's delete was tried (see collectMembers)
}

// liveUntil is when the member stops counting as live, unless its record changes first.
func (m memberView) liveUntil(lockDuration time.Duration) time.Time {
	d := time.Duration(m.record.durationSeconds) * time.Second
	if d <= 0 {
		d = lockDuration
	}
	return m.observedAt.Add(d)
}

type rejoin struct {
	term *Term
	err  error
}

// loop follows the sharding and balances after every observation, until ctx ends (nil), a
// shard's work fails, or a Kubernetes failure that retrying does not mend.
func (r *shardingRun) loop(ctx context.Context, events <-chan observation[*coordinationv1.Lease]) error {
	defer r.stopTimers()
	for {
		cases, fired := r.selectCases(ctx, events)
		chosen, recv, _ := reflect.Select(cases)
		switch chosen {
		case 0:
			return nil
		case 1:
			o := recv.Interface().(observation[*coordinationv1.Lease])
			if o.err != nil {
				return withLock(o.err, r.s.String())
			}
			r.observe(o)
		case 2:
			if err := r.ended(recv.Interface().(shardExit)); err != nil {
				return err
			}
		case 3:
			j := recv.Interface().(rejoin)
			r.joining = false
			r.stopJoin()
			if j.err != nil {
				return j.err
			}
			r.member = j.term
			r.s.o.log.Info("joined again")
		case 4:
			r.s.o.log.Warn("membership lost; taking it again", zap.Error(r.member.Err()))
			// A membership guards no work: its lost term is over at once.
			if err := r.member.Release(ctx); err != nil {
				r.s.o.log.Info("could not release the lost membership", zap.Error(err))
			}
			r.member = nil
			r.join(ctx)
		default:
			fired[chosen-5]()
		}
		if err := r.balance(ctx); err != nil {
			return err
		}
	}
}

// join takes the membership Lease again in the background.
func (r *shardingRun) join(ctx context.Context) {
	jctx, cancel := context.WithCancel(ctx)
	r.stopJoin, r.joining = cancel, true
	go func() {
		term, err := r.s.member.Acquire(jctx)
		if jctx.Err() != nil {
			if term != nil {
				_ = term.Release(context.WithoutCancel(jctx))
			}
			err, term = nil, nil
		}
		r.rejoined <- rejoin{term: term, err: err}
	}()
}

// selectCases are the cases loop waits on: ctx, the watch, the shards' goroutines, the
// membership (taken again, or lost), the members' expiry, and every shard candidate's timers;
// fired[k] clears the timer of case k+5 once it has fired.
func (r *shardingRun) selectCases(ctx context.Context, events <-chan observation[*coordinationv1.Lease]) ([]reflect.SelectCase, []func()) {
	var lost <-chan struct{}
	if r.member != nil {
		lost = r.member.Lost()
	}
	recv := func(ch any) reflect.SelectCase {
		return reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)}
	}
	cases := []reflect.SelectCase{recv(ctx.Done()), recv(events), recv(r.finished), recv(r.rejoined), recv(lost)}
	var fired []func()
	add := func(ch <-chan time.Time, clear func()) {
		if ch != nil {
			cases = append(cases, recv(ch))
			fired = append(fired, clear)
		}
	}
	addWake := func(ch <-chan struct{}, clear func()) {
		if ch != nil {
			cases = append(cases, recv(ch))
			fired = append(fired, clear)
		}
	}
	if r.expiry != nil {
		add(r.expiry.C(), func() { r.expiry = nil })
	}
	for _, c := range r.shards {
		c.timers(add)
		c.wakes(addWake)
	}
	return cases, fired
}

// candidate is shard i's candidate, created on first use.
func (r *shardingRun) candidate(i int) *leaseCandidate {
	c, ok := r.shards[i]
	if !ok {
		c = newLeaseCandidate(r.s.shard(i))
		r.shards[i] = c
	}
	return c
}

// observe routes an observation of the sharding's objects to a member's view or a shard's
// candidate.
func (r *shardingRun) observe(o observation[*coordinationv1.Lease]) {
	if !o.listed {
		r.observeObject(o.obj, o.exists)
		return
	}
	r.listed = true
	byName := map[string]*coordinationv1.Lease{}
	for _, obj := range o.set {
		byName[obj.Name] = obj
		if i := r.s.shardIndex(obj.Name); i >= 0 {
			r.candidate(i)
		}
	}
	for name := range r.members {
		if _, ok := byName[name]; !ok {
			delete(r.members, name)
		}
	}
	for name, obj := range byName {
		if r.s.isMember(name) {
			r.observeObject(obj, true)
		}
	}
	for i, c := range r.shards {
		obj, ok := byName[r.s.ShardName(i)]
		c.observe(observation[*coordinationv1.Lease]{obj: obj, exists: ok, listed: true})
	}
}

func (r *shardingRun) observeObject(obj *coordinationv1.Lease, exists bool) {
	switch {
	case obj.Name == r.s.member.name:
		// This process's own membership: its term says whether it is a member.
	case r.s.isMember(obj.Name):
		if !exists {
			delete(r.members, obj.Name)
			return
		}
		r.s.noteShards(obj)
		rec := recordOf(obj)
		if m, ok := r.members[obj.Name]; ok && m.record.equal(rec) {
			return
		}
		r.members[obj.Name] = memberView{record: rec, observedAt: r.clock.Now(), ref: memberRefOf(obj)}
	default:
		if i := r.s.shardIndex(obj.Name); i >= 0 {
			r.candidate(i).observe(observation[*coordinationv1.Lease]{obj: obj, exists: exists})
		}
	}
}

// live returns the live members' identities, this process's among them, and how many shards
// each identity holds in the shards' records; it sets the timer for the next member's expiry.
func (r *shardingRun) live() ([]string, map[string]int) {
	now := r.clock.Now()
	live := []string{r.s.o.identity}
	var next time.Time
	for _, m := range r.members {
		if m.record.holder == "" || m.record.holder == r.s.o.identity {
			continue
		}
		until := m.liveUntil(r.s.o.timings.LeaseDuration)
		if !until.After(now) {
			continue
		}
		live = append(live, m.record.holder)
		if next.IsZero() || until.Before(next) {
			next = until
		}
	}
	if r.expiry != nil {
		r.expiry.Stop()
		r.expiry = nil
	}
	if !next.IsZero() {
		r.expiry = r.clock.NewTimer(next.Sub(now))
	}
	holds := map[string]int{}
	for _, c := range r.shards {
		if c.lease != nil && c.record.holder != "" {
			holds[c.record.holder]++
		}
	}
	slices.Sort(live)
	return slices.Compact(live), holds
}

// balance moves this member toward its share: it gives up its highest-numbered excess shards,
// or takes free and expired ones, starting at its offset, until it holds its share.
func (r *shardingRun) balance(ctx context.Context) error {
	if !r.listed || ctx.Err() != nil {
		return nil
	}
	live, holds := r.live()
	r.collectMembers(ctx, live)
	share := shareOf(r.s.o.identity, live, holds, r.s.k)
	var kept []int
	for i, w := range r.running {
		if !w.moving {
			kept = append(kept, i)
		}
	}
	slices.Sort(kept)
	if len(kept) > share {
		moves := kept[share:]
		r.s.o.log.Info("giving shards up to balance the members", zap.Ints("shards", moves), zap.Int("share", share), zap.Int("members", len(live)))
		for _, i := range moves {
			r.running[i].moving = true
			r.running[i].cancel(ErrMoved)
		}
		return nil
	}
	held := len(kept)
	start := r.s.offset()
	for k := range r.s.k {
		i := (start + k) % r.s.k
		c := r.candidate(i)
		if _, ok := r.running[i]; ok {
			continue
		}
		if held >= share {
			c.stopTimers()
			continue
		}
		if !c.known {
			c.observe(observation[*coordinationv1.Lease]{listed: true})
		}
		term, err := c.act(ctx)
		if err != nil {
			return err
		}
		if term != nil {
			r.start(i, term)
			held++
		}
	}
	return nil
}

func (r *shardingRun) stopTimers() {
	if r.expiry != nil {
		r.expiry.Stop()
		r.expiry = nil
	}
	for _, c := range r.shards {
		c.stopTimers()
	}
}

// leave releases the membership, then stops every shard's work and waits until each shard has
// been released.
func (r *shardingRun) leave() {
	if r.joining {
		r.stopJoin()
		if j := <-r.rejoined; j.term != nil {
			r.member = j.term
		}
	}
	if r.member != nil {
		if err := r.member.Release(context.Background()); err != nil {
			r.s.o.log.Info("could not release the membership; it expires", zap.Error(err))
		} else {
			r.s.leaveMembership(context.Background())
		}
	}
	for _, w := range r.running {
		w.cancel(ErrLeaving)
	}
	for len(r.running) > 0 {
		_ = r.ended(<-r.finished)
	}
	r.s.o.log.Info("left")
}

// ended notes that shard e.shard's work has returned and its shard has been released; it
// returns the work's failure, if it failed.
func (r *shardingRun) ended(e shardExit) error {
	delete(r.running, e.shard)
	r.s.noteGone(e.shard, e.cause)
	if e.failure != nil {
		return &ShardError{Sharding: r.s.String(), Shard: e.shard, Err: e.failure}
	}
	if !errors.Is(e.cause, ErrLeaving) && !errors.Is(e.cause, ErrMoved) {
		r.s.o.log.Warn("shard lost", zap.Int("shard", e.shard), zap.Error(e.cause))
	}
	return nil
}
