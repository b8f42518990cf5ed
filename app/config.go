package app

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/regent-k8s/regent/lock"
	"github.com/regent-k8s/regent/podlabel"
)

// LockKind selects where the lock is stored.
type LockKind string

// The lock kinds.
const (
	KindLease      LockKind = "lease"
	KindConfigMap  LockKind = "configmap"
	KindLeaderLock LockKind = "leaderlock"
	// KindSemaphore is a semaphore of Leases (lock.Semaphore): up to SemaphoreSize replicas run
	// the guarded work at once.
	KindSemaphore LockKind = "semaphore"
)

// Config is the configuration of the regent modules, from flags and environment.
type Config struct {
	// Kubeconfig is the kubeconfig file; empty: KUBECONFIG, then in-cluster, then ~/.kube/config.
	Kubeconfig string
	// Context is the kubeconfig context; empty: the current one.
	Context string
	// Namespace of the lock; empty: this process's own namespace (contextinfo: POD_NAMESPACE, the
	// service-account file, the kubeconfig context). A Lease may live in any namespace; a
	// leader-for-life lock is owned by its Pod and lives in the Pod's namespace.
	Namespace string
	// LockKind is lease, configmap, leaderlock or semaphore.
	LockKind LockKind
	// SemaphoreSize is a semaphore's size, the number of replicas that may hold it at once
	// (lock kind semaphore only; once recorded, the semaphore keeps its size: see lock.Semaphore).
	SemaphoreSize int
	// LockName names the lock object.
	LockName string
	// Identity is this process's name in the lock; empty: POD_NAME (or the host name) plus a
	// random suffix per process.
	Identity string
	// Timings of a Lease lock.
	Timings lock.Timings
	// LabelLeaderPod labels this process's Pod with leader.regent.dev/<LockName>: "true" while it
	// leads, so that a Service can select the leader (package podlabel). It needs a Pod
	// (POD_NAME), a lock with one holder (not a semaphore), and get, list and patch on pods.
	LabelLeaderPod bool
	// HandOverOnStop makes a leader that is stopping (SIGTERM, as in a rolling update) hand the
	// lock over to the newest Ready Pod of its workload instead of freeing it for whichever
	// candidate writes first (package readypeer). It needs a Pod (POD_NAME), a Lease lock, and
	// list on pods.
	HandOverOnStop bool
	// HealthAddr is where /healthz, /readyz and /metrics are served; empty disables the server.
	// The default, :8082, stays clear of controller-runtime's metrics (:8080) and probes (:8081),
	// so that an operator can serve both.
	HealthAddr string

	// envErr is an environment variable RegisterFlags could not read, reported by Validate
	// unless its flag was given.
	envErr *FlagError
}

// DefaultConfig has the documented defaults.
func DefaultConfig() Config {
	return Config{LockKind: KindLease, Timings: lock.DefaultTimings, HealthAddr: DefaultHealthAddr}
}

// DefaultHealthAddr is Config.HealthAddr's default: port 8082 on every interface, clear of
// controller-runtime's :8080 (metrics) and :8081 (probes).
const DefaultHealthAddr = ":8082"

// FlagError names a flag (and its environment variable) whose value is not accepted.
type FlagError struct {
	Flag   string
	Env    string
	Value  string
	Reason string
}

func (e *FlagError) Error() string {
	return fmt.Sprintf("invalid --%s (or %s) %q: %s", e.Flag, e.Env, e.Value, e.Reason)
}

// ErrInvalidFlag matches a *FlagError.
var ErrInvalidFlag = errors.New("invalid flag")

// Is makes errors.Is(err, ErrInvalidFlag) true.
func (e *FlagError) Is(target error) bool { return target == ErrInvalidFlag }

// flagSpec is one flag with its environment variable.
type flagSpec struct {
	name, env, usage string
}

var (
	flagKubeconfig     = flagSpec{"kubeconfig", "KUBECONFIG", "kubeconfig file (default: in-cluster, then ~/.kube/config)"}
	flagContext        = flagSpec{"context", "REGENT_CONTEXT", "kubeconfig context (default: the current one)"}
	flagNamespace      = flagSpec{"namespace", "REGENT_NAMESPACE", "namespace of the lock (default: this process's own: the Pod's, or the kubeconfig context's)"}
	flagLockKind       = flagSpec{"lock-kind", "REGENT_LOCK_KIND", "lease, configmap, leaderlock or semaphore"}
	flagSemaphoreSize  = flagSpec{"semaphore-size", "REGENT_SEMAPHORE_SIZE", "how many replicas may hold a semaphore at once (lock kind semaphore), when this replica creates it"}
	flagLockName       = flagSpec{"lock-name", "REGENT_LOCK_NAME", "name of the lock object"}
	flagIdentity       = flagSpec{"identity", "REGENT_IDENTITY", "this process's name in the lock (default: POD_NAME or host name, plus a random suffix)"}
	flagLeaseDuration  = flagSpec{"lease-duration", "REGENT_LEASE_DURATION", "how long followers wait before taking an unrenewed lease"}
	flagRenewDeadline  = flagSpec{"renew-deadline", "REGENT_RENEW_DEADLINE", "how long the leader keeps its term without a successful renewal"}
	flagRetryPeriod    = flagSpec{"retry-period", "REGENT_RETRY_PERIOD", "how often the leader renews"}
	flagLabelLeader    = flagSpec{"label-leader-pod", "REGENT_LABEL_LEADER_POD", "label this Pod leader.regent.dev/<lock-name>=true while it leads, for a Service that selects the leader"}
	flagHandOverOnStop = flagSpec{"hand-over-on-stop", "REGENT_HAND_OVER_ON_STOP", "when stopping, hand the lock over to the newest Ready Pod of this workload (Lease locks)"}
	flagHealthAddr     = flagSpec{"health-addr", "REGENT_HEALTH_ADDR", "address of /healthz, /readyz and /metrics; empty disables"}
)

// RegisterFlags adds the configuration's flags to fs. Each flag's default is its environment
// variable when set, else the value already in c; Validate checks the result.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	str := func(p *string, f flagSpec) {
		fs.StringVar(p, f.name, envOr(f.env, *p), f.usage+" ["+f.env+"]")
	}
	str(&c.Kubeconfig, flagKubeconfig)
	str(&c.Context, flagContext)
	str(&c.Namespace, flagNamespace)
	str(&c.LockName, flagLockName)
	str(&c.Identity, flagIdentity)
	str(&c.HealthAddr, flagHealthAddr)
	fs.Func(flagLockKind.name, flagLockKind.usage+" (default "+string(orKind(c.LockKind))+") ["+flagLockKind.env+"]", func(s string) error {
		c.LockKind = LockKind(s)
		return nil
	})
	if v := os.Getenv(flagLockKind.env); v != "" {
		c.LockKind = LockKind(v)
	}
	dur := func(p *time.Duration, f flagSpec) {
		given := c.fromEnv(f, func(v string) error { return parseInto(p, v, time.ParseDuration) }, "not a duration (say 15s or 1m)")
		fs.Var(&durationFlag{p: p, set: given}, f.name, f.usage+" ["+f.env+"]")
	}
	sizeGiven := c.fromEnv(flagSemaphoreSize, func(v string) error { return parseInto(&c.SemaphoreSize, v, strconv.Atoi) }, "not a whole number")
	fs.Func(flagSemaphoreSize.name, flagSemaphoreSize.usage+fmt.Sprintf(" (default %d)", c.SemaphoreSize)+" ["+flagSemaphoreSize.env+"]", func(s string) error {
		if parseInto(&c.SemaphoreSize, s, strconv.Atoi) != nil {
			return errors.New("not a whole number")
		}
		sizeGiven()
		return nil
	})
	boolean := func(p *bool, f flagSpec) {
		given := c.fromEnv(f, func(v string) error { return parseInto(p, v, strconv.ParseBool) }, "not true or false")
		fs.BoolFunc(f.name, f.usage+fmt.Sprintf(" (default %t)", *p)+" ["+f.env+"]", func(s string) error {
			if parseInto(p, s, strconv.ParseBool) != nil {
				return errors.New("not true or false")
			}
			given()
			return nil
		})
	}
	boolean(&c.LabelLeaderPod, flagLabelLeader)
	boolean(&c.HandOverOnStop, flagHandOverOnStop)
	dur(&c.Timings.LeaseDuration, flagLeaseDuration)
	dur(&c.Timings.RenewDeadline, flagRenewDeadline)
	dur(&c.Timings.RetryPeriod, flagRetryPeriod)
}

// durationFlag is a time.Duration flag that reports when it is set.
type durationFlag struct {
	p   *time.Duration
	set func()
}

func (f *durationFlag) String() string {
	if f.p == nil {
		return "0s"
	}
	return f.p.String()
}

func (f *durationFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("not a duration (say 15s or 1m)")
	}
	*f.p = d
	f.set()
	return nil
}

// Validate checks the configuration; the error names the flag.
func (c Config) Validate() error {
	if c.envErr != nil {
		return c.envErr
	}
	switch orKind(c.LockKind) {
	case KindLease, KindConfigMap, KindLeaderLock, KindSemaphore:
	default:
		return &FlagError{Flag: flagLockKind.name, Env: flagLockKind.env, Value: string(c.LockKind), Reason: "must be lease, configmap, leaderlock or semaphore"}
	}
	switch {
	case orKind(c.LockKind) == KindSemaphore && (c.SemaphoreSize < 1 || c.SemaphoreSize > lock.MaxSemaphoreSize):
		return &FlagError{Flag: flagSemaphoreSize.name, Env: flagSemaphoreSize.env, Value: strconv.Itoa(c.SemaphoreSize),
			Reason: fmt.Sprintf("a semaphore needs a size from 1 to %d", lock.MaxSemaphoreSize)}
	case orKind(c.LockKind) != KindSemaphore && c.SemaphoreSize != 0:
		return &FlagError{Flag: flagSemaphoreSize.name, Env: flagSemaphoreSize.env, Value: strconv.Itoa(c.SemaphoreSize),
			Reason: "applies to lock kind semaphore only"}
	}
	if strings.TrimSpace(c.LockName) == "" {
		return &FlagError{Flag: flagLockName.name, Env: flagLockName.env, Value: c.LockName, Reason: "is required"}
	}
	if errs := validation.IsDNS1123Subdomain(c.LockName); len(errs) > 0 {
		return &FlagError{Flag: flagLockName.name, Env: flagLockName.env, Value: c.LockName, Reason: "not a valid object name: " + strings.Join(errs, "; ")}
	}
	if c.LabelLeaderPod {
		if orKind(c.LockKind) == KindSemaphore {
			return &FlagError{Flag: flagLabelLeader.name, Env: flagLabelLeader.env, Value: "true",
				Reason: "applies to locks with one holder (lease, configmap, leaderlock); a semaphore's holders would clear each other's labels"}
		}
		if errs := validation.IsQualifiedName(podlabel.KeyFor(c.LockName)); len(errs) > 0 {
			return &FlagError{Flag: flagLabelLeader.name, Env: flagLabelLeader.env, Value: "true",
				Reason: fmt.Sprintf("the label key %q is not valid (a lock name of at most 63 characters is): %s", podlabel.KeyFor(c.LockName), strings.Join(errs, "; "))}
		}
	}
	if c.HandOverOnStop && orKind(c.LockKind) != KindLease {
		return &FlagError{Flag: flagHandOverOnStop.name, Env: flagHandOverOnStop.env, Value: "true",
			Reason: fmt.Sprintf("applies to lease locks only; a %s lock cannot hand over", orKind(c.LockKind))}
	}
	if c.Namespace != "" {
		if errs := validation.IsDNS1123Label(c.Namespace); len(errs) > 0 {
			return &FlagError{Flag: flagNamespace.name, Env: flagNamespace.env, Value: c.Namespace, Reason: "not a valid namespace: " + strings.Join(errs, "; ")}
		}
	}
	if c.Identity != "" && strings.TrimSpace(c.Identity) == "" {
		return &FlagError{Flag: flagIdentity.name, Env: flagIdentity.env, Value: c.Identity, Reason: "must not be blank"}
	}
	if kind := orKind(c.LockKind); !kind.leases() && c.Timings != lock.DefaultTimings {
		f, v := flagLeaseDuration, c.Timings.LeaseDuration
		switch {
		case c.Timings.RenewDeadline != lock.DefaultTimings.RenewDeadline:
			f, v = flagRenewDeadline, c.Timings.RenewDeadline
		case c.Timings.RetryPeriod != lock.DefaultTimings.RetryPeriod:
			f, v = flagRetryPeriod, c.Timings.RetryPeriod
		}
		return &FlagError{Flag: f.name, Env: f.env, Value: v.String(), Reason: fmt.Sprintf("applies to lease locks only; a %s lock has no timings", kind)}
	}
	if orKind(c.LockKind).leases() {
		if err := c.Timings.Validate(); err != nil {
			var ce *lock.ConfigError
			if errors.As(err, &ce) {
				f := map[string]flagSpec{"LeaseDuration": flagLeaseDuration, "RenewDeadline": flagRenewDeadline, "RetryPeriod": flagRetryPeriod}[ce.Field]
				return &FlagError{Flag: f.name, Env: f.env, Value: fmt.Sprint(ce.Value), Reason: ce.Reason}
			}
			return err
		}
	}
	return nil
}

// leases reports whether locks of kind k are stored in Leases, and so have timings.
func (k LockKind) leases() bool { return k == KindLease || k == KindSemaphore }

func orKind(k LockKind) LockKind {
	if k == "" {
		return KindLease
	}
	return k
}

// fromEnv reads f's environment variable, if set, with read. A value read cannot take is kept
// as c.envErr (the first such), which Validate reports, saying why (reason); the returned
// function, called when f's flag is given, drops it, since the flag overrides the environment.
func (c *Config) fromEnv(f flagSpec, read func(string) error, reason string) (flagGiven func()) {
	var unread *FlagError
	if v := os.Getenv(f.env); v != "" && read(v) != nil {
		unread = &FlagError{Flag: f.name, Env: f.env, Value: v, Reason: reason}
		if c.envErr == nil {
			c.envErr = unread
		}
	}
	return func() {
		if unread != nil && c.envErr == unread {
			c.envErr = nil
		}
	}
}

// parseInto sets *p to s parsed with parse, and leaves *p alone if s does not parse.
func parseInto[T any](p *T, s string, parse func(string) (T, error)) error {
	v, err := parse(s)
	if err == nil {
		*p = v
	}
	return err
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
