package lock

import (
	"errors"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// permanent reports whether an API error will come back however often the request is retried:
// the caller lacks rights, or the request itself is wrong. Everything else (timeouts, a server
// that is restarting, throttling, conflicts) is worth another try.
func permanent(err error) bool {
	switch {
	case errors.Is(err, ErrNoResourceVersions):
		return true
	case apierrors.IsForbidden(err),
		apierrors.IsUnauthorized(err),
		apierrors.IsInvalid(err),
		apierrors.IsBadRequest(err),
		apierrors.IsMethodNotSupported(err),
		apierrors.IsNotAcceptable(err),
		apierrors.IsUnsupportedMediaType(err),
		apierrors.IsRequestEntityTooLargeError(err):
		return true
	}
	return false
}
