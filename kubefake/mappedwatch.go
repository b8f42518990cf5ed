package kubefake

import (
	"sync"

	"k8s.io/apimachinery/pkg/watch"
)

// mappedWatch passes a watch's events through a function. Unlike watch.Filter, its goroutine
// ends on Stop even when nobody reads the events still queued.
type mappedWatch struct {
	in     watch.Interface
	fn     func(watch.Event) watch.Event
	out    chan watch.Event
	stop   chan struct{}
	once   sync.Once
	closed chan struct{}
}

func newMappedWatch(in watch.Interface, fn func(watch.Event) watch.Event) *mappedWatch {
	w := &mappedWatch{in: in, fn: fn, out: make(chan watch.Event), stop: make(chan struct{}), closed: make(chan struct{})}
	go w.loop()
	return w
}

func (w *mappedWatch) loop() {
	defer close(w.closed)
	defer close(w.out)
	for {
		select {
		case <-w.stop:
			return
		case ev, ok := <-w.in.ResultChan():
			if !ok {
				return
			}
			select {
			case w.out <- w.fn(ev):
			case <-w.stop:
				return
			}
		}
	}
}

// ResultChan implements watch.Interface.
func (w *mappedWatch) ResultChan() <-chan watch.Event { return w.out }

// Stop implements watch.Interface; it returns once the goroutine has ended.
func (w *mappedWatch) Stop() {
	w.once.Do(func() {
		close(w.stop)
		w.in.Stop()
	})
	<-w.closed
}
