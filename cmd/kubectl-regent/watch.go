package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/spf13/cobra"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/regent-k8s/regent/lock"
)

func newWatchCommand(e *env) *cobra.Command {
	var renewals, all bool
	var timeout time.Duration
	var output string
	cmd := &cobra.Command{
		Use:   "watch [LEASE]",
		Short: "Follow Lease locks' timelines live",
		Long: `Print a line for each change of a Lease lock as the command observes it: acquired, released,
handover requested, handed over, deleted, and expired. Expiry is judged as candidates judge it:
a held record that stays unchanged for its duration, as observed here, has expired, whatever
the clocks say. --renewals prints every renewal too. -o json prints one JSON object per line.

With LEASE, follows that Lease; without, every Lease lock of the namespace (-n), or of all
namespaces (-A), each line naming its lock. Runs until interrupted, or for --timeout.

RBAC: get, list and watch on leases.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageError{"expected at most one argument: the Lease's name"}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "" && output != "json" {
				return usageError{fmt.Sprintf("--output %q: accepted is json (or none, for lines of text)", output)}
			}
			if timeout < 0 {
				return usageError{fmt.Sprintf("--timeout %v: must not be negative", timeout)}
			}
			if all && len(args) == 1 {
				return usageError{"-A follows every Lease lock; name no Lease with it"}
			}
			ns, leases, err := e.leases(all)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			out := &lockedWriter{w: e.out}
			newTimeline := func(lock string) *timeline {
				return &timeline{out: out, json: output == "json", renewals: renewals, lock: lock}
			}
			if len(args) == 1 {
				t := newTimeline("")
				err = follow(ctx, leases, ns, args[0], func(l *coordinationv1.Lease) (bool, error) {
					t.observe(l, time.Now())
					return false, nil
				})
				t.stop()
			} else {
				timelines := map[string]*timeline{}
				err = followLeases(ctx, leases, "", nil, func(key string, l *coordinationv1.Lease) (bool, error) {
					t, ok := timelines[key]
					if !ok {
						if l == nil || !isElectionRecord(l) || l.Namespace == "kube-node-lease" {
							return false, nil
						}
						t = newTimeline(key)
						timelines[key] = t
					}
					t.observe(l, time.Now())
					return false, nil
				})
				for _, t := range timelines {
					t.stop()
				}
			}
			if ctx.Err() != nil && cmd.Context().Err() == nil || errors.Is(err, context.Canceled) {
				return nil // --timeout, or interrupted: the end of the watch, not an error
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&renewals, "renewals", false, "print every renewal too")
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "follow the Lease locks of every namespace")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "stop after this long (0: until interrupted)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "json: one JSON object per event")
	return cmd
}

// lockedWriter serialises the lines of several timelines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// event is one line of a timeline.
type event struct {
	Time   time.Time `json:"time"`
	Lock   string    `json:"lock,omitempty"` // namespace/name, when following several`
	Event  string    `json:"event"`
	Holder string    `json:"holder,omitempty"`
	Token  int32     `json:"token"`
	Detail string    `json:"detail,omitempty"`
}

// timeline turns the versions of a Lease into events.
type timeline struct {
	out      io.Writer
	json     bool
	renewals bool
	lock     string // namespace/name on each event, when following several

	mu      sync.Mutex
	last    *coordinationv1.Lease
	since   time.Time // when the last record was first observed
	expired bool
	expiry  *time.Timer
}

func (t *timeline) observe(l *coordinationv1.Lease, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	prev := t.last
	t.last = l
	switch {
	case l == nil && prev == nil:
		t.emit(event{Time: now, Event: "absent"})
	case l == nil:
		t.emit(event{Time: now, Event: "deleted", Holder: holderOf(prev), Detail: "the Lease was deleted"})
	case prev == nil:
		if h := holderOf(l); h != "" {
			t.emit(event{Time: now, Event: "held", Holder: h, Token: transitions(l), Detail: fmt.Sprintf("duration %ds", duration32(l))})
		} else {
			t.emit(event{Time: now, Event: "free", Token: transitions(l)})
		}
	default:
		t.change(prev, l, now)
	}
	if l != nil && prev != nil && equality.Semantic.DeepEqual(l.Spec, prev.Spec) {
		return // the record did not change: its expiry still runs from when it was first seen
	}
	t.since, t.expired = now, false
	if t.expiry != nil {
		t.expiry.Stop()
	}
	if h := holderOf(l); h != "" {
		rec := l
		t.expiry = time.AfterFunc(time.Duration(duration32(l))*time.Second, func() { t.expire(rec) })
	}
}

func (t *timeline) change(prev, l *coordinationv1.Lease, now time.Time) {
	ph, h := holderOf(prev), holderOf(l)
	to, of := l.Annotations[lock.HandoverToAnnotation], l.Annotations[lock.HandoverOfAnnotation]
	pto := prev.Annotations[lock.HandoverToAnnotation]
	switch {
	case ph != h && h == "":
		t.emit(event{Time: now, Event: "released", Holder: ph, Token: transitions(l)})
	case ph != h:
		detail := "was free"
		if ph != "" {
			detail = "taken from " + ph
		}
		if t.expired {
			detail += ", after its record expired"
		}
		t.emit(event{Time: now, Event: "acquired", Holder: h, Token: transitions(l), Detail: detail})
	case to != "" && of != "" && of != prev.Annotations[lock.HandoverOfAnnotation]:
		t.emit(event{Time: now, Event: "handed over", Holder: h, Token: transitions(l), Detail: "to " + to})
	case to != "" && of == "" && to != pto:
		t.emit(event{Time: now, Event: "handover requested", Holder: h, Token: transitions(l), Detail: "to " + to})
	case t.renewals && !equality.Semantic.DeepEqual(l.Spec, prev.Spec):
		detail := ""
		if t.expired {
			detail = "after its record had expired"
		}
		t.emit(event{Time: now, Event: "renewed", Holder: h, Token: transitions(l), Detail: detail})
	}
}

// expire reports rec expired if it is still the last record observed.
func (t *timeline) expire(rec *coordinationv1.Lease) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.last != rec || t.expired {
		return
	}
	t.expired = true
	t.emit(event{Time: time.Now(), Event: "expired", Holder: holderOf(rec), Token: transitions(rec),
		Detail: fmt.Sprintf("no renewal observed for %ds", duration32(rec))})
}

func (t *timeline) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.expiry != nil {
		t.expiry.Stop()
	}
	t.last = nil
}

func (t *timeline) emit(ev event) {
	ev.Lock = t.lock
	if t.json {
		b, _ := json.Marshal(ev)
		fmt.Fprintf(t.out, "%s\n", b)
		return
	}
	line := ev.Time.Format("15:04:05.000")
	if ev.Lock != "" {
		line += "  " + ev.Lock
	}
	line += fmt.Sprintf("  %-18s", ev.Event)
	if ev.Holder != "" {
		line += fmt.Sprintf("  %s (token %d)", ev.Holder, ev.Token)
	}
	if ev.Detail != "" {
		line += "  " + ev.Detail
	}
	fmt.Fprintln(t.out, line)
}

func transitions(l *coordinationv1.Lease) int32 {
	if l.Spec.LeaseTransitions == nil {
		return 0
	}
	return *l.Spec.LeaseTransitions
}

// duration32 is a record's duration in seconds; client-go's default, 15, when it has none.
func duration32(l *coordinationv1.Lease) int32 {
	if l.Spec.LeaseDurationSeconds == nil || *l.Spec.LeaseDurationSeconds <= 0 {
		return 15
	}
	return *l.Spec.LeaseDurationSeconds
}
