package lock

import (
	"errors"
	"fmt"
)

var (
	// ErrLost matches a *LostError: a term that ended without its holder releasing it.
	ErrLost = errors.New("lock lost")
	// ErrHeld matches a *HeldError: another process holds the lock.
	ErrHeld = errors.New("lock held by another process")
	// ErrReleased is the cause of a term's context after its holder released it.
	ErrReleased = errors.New("lock released")
	// ErrAPI matches an *APIError: the Kubernetes API failed in a way that retrying does not mend.
	ErrAPI = errors.New("kubernetes API request failed")
	// ErrInvalidConfig matches a *ConfigError.
	ErrInvalidConfig = errors.New("invalid lock configuration")
)

// LostError says why a term ended without its holder releasing it.
type LostError struct {
	// Lock names the lock, as Lock.String does.
	Lock string
	// Reason says what ended the term.
	Reason string
	// Err is the underlying failure, if any.
	Err error
}

func (e *LostError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s lost: %s: %v", e.Lock, e.Reason, e.Err)
	}
	return fmt.Sprintf("%s lost: %s", e.Lock, e.Reason)
}

// Is makes errors.Is(err, ErrLost) true.
func (e *LostError) Is(target error) bool { return target == ErrLost }

// Unwrap returns the underlying failure.
func (e *LostError) Unwrap() error { return e.Err }

// HeldError says that another process holds the lock.
type HeldError struct {
	// Lock names the lock.
	Lock string
	// Holder is the identity last observed in the lock's record.
	Holder string
	// Err is why the caller stopped waiting (ctx.Err() for Acquire), nil for TryAcquire.
	Err error
}

func (e *HeldError) Error() string {
	msg := fmt.Sprintf("%s is held by %q", e.Lock, e.Holder)
	if e.Holder == "" {
		msg = fmt.Sprintf("%s was not acquired", e.Lock)
	}
	if e.Err != nil {
		return msg + ": " + e.Err.Error()
	}
	return msg
}

// Is makes errors.Is(err, ErrHeld) true.
func (e *HeldError) Is(target error) bool { return target == ErrHeld }

// Unwrap returns why the caller stopped waiting.
func (e *HeldError) Unwrap() error { return e.Err }

// APIError is a Kubernetes API failure that retrying does not mend. The API's own error is
// wrapped, so apierrors.IsForbidden and friends work on it.
type APIError struct {
	// Lock names the lock.
	Lock string
	// Op is what was attempted: get, watch, create, update or delete.
	Op string
	// Err is the API's error.
	Err error
}

func (e *APIError) Error() string { return fmt.Sprintf("%s: %s: %v", e.Lock, e.Op, e.Err) }

// Is makes errors.Is(err, ErrAPI) true.
func (e *APIError) Is(target error) bool { return target == ErrAPI }

// Unwrap returns the API's error.
func (e *APIError) Unwrap() error { return e.Err }

// errNil is the error for a required argument given as nil.
func errNil(field string) error {
	return &ConfigError{Field: field, Value: nil, Reason: "must not be nil"}
}

// ConfigError names a configuration field whose value is not accepted.
type ConfigError struct {
	// Field is spelled as the caller wrote it in Go: a function's parameter by its name, in lower
	// case (ctx, name, namespace, work, reg); an option, a struct field or a Timings field by its
	// name, in upper case (Identity, Clock, RetryPeriod, Registerer of MonitoringParams); a nil
	// receiver by its type (Election, Term). Command-line flags are named by app.FlagError instead.
	Field  string
	Value  any
	Reason string
	// Err is an underlying sentinel, if any (e.g. contextinfo.ErrPodNameMissing).
	Err error
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("invalid %s %v: %s", e.Field, e.Value, e.Reason)
}

// Unwrap returns the underlying sentinel.
func (e *ConfigError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrInvalidConfig) true.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }
