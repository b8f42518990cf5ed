package lock

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
)

// Semaphore is a lock that up to its size of processes hold at once: a counting semaphore stored
// in Leases. Each of its slots is a Lease lock of its own, named name-0, name-1, …, so every
// term of a semaphore is a term of one slot's Lease and has that Lease's guarantees: its
// timings, its token (ordered per slot), its handling of deletions and foreign writes, and a
// holder that stops before another candidate may take the slot. At most size slots are held at
// once, so at most size terms last at once.
//
// # The size, and changing it
//
// The candidates agree on the size through a record: the Lease named name, whose annotation
// regent.dev/semaphore-size holds it. The first candidate to find it absent creates it with the
// size it was given; from then on every candidate follows the recorded size, also one given
// another size (it logs a warning). To change the size, call Resize or annotate the Lease:
//
//	kubectl annotate lease NAME regent.dev/semaphore-size=5 --overwrite
//
// Raising the size adds slots that waiters take at once. Lowering it removes the slots from the
// new size up: no candidate takes a removed slot again, and the holder of a removed slot loses
// its term as soon as it observes the change (a *LostError; its work is cancelled and must stop
// within the Lease's margin as on any loss). A candidate confirms the size with a fresh read
// after taking a slot and before its term begins, so no term of a removed slot begins after
// the resize was written. A size of 0 drains the semaphore. An invalid size (see sizeFrom) is
// refused with an error log, and the last valid size stays in force.
//
// Every object of a semaphore carries the label regent.dev/semaphore=name, so that one watch
// with that label selector follows them all: a waiter makes no request while every slot is held.
// The candidates need get, list, watch, create and update on leases in the namespace.
//
// # Limits
//
// Tokens are per slot (Term.Lock names the slot): a fencing store keeps the highest token it has
// accepted per slot. If a write of a waiter's is lost in transit and lands anyway while it takes
// another slot, the first slot stays recorded as held until it expires, as after a crash. Slot
// Leases must be created by the semaphore (they carry its label): one created by hand without
// it is invisible to the candidates' watch.
type Semaphore struct {
	leases    coordinationv1client.LeaseInterface
	namespace string
	name      string
	n         int // the size this value was given: the record's when this value creates it
	o         options
	labels    map[string]string

	mu         sync.Mutex
	slots      map[int]*Lease // each slot's Lease value, kept for this value's life
	warnedSize int            // the last recorded size that differed from n and was logged
	// lastValid is the last valid size this value read from the record, -1 before it read one.
	lastValid int
	// invalid is the last invalid annotation value that was logged; set while the record is invalid.
	invalid *string
}

var _ Lock = (*Semaphore)(nil)

const (
	// SemaphoreLabel is the label on every object of a semaphore, its value the semaphore's name.
	SemaphoreLabel = "regent.dev/semaphore"
	// SemaphoreSizeAnnotation holds a semaphore's size on its size record, the Lease named after
	// the semaphore.
	SemaphoreSizeAnnotation = "regent.dev/semaphore-size"
	// MaxSemaphoreSize is the largest size of a semaphore: each slot is a Lease that its holder
	// renews every RetryPeriod.
	MaxSemaphoreSize = 1000
)

// NewSemaphore returns the semaphore namespace/name of size n, 1 <= n <= MaxSemaphoreSize (see
// Semaphore for how candidates given different sizes agree). It takes the Lease lock's options.
// Pass clientset.CoordinationV1() as client.
func NewSemaphore(client coordinationv1client.LeasesGetter, namespace, name string, n int, opts ...Option) (*Semaphore, error) {
	if client == nil {
		return nil, &ConfigError{Field: "client", Value: nil, Reason: "must not be nil"}
	}
	if err := validateName("namespace", namespace, validation.IsDNS1123Label); err != nil {
		return nil, err
	}
	// Its slots' names are longer by at most four.
	if err := validateLabelledName(name); err != nil {
		return nil, err
	}
	if n < 1 || n > MaxSemaphoreSize {
		return nil, &ConfigError{Field: "n", Value: n, Reason: fmt.Sprintf("must be between 1 and %d", MaxSemaphoreSize)}
	}
	o, err := leaseOptions(opts)
	if err != nil {
		return nil, err
	}
	o.log = o.log.Named("semaphore").With(zapLock(namespace, name))
	return &Semaphore{leases: client.Leases(namespace), namespace: namespace, name: name, n: n, o: o, lastValid: -1,
		labels: map[string]string{SemaphoreLabel: name}, slots: map[int]*Lease{}}, nil
}

// String returns "semaphore namespace/name".
func (s *Semaphore) String() string { return fmt.Sprintf("semaphore %s/%s", s.namespace, s.name) }

// Identity is this process's holder identity, the same in every slot.
func (s *Semaphore) Identity() string { return s.o.identity }

// Timings are the slots' validated timings.
func (s *Semaphore) Timings() Timings { return s.o.timings }

// SlotName is the name of slot i's Lease.
func (s *Semaphore) SlotName(i int) string { return s.name + "-" + strconv.Itoa(i) }

// slot is slot i's Lease value.
func (s *Semaphore) slot(i int) *Lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.slots[i]
	if !ok {
		o := s.o
		o.log = s.o.log.Named("slot").With(zap.Int("slot", i))
		l = &Lease{leases: s.leases, namespace: s.namespace, name: s.SlotName(i), o: o, labels: s.labels}
		s.slots[i] = l
	}
	return l
}

// slotIndex is the slot a Lease of the semaphore stands for, or -1 for the size record or an
// object that is not a slot.
func (s *Semaphore) slotIndex(name string) int {
	suffix, ok := strings.CutPrefix(name, s.name+"-")
	if !ok {
		return -1
	}
	i, err := strconv.Atoi(suffix)
	if err != nil || i < 0 || i >= MaxSemaphoreSize || strconv.Itoa(i) != suffix {
		return -1
	}
	return i
}

// offset is where this candidate starts looking for a free slot: candidates start at different
// slots, so that those who find several free slots at once do not all race for the first.
func (s *Semaphore) offset(size int) int {
	if size <= 0 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(s.o.identity))
	return int(h.Sum32() % uint32(size))
}

func (s *Semaphore) watcher() *objectWatcher[*coordinationv1.Lease] {
	return &objectWatcher[*coordinationv1.Lease]{
		name:     s.name + " (semaphore)",
		labels:   labels.SelectorFromSet(s.labels),
		list:     listLeases(s.leases),
		watch:    s.leases.Watch,
		clock:    s.o.clock,
		log:      s.o.log,
		maxRetry: s.o.timings.RetryPeriod,
		timeout:  s.o.timings.RenewDeadline,
	}
}

// sizeWatcher follows the size record alone.
func (s *Semaphore) sizeWatcher() *objectWatcher[*coordinationv1.Lease] {
	w := s.watcher()
	w.name, w.labels = s.name, nil
	return w
}

// recordedSize is the size a size record holds; ok is false when the annotation is missing or is
// not a whole number from 0 to MaxSemaphoreSize.
func recordedSize(rec *coordinationv1.Lease) (size int, ok bool) {
	v, found := rec.Annotations[SemaphoreSizeAnnotation]
	if !found {
		return 0, false
	}
	size, err := strconv.Atoi(v)
	if err != nil || size < 0 || size > MaxSemaphoreSize {
		return 0, false
	}
	return size, true
}

// sizeFrom is the size that waiters follow, given the size record. A record whose size cannot be
// read (an annotation removed, empty, negative, not a number, above MaxSemaphoreSize) is refused
// with an error log, and the last valid size this value read stays in force; a value that never
// read a valid one takes no slot until the record is mended (it cannot know how many others
// hold). Holders keep their slots either way.
func (s *Semaphore) sizeFrom(rec *coordinationv1.Lease) int {
	size, ok := recordedSize(rec)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !ok {
		v, found := rec.Annotations[SemaphoreSizeAnnotation]
		if !found {
			v = "(removed)"
		}
		if s.invalid == nil || *s.invalid != v {
			s.invalid = &v
			keeping := "no slot is taken until it is mended: this process never read a valid size"
			if s.lastValid >= 0 {
				keeping = fmt.Sprintf("keeping the last valid size, %d, until it is mended", s.lastValid)
			}
			s.o.log.Error("the semaphore's size record has no valid size; refused, "+keeping,
				zap.String("annotation", SemaphoreSizeAnnotation), zap.String("value", v),
				zap.String("accepted", fmt.Sprintf("a whole number from 0 to %d", MaxSemaphoreSize)))
		}
		return max(s.lastValid, 0)
	}
	s.invalid, s.lastValid = nil, size
	switch {
	case size != s.n && size != s.warnedSize:
		s.warnedSize = size
		s.o.log.Warn("the semaphore's recorded size differs from the size this process was given; following the record (Resize changes it)",
			zap.Int("recorded", size), zap.Int("given", s.n))
	}
	return size
}

// ensureSize reads the size record, creating it with this value's size when it is absent, and
// returns the size to follow.
func (s *Semaphore) ensureSize(ctx context.Context) (int, error) {
	for range 3 {
		rec, err := bounded(ctx, s.o.timings.RenewDeadline, func(ctx context.Context) (*coordinationv1.Lease, error) {
			return s.leases.Get(ctx, s.name, metav1.GetOptions{})
		})
		if err == nil {
			return s.sizeFrom(rec), nil
		}
		if !apierrors.IsNotFound(err) {
			return 0, &APIError{Lock: s.String(), Op: "get", Err: err}
		}
		rec = s.sizeRecord(s.n)
		created, err := bounded(ctx, s.o.timings.RenewDeadline, func(ctx context.Context) (*coordinationv1.Lease, error) {
			return s.leases.Create(ctx, rec, metav1.CreateOptions{})
		})
		switch {
		case err == nil:
			s.o.log.Info("created the semaphore's size record", zap.Int("size", s.n))
			return s.sizeFrom(created), nil
		case !apierrors.IsAlreadyExists(err):
			return 0, &APIError{Lock: s.String(), Op: "create", Err: err}
		}
	}
	return 0, &APIError{Lock: s.String(), Op: "get", Err: fmt.Errorf("the size record was created and deleted again while being read")}
}

// awaitSize is ensureSize retried, as the Lease lock's waiters retry, until it succeeds, fails in
// a way that retrying does not mend, or ctx ends.
func (s *Semaphore) awaitSize(ctx context.Context) (int, error) {
	retry := newBackoff(s.o.clock, 100*time.Millisecond, s.o.timings.RetryPeriod)
	for {
		size, err := s.ensureSize(ctx)
		var ae *APIError
		switch {
		case err == nil:
			return size, nil
		case ctx.Err() != nil:
			return 0, &HeldError{Lock: s.String(), Err: ctx.Err()}
		case !errors.As(err, &ae) || permanent(ae.Err):
			return 0, err
		}
		s.o.log.Info("reading the size failed, retrying", zap.Error(err))
		if !retry.wait(ctx) {
			return 0, &HeldError{Lock: s.String(), Err: ctx.Err()}
		}
	}
}

func (s *Semaphore) sizeRecord(size int) *coordinationv1.Lease {
	return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{
		Name: s.name, Namespace: s.namespace, Labels: s.labels,
		Annotations: map[string]string{SemaphoreSizeAnnotation: strconv.Itoa(size)},
	}}
}

// Resize records size as the semaphore's size, 0 <= size <= MaxSemaphoreSize: every candidate
// follows it from when it observes the change (see Semaphore). It needs update (or create) on
// the size record.
func (s *Semaphore) Resize(ctx context.Context, size int) error {
	if ctx == nil {
		return errNil("ctx")
	}
	if size < 0 || size > MaxSemaphoreSize {
		return &ConfigError{Field: "size", Value: size, Reason: fmt.Sprintf("must be between 0 and %d", MaxSemaphoreSize)}
	}
	for range 5 {
		rec, err := s.leases.Get(ctx, s.name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			_, err = s.leases.Create(ctx, s.sizeRecord(size), metav1.CreateOptions{})
		case err == nil:
			rec = rec.DeepCopy()
			if rec.Annotations == nil {
				rec.Annotations = map[string]string{}
			}
			rec.Annotations[SemaphoreSizeAnnotation] = strconv.Itoa(size)
			_, err = s.leases.Update(ctx, rec, metav1.UpdateOptions{})
		}
		switch {
		case err == nil:
			s.o.log.Info("resized", zap.Int("size", size))
			return nil
		case !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err):
			return &APIError{Lock: s.String(), Op: "resize", Err: err}
		}
	}
	return &APIError{Lock: s.String(), Op: "resize", Err: fmt.Errorf("the size record kept changing")}
}

// Size reads the recorded size; ok is false when there is no size record yet, or its size is not
// valid.
func (s *Semaphore) Size(ctx context.Context) (size int, ok bool, err error) {
	if ctx == nil {
		return 0, false, errNil("ctx")
	}
	rec, err := s.leases.Get(ctx, s.name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return 0, false, nil
	case err != nil:
		return 0, false, &APIError{Lock: s.String(), Op: "get", Err: err}
	}
	size, ok = recordedSize(rec)
	return size, ok, nil
}

// Observe calls fn each time the holder of a slot below the size changes, or the size does; see
// Lock. The Observation's Holders lists each slot's holder, and Holder the non-empty ones.
func (s *Semaphore) Observe(ctx context.Context, fn func(Observation)) error {
	if ctx == nil {
		return errNil("ctx")
	}
	if fn == nil {
		return errNil("fn")
	}
	objects := map[string]*coordinationv1.Lease{}
	var last []string
	sent, size := false, 0
	return observe(ctx, s.watcher(), func(o observation[*coordinationv1.Lease]) {
		switch {
		case o.listed:
			clear(objects)
			for _, obj := range o.set {
				objects[obj.Name] = obj
			}
		case o.exists:
			objects[o.obj.Name] = o.obj
		default:
			delete(objects, o.obj.Name)
		}
		if rec, ok := objects[s.name]; ok {
			size = s.sizeFrom(rec) // an invalid record keeps the last valid size
		}
		holders := make([]string, size)
		for i := range holders {
			if l, ok := objects[s.SlotName(i)]; ok {
				holders[i] = recordOf(l).holder
			}
		}
		if sent && slices.Equal(holders, last) {
			return
		}
		sent, last = true, holders
		var held []string
		for _, h := range holders {
			if h != "" {
				held = append(held, h)
			}
		}
		fn(Observation{Holder: strings.Join(held, ","), Holders: slices.Clone(holders), Time: s.o.clock.Now()})
	}, s.String())
}
