package chaos

import (
	"context"
	"net/http"
	"strconv"
	"sync"
)

// TermKey names one term as the sink sees it: the writer's identity and its token.
type TermKey struct {
	Who string
	Seq int64
}

// TermWrites counts one term's writes; the instants are Now() when the sink answered.
type TermWrites struct {
	Accepted, Rejected          int
	FirstAccepted, LastAccepted int64
	LastRejected                int64
}

// Sink is a fencing store: it accepts a write whose token is above the highest it has accepted,
// or equal to it from the same writer, and rejects (409 Conflict) any other. Workers write to it
// with POST /write?who=ID&seq=TOKEN. An equal token is accepted from the same writer only,
// because client-go keeps the Lease's transition count when the same holder acquires again; an
// equal token from another writer is a second term with the same token, which fencing must
// refuse.
type Sink struct {
	mu      sync.Mutex
	highest TermKey // the term of the highest token accepted
	any     bool    // a write was accepted
	terms   map[TermKey]*TermWrites
	wake    chan struct{} // closed and replaced on every accepted write
}

// NewSink returns an empty sink.
func NewSink() *Sink {
	return &Sink{terms: map[TermKey]*TermWrites{}, wake: make(chan struct{})}
}

func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	seq, err := strconv.ParseInt(r.URL.Query().Get("seq"), 10, 64)
	who := r.URL.Query().Get("who")
	if err != nil || who == "" {
		http.Error(w, "want ?who=ID&seq=TOKEN", http.StatusBadRequest)
		return
	}
	if !s.Write(TermKey{Who: who, Seq: seq}) {
		w.WriteHeader(http.StatusConflict)
	}
}

// Write records a write of term k and reports whether it was accepted.
func (s *Sink) Write(k TermKey) bool {
	now := Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	tw := s.terms[k]
	if tw == nil {
		tw = &TermWrites{}
		s.terms[k] = tw
	}
	if s.any && (k.Seq < s.highest.Seq || (k.Seq == s.highest.Seq && k.Who != s.highest.Who)) {
		tw.Rejected++
		tw.LastRejected = now
		return false
	}
	s.any, s.highest = true, k
	tw.Accepted++
	if tw.FirstAccepted == 0 {
		tw.FirstAccepted = now
	}
	tw.LastAccepted = now
	close(s.wake)
	s.wake = make(chan struct{})
	return true
}

// FencedOut lists the terms other than except whose every write was refused.
func (s *Sink) FencedOut(except TermKey) []TermKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []TermKey
	for k, tw := range s.terms {
		if k != except && tw.Accepted == 0 && tw.Rejected > 0 {
			out = append(out, k)
		}
	}
	return out
}

// Reset forgets the highest token accepted, as an operator resets a store's fence: the next write
// is accepted whatever its token. The counts of every term are kept.
func (s *Sink) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.any, s.highest = false, TermKey{}
}

// Writes returns what term k wrote.
func (s *Sink) Writes(k TermKey) TermWrites {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tw := s.terms[k]; tw != nil {
		return *tw
	}
	return TermWrites{}
}

// Rejected is the number of writes the sink refused, over all terms.
func (s *Sink) Rejected() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, tw := range s.terms {
		n += tw.Rejected
	}
	return n
}

// Await blocks until cond, called under the sink's lock with the term of the highest accepted
// token and its writes, returns true, or ctx ends.
func (s *Sink) Await(ctx context.Context, cond func(k TermKey, w TermWrites) bool) (TermKey, TermWrites, error) {
	for {
		s.mu.Lock()
		if s.any {
			k, w := s.highest, *s.terms[s.highest]
			if cond(k, w) {
				s.mu.Unlock()
				return k, w, nil
			}
		}
		wake := s.wake
		s.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return TermKey{}, TermWrites{}, ctx.Err()
		}
	}
}

// Sinks is one fencing sink per lock, for workers whose terms hold different locks (a
// semaphore's slots, whose tokens are ordered per slot only). A write names its lock with
// ?lock=NAME; writes without one go to the sink of the empty name.
type Sinks struct {
	mu    sync.Mutex
	sinks map[string]*Sink
}

// NewSinks returns an empty set of sinks.
func NewSinks() *Sinks { return &Sinks{sinks: map[string]*Sink{}} }

// Of returns the sink of lock, created on first use.
func (s *Sinks) Of(lock string) *Sink {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.sinks[lock]
	if k == nil {
		k = NewSink()
		s.sinks[lock] = k
	}
	return k
}

func (s *Sinks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.Of(r.URL.Query().Get("lock")).ServeHTTP(w, r)
}

// Rejected is the number of writes refused, over all sinks.
func (s *Sinks) Rejected() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, k := range s.sinks {
		n += k.Rejected()
	}
	return n
}
