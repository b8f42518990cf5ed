// Command configmap-operator is a controller-runtime operator whose controller runs under a
// regent election (integrations/regentctrl): run three replicas; every replica runs the manager
// (cache, health probes, metrics), and only the leader reconciles. It annotates each ConfigMap
// labelled regent.dev/example=operator with the Pod that reconciled it and the term's fencing
// token.
//
// It is a module of its own, so that the core's go.mod does not depend on controller-runtime.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/regent-k8s/regent/contextinfo"
	"github.com/regent-k8s/regent/integrations/regentctrl"
	"github.com/regent-k8s/regent/leader"
	"github.com/regent-k8s/regent/lock"
)

const selector = "regent.dev/example=operator"

func main() {
	lockName := flag.String("lock-name", "configmap-operator", "name of the Lease")
	flag.Parse()
	ctrl.SetLogger(zap.New())
	log := ctrl.Log.WithName("configmap-operator")
	if err := run(*lockName); err != nil {
		log.Error(err, "stopped")
		os.Exit(1)
	}
}

func run(lockName string) error {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return err
	}
	ns := os.Getenv(contextinfo.EnvPodNamespace)
	if ns == "" {
		return fmt.Errorf("%s is not set (the downward API sets it in the Deployment)", contextinfo.EnvPodNamespace)
	}
	sel, err := labels.Parse(selector)
	if err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		LeaderElection:         false, // regent's election decides where the controller runs
		HealthProbeBindAddress: ":8081",
		Cache:                  cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}, DefaultLabelSelector: sel},
	})
	if err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	// The lock's own client (the manager has its own too): a renewal never waits behind the
	// reconciler's requests in a shared client-side rate limiter.
	lockClient, err := kubernetes.NewForConfig(rest.CopyConfig(cfg))
	if err != nil {
		return err
	}
	lease, err := lock.NewLease(lockClient.CoordinationV1(), ns, lockName)
	if err != nil {
		return err
	}
	election, err := leader.New(lease)
	if err != nil {
		return err
	}
	pod := os.Getenv(contextinfo.EnvPodName)
	err = regentctrl.Add(mgr, election, func(ctx context.Context, mgr manager.Manager) ([]controller.Controller, error) {
		c, err := regentctrl.NewController("configmaps", controller.Options{Reconciler: &annotator{client: mgr.GetClient(), pod: pod}})
		if err != nil {
			return nil, err
		}
		return []controller.Controller{c}, c.Watch(source.Kind(mgr.GetCache(), &corev1.ConfigMap{}, &handler.TypedEnqueueRequestForObject[*corev1.ConfigMap]{}))
	})
	if err != nil {
		return err
	}
	return mgr.Start(ctrl.SetupSignalHandler())
}

// annotator records on each ConfigMap which Pod reconciled it, in which term.
type annotator struct {
	client client.Client
	pod    string
}

func (a *annotator) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	token, _ := leader.TokenFrom(ctx) // the term's fencing token, in every Reconcile
	var cm corev1.ConfigMap
	if err := a.client.Get(ctx, req.NamespacedName, &cm); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	want := fmt.Sprintf("%s token %d", a.pod, token.Seq)
	if cm.Annotations["regent.dev/reconciled-by"] == want {
		return reconcile.Result{}, nil
	}
	if cm.Annotations == nil {
		cm.Annotations = map[string]string{}
	}
	cm.Annotations["regent.dev/reconciled-by"] = want
	ctrl.LoggerFrom(ctx).Info("reconciled", "configmap", req.Name, "token", token.Seq)
	return reconcile.Result{}, a.client.Update(ctx, &cm)
}
