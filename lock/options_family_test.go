package lock

import (
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/regent-k8s/regent/kubefake"
)

func TestOptionsOfTheOtherFamilyAreRefusedNotIgnored(t *testing.T) {
	env := kubefake.NewEnv()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: testNS, UID: "u"}}
	for _, tt := range []struct {
		opt   Option
		field string
		life  bool // the option is refused by a leader-for-life lock (else by a Lease)
	}{
		{WithTimings(DefaultTimings), "Timings", true},
		{WithMaxClockSkew(time.Second), "MaxClockSkew", true},
		{WithRenewObserver(func(Renewal) {}), "RenewObserver", true},
		{WithKeepOnRelease(), "KeepOnRelease", false},
		{WithBlockOwnerDeletion(), "BlockOwnerDeletion", false},
		{WithUnsafeTakeoverFromNotReadyNodes(), "UnsafeTakeoverFromNotReadyNodes", false},
	} {
		var err error
		if tt.life {
			_, err = NewConfigMapForLife(env.Client.CoreV1(), pod, "lock", tt.opt)
		} else {
			_, err = NewLease(env.Client.CoordinationV1(), testNS, testName, tt.opt)
		}
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != tt.field {
			t.Errorf("%s on the other family's lock = %v, want a ConfigError naming it", tt.field, err)
		}
	}
}
