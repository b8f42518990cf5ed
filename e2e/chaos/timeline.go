package chaos

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// Term is one term as its worker's work saw it: from the work's start to its return, on the
// monotonic clock.
type Term struct {
	// Lock names what the term holds: a Lease, or a semaphore's slot. Only terms of the same lock
	// may not overlap.
	Lock    string
	Who     string
	Library string
	Seq     int64
	Start   int64
	End     int64  // 0 while the term is open
	EndedBy string // "returned", or how the harness closed it: "killed", "exited", "still running"
	// Paused is set when the worker was SIGSTOPped during the term. A paused process cannot
	// stop its work while it is frozen, so its term's end is not judged by the overlap check;
	// the fencing sink judges its writes instead.
	Paused bool
}

func (t Term) String() string {
	return fmt.Sprintf("%s (%s, token %d)", t.Who, t.Library, t.Seq)
}

// Overlap is two terms whose work ran at the same time: Later started before Earlier ended.
type Overlap struct {
	Earlier, Later Term
	By             time.Duration
}

func (o Overlap) String() string {
	return fmt.Sprintf("%v started %v before %v ended (%s)", o.Later, o.By, o.Earlier, o.Earlier.EndedBy)
}

// Timeline records every worker's terms. A worker has at most one open term per lock: one in
// all for a Lease's or a semaphore's workers, one per shard for a sharding's.
type Timeline struct {
	mu    sync.Mutex
	open  map[openKey]*Term
	terms []*Term
}

type openKey struct{ who, lock string }

// NewTimeline returns an empty timeline.
func NewTimeline() *Timeline { return &Timeline{open: map[openKey]*Term{}} }

// Begin opens a term of who on lock at the instant start. An open term of who on lock is first
// closed there; so is every open term of who when one has opened.
func (tl *Timeline) Begin(lock, who, library string, seq, start int64) {
	tl.begin(lock, who, library, seq, start, true)
}

// BeginConcurrent is Begin for a worker that holds many locks at once (a member of a sharding):
// who's open terms of other locks stay open.
func (tl *Timeline) BeginConcurrent(lock, who, library string, seq, start int64) {
	tl.begin(lock, who, library, seq, start, false)
}

func (tl *Timeline) begin(lock, who, library string, seq, start int64, single bool) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if single {
		tl.closeLocked(who, "", start, "returned")
	} else {
		tl.closeLocked(who, lock, start, "returned")
	}
	t := &Term{Lock: lock, Who: who, Library: library, Seq: seq, Start: start}
	tl.open[openKey{who, lock}] = t
	tl.terms = append(tl.terms, t)
}

// End closes every open term of who at the instant end; how says what ended them.
func (tl *Timeline) End(who string, end int64, how string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.closeLocked(who, "", end, how)
}

// EndLock closes who's open term of lock at the instant end.
func (tl *Timeline) EndLock(who, lock string, end int64, how string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.closeLocked(who, lock, end, how)
}

// closeLocked closes who's open term of lock, or all of who's open terms when lock is empty.
func (tl *Timeline) closeLocked(who, lock string, end int64, how string) {
	for k, t := range tl.open {
		if k.who == who && (lock == "" || k.lock == lock) {
			t.End, t.EndedBy = end, how
			delete(tl.open, k)
		}
	}
}

// Pause marks who's open terms as paused.
func (tl *Timeline) Pause(who string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for k, t := range tl.open {
		if k.who == who {
			t.Paused = true
		}
	}
}

// Open returns an open term of who's, if any.
func (tl *Timeline) Open(who string) (Term, bool) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for k, t := range tl.open {
		if k.who == who {
			return *t, true
		}
	}
	return Term{}, false
}

// Terms returns a copy of every term, in the order they began; open terms end at now.
func (tl *Timeline) Terms(now int64) []Term {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	out := make([]Term, len(tl.terms))
	for i, t := range tl.terms {
		out[i] = *t
		if out[i].End == 0 {
			out[i].End, out[i].EndedBy = now, "still running"
		}
	}
	return out
}

// OpenTerms returns the terms open now.
func (tl *Timeline) OpenTerms() []Term {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	out := make([]Term, 0, len(tl.open))
	for _, t := range tl.open {
		out = append(out, *t)
	}
	return out
}

// Overlaps returns every pair of terms of different workers on the same lock where one started
// before the other had ended, leaving out pairs whose earlier term was paused. Open terms count as
// running until now.
func (tl *Timeline) Overlaps(now int64) []Overlap {
	terms := tl.Terms(now)
	slices.SortStableFunc(terms, func(a, b Term) int { return compare(a.Start, b.Start) })
	var out []Overlap
	var running []Term // terms that may still overlap a later start
	for _, t := range terms {
		kept := running[:0]
		for _, e := range running {
			if e.End <= t.Start {
				continue // ended before t began: it cannot overlap t or anything later
			}
			kept = append(kept, e)
			if !e.Paused && e.Who != t.Who && e.Lock == t.Lock {
				out = append(out, Overlap{Earlier: e, Later: t, By: time.Duration(e.End - t.Start)})
			}
		}
		running = append(kept, t)
	}
	return out
}

func compare(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// MostAtOnce returns the largest number of terms that ran at one instant, over all locks,
// leaving out paused terms (see Term.Paused), and the first instant it was reached. Open terms
// count as running until now.
func (tl *Timeline) MostAtOnce(now int64) (int, int64) {
	type edge struct {
		at    int64
		delta int
	}
	var edges []edge
	for _, t := range tl.Terms(now) {
		if !t.Paused {
			edges = append(edges, edge{t.Start, 1}, edge{t.End, -1})
		}
	}
	// Ends before starts at the same instant: a term that ends where another begins does not
	// overlap it.
	slices.SortFunc(edges, func(a, b edge) int {
		if c := compare(a.at, b.at); c != 0 {
			return c
		}
		return a.delta - b.delta
	})
	most, at, running := 0, int64(0), 0
	for _, e := range edges {
		running += e.delta
		if running > most {
			most, at = running, e.at
		}
	}
	return most, at
}
