package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/regent-k8s/regent/contextinfo"
	"github.com/regent-k8s/regent/kubefake"
	"github.com/regent-k8s/regent/leader"
	"github.com/regent-k8s/regent/lock"
)

func TestMain(m *testing.M) {
	// klog's flush daemon and the HTTP client's idle connections belong to libraries, not to us.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("k8s.io/klog/v2.(*flushDaemon).run.func1"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"), goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"))
}

func testConfig() Config {
	c := DefaultConfig()
	c.LockName = "app-lock"
	c.HealthAddr = ""
	return c
}

func TestConfigValidationNamesTheFlag(t *testing.T) {
	tests := []struct {
		name     string
		change   func(*Config)
		wantFlag string
	}{
		{name: "no lock name", change: func(c *Config) { c.LockName = "" }, wantFlag: "lock-name"},
		{name: "unknown kind", change: func(c *Config) { c.LockKind = "etcd" }, wantFlag: "lock-kind"},
		{name: "deadline above duration", change: func(c *Config) { c.Timings.RenewDeadline = 20 * time.Second }, wantFlag: "lease-duration"},
		{name: "zero retry period", change: func(c *Config) { c.Timings.RetryPeriod = 0 }, wantFlag: "retry-period"},
		{name: "lock name not an object name", change: func(c *Config) { c.LockName = "My_Lock" }, wantFlag: "lock-name"},
		{name: "namespace not a label", change: func(c *Config) { c.Namespace = "team/a" }, wantFlag: "namespace"},
		{name: "blank identity", change: func(c *Config) { c.Identity = "   " }, wantFlag: "identity"},
		{name: "semaphore without a size", change: func(c *Config) { c.LockKind = KindSemaphore }, wantFlag: "semaphore-size"},
		{name: "semaphore too large", change: func(c *Config) { c.LockKind, c.SemaphoreSize = KindSemaphore, 1001 }, wantFlag: "semaphore-size"},
		{name: "size of a lease", change: func(c *Config) { c.SemaphoreSize = 3 }, wantFlag: "semaphore-size"},
		{name: "semaphore timings", change: func(c *Config) { c.LockKind, c.SemaphoreSize, c.Timings.RetryPeriod = KindSemaphore, 2, 2 }, wantFlag: "retry-period"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig()
			tt.change(&c)
			var fe *FlagError
			if err := c.Validate(); !errors.As(err, &fe) || fe.Flag != tt.wantFlag || !errors.Is(err, ErrInvalidFlag) {
				t.Fatalf("Validate = %v, want an error naming --%s", err, tt.wantFlag)
			}
		})
	}
	if err := testConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
}

func TestConfigFromFlagsAndEnvironment(t *testing.T) {
	t.Setenv("REGENT_LOCK_NAME", "from-env")
	t.Setenv("REGENT_RETRY_PERIOD", "1s")
	c := DefaultConfig()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	c.RegisterFlags(fs)
	if err := fs.Parse([]string{"--lock-kind=configmap", "--lease-duration=30s"}); err != nil {
		t.Fatal(err)
	}
	if c.LockName != "from-env" || c.LockKind != KindConfigMap || c.Timings.LeaseDuration != 30*time.Second || c.Timings.RetryPeriod != time.Second {
		t.Errorf("config = %+v", c)
	}
}

func TestAnUnreadableDurationInTheEnvironmentIsReportedAsGiven(t *testing.T) {
	t.Setenv("REGENT_LEASE_DURATION", "abc")
	c := DefaultConfig()
	c.LockName = "x"
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	c.RegisterFlags(fs)
	if def := fs.Lookup("lease-duration").DefValue; def != lock.DefaultTimings.LeaseDuration.String() {
		t.Errorf("-help shows default %q, want the default duration", def)
	}
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	var fe *FlagError
	if err := c.Validate(); !errors.As(err, &fe) || fe.Flag != "lease-duration" || fe.Value != "abc" || !strings.Contains(err.Error(), `"abc"`) {
		t.Fatalf("Validate = %v, want the text given named", err)
	}
	// The flag, when given, overrides the environment.
	c2 := DefaultConfig()
	c2.LockName = "x"
	fs2 := flag.NewFlagSet("test", flag.ContinueOnError)
	c2.RegisterFlags(fs2)
	if err := fs2.Parse([]string{"--lease-duration=20s"}); err != nil {
		t.Fatal(err)
	}
	if err := c2.Validate(); err != nil || c2.Timings.LeaseDuration != 20*time.Second {
		t.Fatalf("with --lease-duration=20s over a bad environment: %v, %v", err, c2.Timings.LeaseDuration)
	}
}

func TestKubernetesModuleReadsTheKubeconfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	kc := "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: https://10.1.2.3:6443}\ncontexts:\n- name: x\n  context: {cluster: c, user: u, namespace: team}\nusers:\n- name: u\n  user: {token: t}\ncurrent-context: x\n"
	if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Kubeconfig = path
	var client kubernetes.Interface
	var res KubernetesResult
	app := fxtest.New(t, fx.Supply(cfg), Kubernetes, fx.Populate(&client), fx.Invoke(func(p struct {
		fx.In
		KubernetesParams
	}) {
		r, err := NewKubernetes(p.KubernetesParams)
		if err != nil {
			t.Error(err)
		}
		res = r
	}))
	app.RequireStart().RequireStop()
	if client == nil || res.REST.Host != "https://10.1.2.3:6443" || res.REST.BearerToken != "t" {
		t.Errorf("rest config %+v", res.REST)
	}
	if ns, _, _ := res.ClientConfig.Namespace(); ns != "team" {
		t.Errorf("namespace from kubeconfig = %q", ns)
	}
}

// electionApp is an fx app with the election over a fake cluster.
func electionApp(t *testing.T, env *kubefake.Env, cfg Config, opts ...fx.Option) *fxtest.App {
	info := contextinfo.Info{Namespace: "default", PodName: "pod-0"}
	return fxtest.New(t, append([]fx.Option{
		fx.Supply(cfg, info, zaptest.NewLogger(t)),
		fx.Provide(func() kubernetes.Interface { return env.Client }),
		LeaderElection,
	}, opts...)...)
}

func TestGuardedWorkloadRunsAsLeaderAndStopsWithTheApp(t *testing.T) {
	env := kubefake.NewEnv()
	started, stopped := make(chan lock.Token, 1), make(chan struct{})
	work := func(ctx context.Context) error {
		token, _ := leader.TokenFrom(ctx)
		started <- token
		<-ctx.Done()
		close(stopped)
		return nil
	}
	app := electionApp(t, env, testConfig(), GuardedWorkload(work))
	app.RequireStart()
	if tok := kubefake.Receive(t, started, "the work to start"); tok.Seq != 1 {
		t.Errorf("token %v", tok)
	}
	app.RequireStop()
	select {
	case <-stopped:
	default:
		t.Fatal("OnStop returned before the work did")
	}
}

func TestGuardedWorkloadShutsTheAppDown(t *testing.T) {
	forbidden := apierrors.NewForbidden(schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}, "app-lock", errors.New("no"))
	tests := []struct {
		name     string
		work     leader.Work
		forbid   bool
		wantCode int
	}{
		{name: "work finished", work: func(context.Context) error { return nil }, wantCode: 0},
		{name: "work failed", work: func(context.Context) error { return errors.New("broken") }, wantCode: 1},
		{name: "not allowed to lead", work: func(context.Context) error { return nil }, forbid: true, wantCode: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := kubefake.NewEnv()
			if tt.forbid {
				env.React("create", "leases", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, forbidden })
			}
			app := electionApp(t, env, testConfig(), GuardedWorkload(tt.work))
			app.RequireStart()
			sig := kubefake.Receive(t, app.Wait(), "the shutdown")
			if sig.ExitCode != tt.wantCode {
				t.Errorf("exit code %d, want %d", sig.ExitCode, tt.wantCode)
			}
			app.RequireStop()
		})
	}
}

func TestLeaderElectionModuleRejectsBadConfigAndMissingPods(t *testing.T) {
	env := kubefake.NewEnv()
	build := func(cfg Config) error {
		return fx.New(fx.NopLogger,
			fx.Supply(cfg, contextinfo.Info{Namespace: "default"}),
			fx.Provide(func() kubernetes.Interface { return env.Client }),
			LeaderElection, fx.Invoke(func(*leader.Election) {}),
		).Err()
	}
	bad := testConfig()
	bad.LockName = ""
	if err := build(bad); !errors.Is(err, ErrInvalidFlag) {
		t.Errorf("bad config: %v", err)
	}
	forLife := testConfig()
	forLife.LockKind = KindConfigMap // needs a Pod, and the info has none
	if err := build(forLife); !errors.Is(err, contextinfo.ErrPodNameMissing) {
		t.Errorf("for life without a pod: %v", err)
	}
}

func TestMonitoringServesHealthAndMetrics(t *testing.T) {
	env := kubefake.NewEnv()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := testConfig()
	cfg.HealthAddr = addr
	reg := prometheus.NewRegistry()
	var m *Metrics
	app := electionApp(t, env, cfg, fx.Supply(reg), Monitoring, fx.Populate(&m),
		GuardedWorkload(func(ctx context.Context) error { <-ctx.Done(); return nil }))
	app.RequireStart()
	defer app.RequireStop()
	env.Await(t, "leading", func() bool { return testutil.ToFloat64(m.isLeader.WithLabelValues("lease default/app-lock")) == 1 })
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestHealthFailsWhenLeadingWithoutRenewalsOrAfterAnOverrun(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(kubefake.Epoch)
	h := &Health{clock: clk}
	h.SetRenewDeadline(10 * time.Second)
	if h.Check() != nil {
		t.Fatal("not leading should be healthy")
	}
	h.Acquired("l", lock.Token{}, 0)
	clk.SetTime(kubefake.Epoch.Add(14 * time.Second))
	if h.Check() != nil {
		t.Fatal("within the deadline and slack should be healthy")
	}
	clk.SetTime(kubefake.Epoch.Add(16 * time.Second))
	if h.Check() == nil {
		t.Fatal("leading without renewals past the deadline should be unhealthy")
	}
	h.Renewed(lock.Renewal{})
	if h.Check() != nil {
		t.Fatal("a renewal should make it healthy again")
	}
	h.Overran("l", lock.Token{})
	if h.Check() == nil {
		t.Fatal("an overrun should be unhealthy")
	}
	h.Ended("l", lock.Token{}, true, 0)
	if h.Check() != nil {
		t.Fatal("after the term ended it should be healthy")
	}
}

func TestMetricsCountTerms(t *testing.T) {
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	m.Acquired("l", lock.Token{}, time.Second)
	m.Renewed(lock.Renewal{Lock: "l", Latency: time.Millisecond})
	m.Renewed(lock.Renewal{Lock: "l", Err: errors.New("x")})
	m.Overran("l", lock.Token{})
	m.Ended("l", lock.Token{}, true, time.Minute)
	for name, got := range map[string]float64{
		"is_leader":      testutil.ToFloat64(m.isLeader.WithLabelValues("l")),
		"terms_started":  testutil.ToFloat64(m.termsStarted.WithLabelValues("l")),
		"terms_lost":     testutil.ToFloat64(m.termsLost.WithLabelValues("l")),
		"overruns":       testutil.ToFloat64(m.overruns.WithLabelValues("l")),
		"renew_failures": testutil.ToFloat64(m.renewFailures.WithLabelValues("l")),
	} {
		want := 1.0
		if name == "is_leader" {
			want = 0
		}
		if got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

func TestContextInfoModuleLoadsThePod(t *testing.T) {
	t.Setenv("POD_NAME", "pod-0")
	t.Setenv("POD_NAMESPACE", "team")
	env := kubefake.NewEnv(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "pod-0", Namespace: "team", UID: "u"}})
	cfg := testConfig()
	cfg.Namespace = "locks" // the lock's namespace, not the Pod's
	var info contextinfo.Info
	var l lock.Lock
	app := fxtest.New(t,
		fx.Supply(cfg),
		fx.Provide(func() corev1client.PodsGetter { return env.Client.CoreV1() }),
		fx.Provide(func() kubernetes.Interface { return env.Client }),
		ContextInfo, LeaderElection, fx.Populate(&info, &l))
	app.RequireStart().RequireStop()
	if info.Namespace != "team" || info.Pod == nil || info.Pod.UID != "u" {
		t.Errorf("info = %+v", info)
	}
	if l == nil || !strings.Contains(l.String(), "locks/") {
		t.Errorf("lock %v, want a Lease in namespace locks", l)
	}
}

func TestALeaderForLifeLockMustLiveInItsPodsNamespace(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "pod-0", Namespace: "team", UID: "u"}}
	env := kubefake.NewEnv(pod)
	cfg := testConfig()
	cfg.LockKind, cfg.Namespace = KindConfigMap, "locks"
	_, err := NewLeaderElection(LeaderElectionParams{Config: cfg, Info: contextinfo.Info{Namespace: "team", PodName: "pod-0", Pod: pod}, Client: env.Client})
	var fe *FlagError
	if !errors.As(err, &fe) || fe.Flag != "namespace" || !strings.Contains(err.Error(), `"team"`) {
		t.Fatalf("NewLeaderElection = %v, want a FlagError for --namespace naming the Pod's namespace", err)
	}
}

func TestLoggingSendsFxEventsToTheGraphsLogger(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	app := fxtest.New(t, fx.Supply(zap.New(core)), Logging, fx.Invoke(func() {}))
	app.RequireStart().RequireStop()
	if logs.FilterLoggerName("fx").Len() == 0 {
		t.Error("no fx events were logged through zap")
	}
}

func TestGuardedWorkloadOfResolvesTheWorksDependencies(t *testing.T) {
	type greeting string
	env := kubefake.NewEnv()
	got := make(chan string, 1)
	app := electionApp(t, env, testConfig(), fx.Supply(greeting("hello")),
		GuardedWorkloadOf(func(g greeting) leader.Work {
			return func(ctx context.Context) error {
				token, _ := leader.TokenFrom(ctx)
				got <- fmt.Sprintf("%s %d", g, token.Seq)
				<-ctx.Done()
				return nil
			}
		}))
	app.RequireStart()
	if s := kubefake.Receive(t, got, "the work to run"); s != "hello 1" {
		t.Errorf("work saw %q, want hello 1", s)
	}
	app.RequireStop()

	for _, bad := range []any{nil, func() leader.Work { return nil }} {
		err := fx.New(fx.NopLogger, fx.Supply(testConfig(), contextinfo.Info{Namespace: "default", PodName: "pod-0"}),
			fx.Provide(func() kubernetes.Interface { return env.Client }), LeaderElection, GuardedWorkloadOf(bad)).Err()
		var ce *lock.ConfigError
		if !errors.As(err, &ce) || ce.Field != "newWork" {
			t.Errorf("GuardedWorkloadOf(%T) = %v, want a ConfigError naming newWork", bad, err)
		}
	}
}

func TestTimingsGivenForALeaderForLifeLockAreRefused(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "pod-0", Namespace: "default", UID: "u"}}
	env := kubefake.NewEnv(pod)
	cfg := testConfig()
	cfg.LockKind = KindConfigMap
	cfg.Timings.LeaseDuration = 30 * time.Second
	_, err := NewLeaderElection(LeaderElectionParams{Config: cfg, Info: contextinfo.Info{Namespace: "default", PodName: "pod-0", Pod: pod}, Client: env.Client})
	var fe *FlagError
	if !errors.As(err, &fe) || fe.Flag != "lease-duration" {
		t.Fatalf("NewLeaderElection = %v, want a FlagError for --lease-duration", err)
	}
	if DefaultConfig().HealthAddr == ":8080" || DefaultConfig().HealthAddr == ":8081" {
		t.Errorf("HealthAddr defaults to %s, a port of controller-runtime's", DefaultConfig().HealthAddr)
	}
}

func TestSemaphoreFromFlagsAndEnvironment(t *testing.T) {
	t.Setenv("REGENT_LOCK_KIND", "semaphore")
	t.Setenv("REGENT_SEMAPHORE_SIZE", "three")
	c := DefaultConfig()
	c.LockName = "pool"
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	c.RegisterFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	var fe *FlagError
	if err := c.Validate(); !errors.As(err, &fe) || fe.Flag != "semaphore-size" || fe.Value != "three" {
		t.Fatalf("Validate = %v, want the size given in the environment named", err)
	}
	c2 := DefaultConfig()
	c2.LockName = "pool"
	fs2 := flag.NewFlagSet("test", flag.ContinueOnError)
	c2.RegisterFlags(fs2)
	if err := fs2.Parse([]string{"--semaphore-size=3"}); err != nil {
		t.Fatal(err)
	}
	if err := c2.Validate(); err != nil || c2.LockKind != KindSemaphore || c2.SemaphoreSize != 3 {
		t.Fatalf("with --semaphore-size=3 over a bad environment: %v, %+v", err, c2)
	}
}

func TestGuardedWorkloadUnderASemaphore(t *testing.T) {
	env := kubefake.NewEnv()
	cfg := testConfig()
	cfg.LockKind, cfg.SemaphoreSize, cfg.LockName = KindSemaphore, 2, "pool"
	started := make(chan string, 1)
	work := func(ctx context.Context) error {
		l, _ := leader.FromContext(ctx)
		started <- l.Term().Lock()
		<-ctx.Done()
		return nil
	}
	app := electionApp(t, env, cfg, GuardedWorkload(work))
	app.RequireStart()
	if slot := kubefake.Receive(t, started, "the work to start"); !strings.HasPrefix(slot, "lease default/pool-") {
		t.Errorf("the work holds %q, want a slot of the semaphore pool", slot)
	}
	app.RequireStop()
}

func TestMetricsFollowRenewalsAndJeopardy(t *testing.T) {
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	before := float64(time.Now().Unix())
	m.Acquired("l", lock.Token{}, time.Second)
	if got := testutil.ToFloat64(m.lastRenewal.WithLabelValues("l")); got < before {
		t.Errorf("last renewal after acquiring = %v, want the time of the acquisition (>= %v)", got, before)
	}
	m.StateChanged(lock.StateChange{Lock: "l", State: lock.TermAtRisk})
	if got := testutil.ToFloat64(m.atRisk.WithLabelValues("l")); got != 1 {
		t.Errorf("at risk = %v after the term became at risk, want 1", got)
	}
	m.StateChanged(lock.StateChange{Lock: "l", State: lock.TermHealthy})
	if got := testutil.ToFloat64(m.atRisk.WithLabelValues("l")); got != 0 {
		t.Errorf("at risk = %v after the term became healthy, want 0", got)
	}
	m.StateChanged(lock.StateChange{Lock: "l", State: lock.TermAtRisk})
	m.Ended("l", lock.Token{}, true, time.Minute)
	if got := testutil.ToFloat64(m.atRisk.WithLabelValues("l")); got != 0 {
		t.Errorf("at risk = %v after the term ended, want 0", got)
	}
}
