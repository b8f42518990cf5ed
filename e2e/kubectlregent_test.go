package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/regent-k8s/regent/e2e/controlplane"
	"github.com/regent-k8s/regent/e2e/examplerun"
)

// kubectlRegent is the plugin built from cmd/kubectl-regent, run as kubectl runs a plugin: with
// kubectl's flags, against the control plane's admin kubeconfig.
type kubectlRegent struct {
	bin, kubeconfig string
}

func buildKubectlRegent(t *testing.T) *kubectlRegent {
	t.Helper()
	bin, err := examplerun.BuildPackage(context.Background(), filepath.Join(examplerun.RepoRoot(), "cmd", "kubectl-regent"), ".",
		filepath.Join(t.TempDir(), "kubectl-regent"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := cp.WriteKubeconfig(controlplane.AdminUser)
	if err != nil {
		t.Fatal(err)
	}
	return &kubectlRegent{bin: bin, kubeconfig: cfg}
}

// run runs the plugin and returns its output and exit code.
func (k *kubectlRegent) run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(k.bin, append(args, "--kubeconfig="+k.kubeconfig)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatal(err)
	}
	t.Logf("kubectl regent %s → exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errOut.String())
	return out.String(), errOut.String(), code
}

// The plugin on the real control plane, as an operator uses it: list (table, -o json, -A),
// handover to a named candidate, release refused for a live holder and done for a gone one,
// --force, watch, and usage errors.
func TestKubectlRegent(t *testing.T) {
	k := buildKubectlRegent(t)
	ns := namespace(t)
	_, rec, _ := runThree(t, ns, "tool", fast)
	first := rec.next(t)

	// list: the lock and its holder, in the table, in JSON, and across namespaces.
	out, _, code := k.run(t, "list", "-n", ns)
	if code != 0 || !strings.Contains(out, "tool") || !strings.Contains(out, first.who) {
		t.Fatalf("list: exit %d, want the lock tool held by %s", code, first.who)
	}
	out, _, _ = k.run(t, "list", "-n", ns, "-o", "json")
	var list struct {
		Items []struct {
			Name, Kind, Holder, Token string
			ExpiresIn                 *float64 `json:"expiresInSeconds"`
		}
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("list -o json: %v", err)
	}
	if len(list.Items) != 1 || list.Items[0].Kind != "Lease" || list.Items[0].Holder != first.who || list.Items[0].ExpiresIn == nil {
		t.Fatalf("list -o json = %+v, want the Lease tool held by %s with an expiry", list.Items, first.who)
	}
	if out, _, _ = k.run(t, "list", "-A"); !strings.Contains(out, ns) {
		t.Errorf("list -A does not show namespace %s", ns)
	}

	// handover: to another candidate, which leads next.
	to := "c0"
	if first.who == "c0" {
		to = "c2"
	}
	out, _, code = k.run(t, "handover", "tool", "--to", to, "-n", ns)
	if code != 0 || !strings.Contains(out, "handed over to "+to) {
		t.Fatalf("handover: exit %d, want handed over to %s", code, to)
	}
	if next := rec.next(t); next.who != to {
		t.Fatalf("after kubectl regent handover --to %s, %s leads", to, next.who)
	}

	// release of a live holder is refused, and writes nothing.
	_, errOut, code := k.run(t, "release", "tool", "-n", ns)
	if code != 1 || !strings.Contains(errOut, "alive") {
		t.Fatalf("release of a live holder: exit %d, want 1 and a refusal", code)
	}
	lease, err := cp.Client(controlplane.AdminUser).CoordinationV1().Leases(ns).Get(context.Background(), "tool", metav1.GetOptions{})
	if err != nil || *lease.Spec.HolderIdentity != to {
		t.Fatalf("after a refused release the lease is held by %v (%v), want %s", lease.Spec.HolderIdentity, err, to)
	}

	// release of a gone holder: a record no one renews is freed after its duration.
	gone := "gone"
	leases := cp.Client(controlplane.AdminUser).CoordinationV1().Leases(ns)
	now, dur, n := metav1.NewMicroTime(time.Now()), int32(2), int32(4)
	_, err = leases.Create(context.Background(), &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "orphan"},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &gone, LeaseDurationSeconds: &dur, AcquireTime: &now, RenewTime: &now, LeaseTransitions: &n},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	out, _, code = k.run(t, "release", "orphan", "-n", ns)
	if code != 0 || !strings.Contains(out, "freed") {
		t.Fatalf("release of a gone holder: exit %d", code)
	}
	if waited := time.Since(started); waited < 2*time.Second {
		t.Errorf("release freed the record after %v, before its 2 s duration", waited)
	}
	if l, err := leases.Get(context.Background(), "orphan", metav1.GetOptions{}); err != nil || *l.Spec.HolderIdentity != "" || *l.Spec.LeaseTransitions != 4 {
		t.Fatalf("after release: %+v (%v), want a free record with the count kept", l.Spec, err)
	}

	// watch: the timeline of a forced release, a request and a handover.
	watchOut, watchAllOut := make(chan string, 1), make(chan string, 1)
	go func() {
		out, _, _ := k.run(t, "watch", "tool", "-n", ns, "--timeout", "8s")
		watchOut <- out
	}()
	go func() {
		out, _, _ := k.run(t, "watch", "-A", "--timeout", "8s", "-o", "json")
		watchAllOut <- out
	}()
	time.Sleep(time.Second) // the watch is open
	holder := to
	if out, _, code = k.run(t, "release", "tool", "-n", ns, "--force"); code != 0 || !strings.Contains(out, "forced") {
		t.Fatalf("release --force: exit %d", code)
	}
	next := rec.next(t) // regent's candidates wait out the freed record, then one leads
	tl := <-watchOut
	for _, want := range []string{"held", holder, "released", "acquired", next.who} {
		if !strings.Contains(tl, want) {
			t.Errorf("watch printed no %q:\n%s", want, tl)
		}
	}
	// Watching every Lease lock: the same events, each naming its lock; orphan, freed, too.
	events := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(<-watchAllOut), "\n") {
		var ev struct{ Lock, Event, Holder string }
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("watch -A -o json printed %q: %v", line, err)
		}
		events[ev.Lock+" "+ev.Event+" "+ev.Holder] = true
	}
	for _, want := range []string{ns + "/tool held " + holder, ns + "/tool released " + holder, ns + "/tool acquired " + next.who, ns + "/orphan free "} {
		if !events[want] {
			t.Errorf("watch -A printed no %q; it printed %v", want, events)
		}
	}

	// Usage errors exit 2 and say what is accepted.
	for _, args := range [][]string{{"list", "-o", "table"}, {"handover", "tool", "-n", ns}, {"release"}} {
		if _, errOut, code := k.run(t, args...); code != 2 || errOut == "" {
			t.Errorf("kubectl regent %v: exit %d, want 2 with a message", args, code)
		}
	}
	// A Lease that does not exist.
	if _, errOut, code := k.run(t, "release", "nothing", "-n", ns); code != 1 || !strings.Contains(errOut, "not found") {
		t.Errorf("release of a missing lease: exit %d, %q", code, errOut)
	}
}
