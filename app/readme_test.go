package app_test

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"log"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/fx"
	"go.uber.org/zap"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/regent-k8s/regent/app"
	"github.com/regent-k8s/regent/leader"
	"github.com/regent-k8s/regent/lock"
)

// The README's Go snippets, verbatim, so that they compile as they stand;
// TestTheReadmeSnippetsAreHere checks that each one is in this file. They are compiled, not run.

func readmeQuickstart() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG")) // in a Pod: in-cluster
	if err != nil {
		log.Fatal(err)
	}
	client := kubernetes.NewForConfigOrDie(cfg) // the work's client
	// The lock gets a client of its own, so that a renewal never waits behind the work's
	// requests in the work's client-side rate limiter.
	lockClient := kubernetes.NewForConfigOrDie(rest.CopyConfig(cfg))

	l, err := lock.NewLease(lockClient.CoordinationV1(), "default", "my-singleton")
	if err != nil {
		log.Fatal(err)
	}
	election, err := leader.New(l)
	if err != nil {
		log.Fatal(err)
	}

	work := func(ctx context.Context) error {
		token, _ := leader.TokenFrom(ctx) // pass to stores that fence stale writers
		log.Printf("leading with token %v", token)
		_ = client   // do the work with the work's client ...
		<-ctx.Done() // ... until leadership is lost or ctx ends
		return nil
	}
	err = leader.RetryOnLost(election.AsLeader(work))(ctx)
	if err != nil && !errors.Is(err, context.Canceled) { // Canceled: stopped by SIGTERM, a clean stop
		log.Fatal(err)
	}
}

func readmeInAnFxApplication(work leader.Work) {
	cfg := app.DefaultConfig()
	cfg.LockName = "my-singleton"
	cfg.RegisterFlags(flag.CommandLine) // --lock-kind, --lease-duration, ... and their env variables
	flag.Parse()

	fx.New(
		app.ProductionLogger, app.Logging, // or your own *zap.Logger
		fx.Supply(cfg),
		app.Kubernetes, app.ContextInfo, app.LeaderElection, app.Monitoring,
		app.GuardedWorkload(work), // runs as leader, retried on lost leadership, stopped with the app
	).Run()
}

func readmeGuardedWorkloadOf() fx.Option {
	return fx.Options(
		app.GuardedWorkloadOf(func(db *sql.DB, log *zap.Logger) leader.Work {
			return func(ctx context.Context) error { return reconcile(ctx, db, log) }
		}),
	)
}

func reconcile(context.Context, *sql.DB, *zap.Logger) error { return nil }

var _, _, _ = readmeQuickstart, readmeInAnFxApplication, readmeGuardedWorkloadOf

func TestTheReadmeSnippetsAreHere(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	here, err := os.ReadFile("readme_test.go")
	if err != nil {
		t.Fatal(err)
	}
	normalize := func(s string) string {
		var lines []string
		for _, l := range strings.Split(s, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				lines = append(lines, l)
			}
		}
		return strings.Join(lines, "\n")
	}
	body := normalize(string(here))
	blocks := regexp.MustCompile("(?s)```go\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	if len(blocks) == 0 {
		t.Fatal("no Go snippets in the README")
	}
	for i, b := range blocks {
		if !strings.Contains(body, normalize(b[1])) {
			t.Errorf("README snippet %d is not in readme_test.go, so nothing compiles it:\n%s", i+1, b[1])
		}
	}
}
