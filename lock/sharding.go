package lock

import (
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.uber.org/zap"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
)

// Sharding spreads k shards of work over the processes that run it (its members): every shard
// runs in one member at a time, and each live member runs floor(k/n) or ceil(k/n) of them, n
// being the number of live members.
//
// Each shard is a Lease lock of its own, named name-0 … name-(k-1): a shard's work runs under a
// term of its Lease, with that Lease's guarantees (timings, a token ordered per shard, deletions
// and foreign writes handled, and a holder that stops its work before another member may take
// the shard). That a shard runs in at most one member at a time rests on its Lease alone; the
// balancing below decides only who tries to take which shard and when a member gives one up.
//
// # Members and balance
//
// Each member holds a Lease of its own while it runs, name-member-HASH (HASH is taken from its
// identity), and renews it like any Lease. A member is live for the others while its membership
// Lease is held and not expired as they observe it, so a member that crashes stops counting
// when its membership Lease expires, and its shards are taken when their Leases expire, at about
// the same time. Membership Leases that are free or expired are deleted (see
// sharding_members.go; RBAC needs delete on leases). Every object of a sharding carries the label regent.dev/sharding=name, so one
// watch with that selector follows all members and shards: a member at its share makes no
// request other than its renewals.
//
// Each member computes its share from what it observes: ceil(k/n) for the first k mod n members
// when ranked by the shards they hold (at most ceil(k/n) counted), most first, then by identity;
// floor(k/n) for the others. A member above its share stops the work of its highest-numbered
// excess shards and releases them (a graceful handover: work stopped, then released, then taken);
// a member below its share takes free or expired shards, starting at an offset taken from its
// identity. Only the shards needed to reach the shares move. A member that leaves (Run's ctx
// ends) releases its membership first, so that the others raise their shares at once, then stops
// and releases each of its shards.
//
// # Limits
//
// All members must be given the same k and timings; a member that observes another's k differ
// logs a warning. Two processes with the same identity are one member: the second waits for the
// first's membership Lease. The shares are computed from each member's own observations, which
// agree once the watch has delivered the same records to all: until then a shard may wait a
// little longer to be taken, never run twice.
type Sharding struct {
	leases    coordinationv1client.LeaseInterface
	namespace string
	name      string
	k         int
	o         options
	labels    map[string]string
	member    *Lease // this process's membership Lease

	mu      sync.Mutex
	running bool           // a Run is under way
	shards  map[int]*Lease // each shard's Lease value, kept for this value's life
	held    map[int]Token  // the shards whose work runs here now
	subs    []*shardSubscription
	warned  map[string]int // members whose differing k has been logged, with that k
}

const (
	// ShardingLabel is the label on every object of a sharding, its value the sharding's name.
	ShardingLabel = "regent.dev/sharding"
	// ShardsAnnotation is on each membership Lease: the number of shards its member was given.
	ShardsAnnotation = "regent.dev/shards"
	// MaxShards is the largest number of shards: each held shard is a Lease that its member renews
	// every RetryPeriod.
	MaxShards = 1000
)

// NewSharding returns the sharding namespace/name of k shards (the shards parameter), 1 <= k <=
// MaxShards. It takes the Lease lock's options, which apply to the shards' Leases and the
// membership Lease alike. Pass clientset.CoordinationV1() as client. Call Run to take part.
func NewSharding(client coordinationv1client.LeasesGetter, namespace, name string, shards int, opts ...Option) (*Sharding, error) {
	if client == nil {
		return nil, &ConfigError{Field: "client", Value: nil, Reason: "must not be nil"}
	}
	if err := validateName("namespace", namespace, validation.IsDNS1123Label); err != nil {
		return nil, err
	}
	// The longest object name, name-member-HASH, is longer by 24.
	if err := validateLabelledName(name); err != nil {
		return nil, err
	}
	k := shards
	if k < 1 || k > MaxShards {
		return nil, &ConfigError{Field: "shards", Value: k, Reason: fmt.Sprintf("must be between 1 and %d", MaxShards)}
	}
	o, err := leaseOptions(opts)
	if err != nil {
		return nil, err
	}
	o.log = o.log.Named("sharding").With(zapLock(namespace, name))
	s := &Sharding{leases: client.Leases(namespace), namespace: namespace, name: name, k: k, o: o,
		labels: map[string]string{ShardingLabel: name}, shards: map[int]*Lease{}, held: map[int]Token{}, warned: map[string]int{}}
	mo := o
	mo.log = o.log.Named("member")
	s.member = &Lease{leases: s.leases, namespace: namespace, name: s.MemberName(o.identity), o: mo, labels: s.labels,
		annotations: map[string]string{ShardsAnnotation: strconv.Itoa(k)}}
	return s, nil
}

// String returns "sharding namespace/name".
func (s *Sharding) String() string { return fmt.Sprintf("sharding %s/%s", s.namespace, s.name) }

// Identity is this process's identity, in its membership Lease and in the shards it holds.
func (s *Sharding) Identity() string { return s.o.identity }

// Shards is k, the number of shards.
func (s *Sharding) Shards() int { return s.k }

// Timings are the Leases' validated timings.
func (s *Sharding) Timings() Timings { return s.o.timings }

// ShardName is the name of shard i's Lease.
func (s *Sharding) ShardName(i int) string { return s.name + "-" + strconv.Itoa(i) }

// MemberName is the name of the membership Lease of the member with this identity.
func (s *Sharding) MemberName(identity string) string {
	h := fnv.New64a()
	h.Write([]byte(identity))
	return fmt.Sprintf("%s-member-%016x", s.name, h.Sum64())
}

// shard is shard i's Lease value.
func (s *Sharding) shard(i int) *Lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.shards[i]
	if !ok {
		o := s.o
		o.log = s.o.log.Named("shard").With(zap.Int("shard", i))
		l = &Lease{leases: s.leases, namespace: s.namespace, name: s.ShardName(i), o: o, labels: s.labels}
		s.shards[i] = l
	}
	return l
}

// shardIndex is the shard a Lease of the sharding stands for, or -1 for a membership Lease or
// an object that is not a shard.
func (s *Sharding) shardIndex(name string) int {
	suffix, ok := strings.CutPrefix(name, s.name+"-")
	if !ok {
		return -1
	}
	i, err := strconv.Atoi(suffix)
	if err != nil || i < 0 || i >= s.k || strconv.Itoa(i) != suffix {
		return -1
	}
	return i
}

// isMember reports whether a Lease of the sharding is a membership Lease.
func (s *Sharding) isMember(name string) bool {
	return strings.HasPrefix(name, s.name+"-member-")
}

// offset is where this member starts looking for a free shard, so that members who find many
// free shards at once do not all race for the same ones.
func (s *Sharding) offset() int {
	h := fnv.New32a()
	h.Write([]byte(s.o.identity))
	return int(h.Sum32() % uint32(s.k))
}

func (s *Sharding) watcher() *objectWatcher[*coordinationv1.Lease] {
	return &objectWatcher[*coordinationv1.Lease]{
		name:     s.name + " (sharding)",
		labels:   labels.SelectorFromSet(s.labels),
		list:     listLeases(s.leases),
		watch:    s.leases.Watch,
		clock:    s.o.clock,
		log:      s.o.log,
		maxRetry: s.o.timings.RetryPeriod,
		timeout:  s.o.timings.RenewDeadline,
	}
}

// noteShards logs, once per value, a member whose recorded k differs from this process's.
func (s *Sharding) noteShards(member *coordinationv1.Lease) {
	v, ok := member.Annotations[ShardsAnnotation]
	if !ok {
		return
	}
	k, err := strconv.Atoi(v)
	if err != nil || k == s.k {
		return
	}
	holder := recordOf(member).holder
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.warned[holder] == k {
		return
	}
	s.warned[holder] = k
	s.o.log.Warn("a member was given another number of shards; all members must be given the same",
		zap.String("member", holder), zap.Int("theirs", k), zap.Int("ours", s.k))
}

// Held returns the shards whose work runs in this process now, in ascending order.
func (s *Sharding) Held() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	held := make([]int, 0, len(s.held))
	for i := range s.held {
		held = append(held, i)
	}
	slices.Sort(held)
	return held
}

// ShardError is a shard's work that failed: it returned an error while its shard was still
// held and Run's ctx had not ended. Run stops every other shard's work, releases everything,
// and returns it.
type ShardError struct {
	// Sharding names the sharding, as Sharding.String does.
	Sharding string
	// Shard is the shard whose work failed.
	Shard int
	// Err is what the work returned.
	Err error
}

func (e *ShardError) Error() string {
	return fmt.Sprintf("%s: the work of shard %d failed: %v", e.Sharding, e.Shard, e.Err)
}

// Unwrap returns the work's error.
func (e *ShardError) Unwrap() error { return e.Err }

// ErrMoved is the cause of a shard's work context when the shard is given up to balance the
// shards among the members.
var ErrMoved = errors.New("shard moved to balance the members")

// ErrLeaving is the cause of a shard's work context when Run's ctx has ended.
var ErrLeaving = errors.New("member leaving")
