package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/regent-k8s/regent/lock"
)

// Kinds of lock, as list shows them.
const (
	kindLease      = "Lease"
	kindSemaphore  = "Semaphore" // a semaphore's size record
	kindSlot       = "SemaphoreSlot"
	kindConfigMap  = "ConfigMap"  // leader for life
	kindLeaderLock = "LeaderLock" // leader for life
)

// lockView is one lock as the commands show it. Durations are in seconds in JSON and YAML.
type lockView struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	// Holder is empty when the lock is free.
	Holder string `json:"holder"`
	// Token is the fencing token's sequence (a Lease's transition count); empty for
	// leader-for-life locks, whose token is the object's UID.
	Token string `json:"token,omitempty"`
	// HeldFor is how long the holder has held the lock, by the holder's clock (acquireTime) and
	// this machine's.
	HeldFor *duration `json:"heldForSeconds,omitempty"`
	// LastRenewal is the age of the last renewal the holder wrote (renewTime), by both clocks.
	LastRenewal *duration `json:"lastRenewalSeconds,omitempty"`
	// ExpiresIn is when a candidate may take the lock if it is not renewed: the record's
	// duration after the last renewal. list judges it by the clocks (renewTime); watch by what
	// it observed, as candidates do.
	ExpiresIn *duration `json:"expiresInSeconds,omitempty"`
	// LeaseDuration is the record's duration.
	LeaseDuration *duration `json:"leaseDurationSeconds,omitempty"`
	// HandoverTo is a handover requested or under way (regent.dev/handover-to).
	HandoverTo string `json:"handoverTo,omitempty"`
	// Owner is the Pod that owns a leader-for-life lock.
	Owner string `json:"owner,omitempty"`
}

// duration prints as a kubectl-style age in tables and as seconds in JSON and YAML.
type duration time.Duration

func (d duration) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatFloat(time.Duration(d).Seconds(), 'f', 3, 64)), nil
}

func durationOf(d time.Duration) *duration { v := duration(d); return &v }

// isElectionRecord reports whether a Lease holds a leader-election record rather than, say, a
// node's heartbeat: candidates write acquireTime and leaseTransitions, heartbeats do not.
func isElectionRecord(l *coordinationv1.Lease) bool {
	_, semaphore := l.Labels[lock.SemaphoreLabel]
	return semaphore || l.Spec.AcquireTime != nil || l.Spec.LeaseTransitions != nil
}

// leaseView is a Lease's record as seen at now by this machine's clock.
func leaseView(l *coordinationv1.Lease, now time.Time) lockView {
	v := lockView{Namespace: l.Namespace, Name: l.Name, Kind: kindLease, HandoverTo: l.Annotations[lock.HandoverToAnnotation]}
	if _, ok := l.Annotations[lock.SemaphoreSizeAnnotation]; ok {
		v.Kind = kindSemaphore
	} else if _, ok := l.Labels[lock.SemaphoreLabel]; ok {
		v.Kind = kindSlot
	}
	s := l.Spec
	v.Holder = holderOf(l)
	if s.LeaseTransitions != nil {
		v.Token = strconv.Itoa(int(*s.LeaseTransitions))
	}
	if v.Holder == "" {
		return v
	}
	if s.AcquireTime != nil {
		v.HeldFor = durationOf(now.Sub(s.AcquireTime.Time))
	}
	if s.LeaseDurationSeconds != nil {
		v.LeaseDuration = durationOf(time.Duration(*s.LeaseDurationSeconds) * time.Second)
	}
	if s.RenewTime != nil {
		v.LastRenewal = durationOf(now.Sub(s.RenewTime.Time))
		if v.LeaseDuration != nil {
			v.ExpiresIn = durationOf(max(0, time.Duration(*v.LeaseDuration)-now.Sub(s.RenewTime.Time)))
		}
	}
	return v
}

// lifeView is a leader-for-life lock object.
func lifeView(obj metav1.Object, kind string, now time.Time) lockView {
	v := lockView{Namespace: obj.GetNamespace(), Name: obj.GetName(), Kind: kind, Holder: obj.GetAnnotations()[lock.HolderAnnotation],
		HeldFor: durationOf(now.Sub(obj.GetCreationTimestamp().Time))}
	for _, ref := range obj.GetOwnerReferences() {
		if ref.Kind == "Pod" {
			v.Owner = ref.Name
		}
	}
	return v
}

// listLocks lists the locks in namespace ns ("" for all namespaces).
func listLocks(ctx context.Context, cs kubernetes.Interface, dyn dynamic.Interface, ns string, now time.Time) ([]lockView, error) {
	var views []lockView
	leases, err := cs.CoordinationV1().Leases(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	for i := range leases.Items {
		if l := &leases.Items[i]; isElectionRecord(l) && l.Namespace != "kube-node-lease" {
			views = append(views, leaseView(l, now))
		}
	}
	cms, err := cs.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	switch {
	case apierrors.IsForbidden(err):
		// Allowed to see Leases only: list those.
	case err != nil:
		return nil, fmt.Errorf("list configmaps: %w", err)
	default:
		for i := range cms.Items {
			if _, ok := cms.Items[i].Annotations[lock.HolderAnnotation]; ok {
				views = append(views, lifeView(&cms.Items[i], kindConfigMap, now))
			}
		}
	}
	lls, err := dyn.Resource(lock.LeaderLockResource).Namespace(ns).List(ctx, metav1.ListOptions{})
	switch {
	case apierrors.IsNotFound(err) || apierrors.IsForbidden(err) || meta.IsNoMatchError(err):
		// The LeaderLock resource is not installed, or not ours to read.
	case err != nil:
		return nil, fmt.Errorf("list leaderlocks: %w", err)
	default:
		for i := range lls.Items {
			views = append(views, lifeView(&lls.Items[i], kindLeaderLock, now))
		}
	}
	return views, nil
}
