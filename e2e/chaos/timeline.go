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

// Timeline records every worker's terms. At most one term per worker is open at a time.
type Timeline struct {
	mu    sync.Mutex
	open  map[string]*Term
	terms []*Term
}

// NewTimeline returns an empty timeline.
func NewTimeline() *Timeline { return &Timeline{open: map[string]*Term{}} }

// Begin opens a term of who at the instant start. An open term of who is first closed there.
func (tl *Timeline) Begin(who, library string, seq, start int64) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.closeLocked(who, start, "returned")
	t := &Term{Who: who, Library: library, Seq: seq, Start: start}
	tl.open[who] = t
	tl.terms = append(tl.terms, t)
}

// End closes who's open term at the instant end; how says what ended it. Without an open term
// it does nothing.
func (tl *Timeline) End(who string, end int64, how string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.closeLocked(who, end, how)
}

func (tl *Timeline) closeLocked(who string, end int64, how string) {
	if t := tl.open[who]; t != nil {
		t.End, t.EndedBy = end, how
		delete(tl.open, who)
	}
}

// Pause marks who's open term as paused.
func (tl *Timeline) Pause(who string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if t := tl.open[who]; t != nil {
		t.Paused = true
	}
}

// Open returns who's open term, if any.
func (tl *Timeline) Open(who string) (Term, bool) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if t := tl.open[who]; t != nil {
		return *t, true
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

// Overlaps returns every pair of terms of different workers where one started before the other
// had ended, leaving out pairs whose earlier term was paused. Open terms count as running until
// now.
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
			if !e.Paused && e.Who != t.Who {
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
