package lock

import (
	"context"
	"errors"
	"strings"
	"testing"

	"k8s.io/client-go/kubernetes/fake"
)

func TestAClientWithoutResourceVersionsIsRefused(t *testing.T) {
	// client-go's fake clientset stamps no resourceVersions: every update would succeed, and two
	// candidates would both lead. Both must be refused, saying why and what to use instead.
	for _, try := range []bool{false, true} {
		cs := fake.NewClientset()
		l, err := NewLease(cs.CoordinationV1(), "default", "lock", WithIdentity("a"))
		if err != nil {
			t.Fatal(err)
		}
		if try {
			_, err = l.TryAcquire(context.Background())
		} else {
			_, err = l.Acquire(context.Background())
		}
		if !errors.Is(err, ErrNoResourceVersions) || !strings.Contains(err.Error(), "kubefake") {
			t.Fatalf("try %v: %v, want ErrNoResourceVersions naming the fake to use", try, err)
		}
	}
}
