package app

import (
	"time"

	"github.com/regent-k8s/regent/leader"
	"github.com/regent-k8s/regent/lock"
)

// multiRecorder hands an election's events to several recorders.
type multiRecorder []leader.Recorder

var _ leader.Recorder = multiRecorder(nil)

func (m multiRecorder) Acquired(l string, t lock.Token, waited time.Duration) {
	for _, r := range m {
		r.Acquired(l, t, waited)
	}
}

func (m multiRecorder) Ended(l string, t lock.Token, lost bool, held time.Duration) {
	for _, r := range m {
		r.Ended(l, t, lost, held)
	}
}

func (m multiRecorder) Overran(l string, t lock.Token) {
	for _, r := range m {
		r.Overran(l, t)
	}
}
