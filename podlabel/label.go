package podlabel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/regent-k8s/regent/lock"
)

// Prefix begins the default label key; the lock's name follows it.
const Prefix = "leader.regent.dev/"

// Value is the label's value on the leader's Pod.
const Value = "true"

// KeyFor is the default label key for the lock named lockName.
func KeyFor(lockName string) string { return Prefix + lockName }

// Label labels its Pod while the Pod's process leads. Build it with New.
type Label struct {
	pods corev1client.PodInterface
	pod  string
	uid  types.UID
	key  string
	log  *zap.Logger
	// retry spaces out attempts after failed requests: from first, doubling, up to max.
	first, max time.Duration
}

// Option configures a Label.
type Option func(*Label)

// WithKey sets the label key (default KeyFor(lockName)); it must be a valid label key.
func WithKey(key string) Option { return func(l *Label) { l.key = key } }

// WithLogger sets the logger (default: none).
func WithLogger(log *zap.Logger) Option { return func(l *Label) { l.log = log } }

// New returns a Label for pod (this process's own Pod, as contextinfo reads it), in the Pod's
// namespace, keyed for the lock named lockName.
func New(pods corev1client.PodsGetter, pod *corev1.Pod, lockName string, opts ...Option) (*Label, error) {
	switch {
	case pods == nil:
		return nil, &lock.ConfigError{Field: "pods", Value: nil, Reason: "must not be nil"}
	case pod == nil || pod.Name == "" || pod.Namespace == "":
		return nil, &lock.ConfigError{Field: "pod", Value: pod, Reason: "must be this process's Pod, with a name and namespace (contextinfo.Info.Pod; set POD_NAME)"}
	}
	l := &Label{pod: pod.Name, uid: pod.UID, key: KeyFor(lockName), log: zap.NewNop(), first: 100 * time.Millisecond, max: 10 * time.Second}
	for _, opt := range opts {
		if opt != nil {
			opt(l)
		}
	}
	if errs := validation.IsQualifiedName(l.key); len(errs) > 0 {
		return nil, &lock.ConfigError{Field: "label key", Value: l.key,
			Reason: "not a valid label key (a name of at most 63 characters, after an optional DNS prefix and '/'; lock names longer than 63 need WithKey): " + strings.Join(errs, "; ")}
	}
	if l.log == nil {
		l.log = zap.NewNop()
	}
	l.log = l.log.Named("podlabel").With(zap.String("label", l.key), zap.String("pod", pod.Name))
	l.pods = pods.Pods(pod.Namespace)
	return l, nil
}

// Key is the label key.
func (l *Label) Key() string { return l.key }

// Mark labels the Pod, then clears the label from other Pods, retrying until both are done or
// ctx ends (leader.Marker).
func (l *Label) Mark(ctx context.Context, term *lock.Term) error {
	if term == nil {
		// Another Pod's label is cleared only while the term lasts; without a term, a new
		// leader's label could be cleared.
		return &lock.ConfigError{Field: "term", Value: nil, Reason: "must be the term being marked"}
	}
	err := l.retry(ctx, "label the leader's Pod", func() error {
		err := l.patch(ctx, l.pod, l.uid, "", Value)
		if replaced(err) {
			return &permanentError{fmt.Errorf("the Pod %s was replaced by another of the same name: %w", l.pod, err)}
		}
		return err
	})
	if err != nil {
		return err
	}
	return l.retry(ctx, "clear a previous leader's label", func() error { return l.clearOthers(ctx, term) })
}

// Unmark removes the label from the Pod, retrying until it is done or ctx ends (leader.Marker);
// term may be nil, e.g. to clear a label a previous container of the Pod left when it crashed.
// A Pod that no longer exists, or was replaced by another of the same name, has no label of
// this process to remove.
func (l *Label) Unmark(ctx context.Context, _ *lock.Term) error {
	return l.retry(ctx, "remove the label from the Pod", func() error {
		err := l.patch(ctx, l.pod, l.uid, "", "")
		switch {
		case err == nil, apierrors.IsNotFound(err):
			return nil
		case replaced(err):
			l.log.Info("the Pod was replaced by another of the same name; its label is not ours to remove")
			return nil
		}
		return err
	})
}

// replaced reports whether a patch naming a Pod's UID failed because the Pod of that name now
// has another UID: the API server refuses to change the UID, which is immutable.
func replaced(err error) bool {
	var status apierrors.APIStatus
	if !apierrors.IsInvalid(err) || !errors.As(err, &status) || status.Status().Details == nil {
		return false
	}
	for _, c := range status.Status().Details.Causes {
		if c.Field == "metadata.uid" {
			return true
		}
	}
	return false
}

// permanentError is a failure that retrying cannot mend.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// clearOthers removes the label from every other Pod that carries it, while term lasts.
func (l *Label) clearOthers(ctx context.Context, term *lock.Term) error {
	list, err := l.pods.List(ctx, metav1.ListOptions{LabelSelector: l.key + "=" + Value})
	if err != nil {
		return err
	}
	for _, p := range list.Items {
		if p.Name == l.pod {
			continue
		}
		if err := term.Check(); err != nil {
			return nil // a new leader may label itself now; it clears what is left
		}
		err := l.patch(ctx, p.Name, p.UID, p.ResourceVersion, "")
		switch {
		case err == nil:
			l.log.Info("removed a previous leader's label", zap.String("from", p.Name))
		case apierrors.IsNotFound(err):
		case apierrors.IsConflict(err):
			return fmt.Errorf("pod %s changed while its label was removed: %w", p.Name, err)
		default:
			return err
		}
	}
	return nil
}

// patch sets the label on the Pod named name to value, or removes it when value is empty. A
// non-empty uid or resourceVersion makes the patch apply to that Pod, or that version, only.
func (l *Label) patch(ctx context.Context, name string, uid types.UID, resourceVersion, value string) error {
	meta := map[string]any{"labels": map[string]any{l.key: nil}}
	if value != "" {
		meta["labels"] = map[string]any{l.key: value}
	}
	if uid != "" {
		meta["uid"] = uid
	}
	if resourceVersion != "" {
		meta["resourceVersion"] = resourceVersion
	}
	body, err := json.Marshal(map[string]any{"metadata": meta})
	if err != nil {
		return err
	}
	_, err = l.pods.Patch(ctx, name, types.MergePatchType, body, metav1.PatchOptions{})
	return err
}

// retry runs step until it succeeds or ctx ends, waiting longer after each failure.
func (l *Label) retry(ctx context.Context, what string, step func() error) error {
	wait := l.first
	for {
		err := step()
		if err == nil {
			return nil
		}
		if p := (*permanentError)(nil); errors.As(err, &p) {
			return fmt.Errorf("%s: %w", what, p.err)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", what, errors.Join(err, context.Cause(ctx)))
		}
		l.log.Warn("could not "+what+"; retrying", zap.Duration("in", wait), zap.Error(err))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: %w", what, errors.Join(err, context.Cause(ctx)))
		case <-t.C:
		}
		wait = min(2*wait, l.max)
	}
}
