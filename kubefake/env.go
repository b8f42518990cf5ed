package kubefake

import (
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// Env is a fake cluster and a fake clock sharing one Signal.
type Env struct {
	*Signal
	Client  *fake.Clientset
	Tracker *Tracker
	Clock   *Clock
}

// Epoch is where Env's clock starts.
var Epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// NewEnv returns a fake cluster holding objs and a fake clock at Epoch.
func NewEnv(objs ...runtime.Object) *Env {
	s := NewSignal()
	cs, tr := NewClientset(s, objs...)
	return &Env{Signal: s, Client: cs, Tracker: tr, Clock: NewClock(s, Epoch)}
}

// React runs fn for requests of verb on resource before the tracker sees them; fn may answer a
// request itself (handled true) or let it through. Requests still wake Await first.
func (e *Env) React(verb, resource string, fn k8stesting.ReactionFunc) {
	c := e.Client
	c.Lock()
	defer c.Unlock()
	r := &k8stesting.SimpleReactor{Verb: verb, Resource: resource, Reaction: fn}
	c.ReactionChain = append(c.ReactionChain[:1:1], append([]k8stesting.Reactor{r}, c.ReactionChain[1:]...)...)
}

// ReactWatch is React for watch requests.
func (e *Env) ReactWatch(resource string, fn k8stesting.WatchReactionFunc) {
	c := e.Client
	c.Lock()
	defer c.Unlock()
	r := &k8stesting.SimpleWatchReactor{Resource: resource, Reaction: fn}
	c.WatchReactionChain = append(c.WatchReactionChain[:1:1], append([]k8stesting.WatchReactor{r}, c.WatchReactionChain[1:]...)...)
}
