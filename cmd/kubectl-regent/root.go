package main

import (
	"errors"
	"io"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// usageError is a mistake in the command line; the process exits with 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// env is what every command needs: the clients, built from kubectl's flags, and the output.
type env struct {
	flags  *genericclioptions.ConfigFlags
	out    io.Writer
	errOut io.Writer
}

// namespace is "" with all (every namespace: -A), else the namespace of -n, else the
// kubeconfig context's, else "default".
func (e *env) namespace(all bool) (string, error) {
	if all {
		return "", nil
	}
	ns, _, err := e.flags.ToRawKubeConfigLoader().Namespace()
	return ns, err
}

// leases is the namespace the command works in ("" with all) and its Lease client.
func (e *env) leases(all bool) (string, leaseClient, error) {
	ns, err := e.namespace(all)
	if err != nil {
		return "", nil, err
	}
	cs, _, err := e.clients()
	if err != nil {
		return "", nil, err
	}
	return ns, cs.CoordinationV1().Leases(ns), nil
}

func (e *env) clients() (kubernetes.Interface, dynamic.Interface, error) {
	if err := e.haveCluster(); err != nil {
		return nil, nil, err
	}
	cfg, err := e.flags.ToRESTConfig()
	if err != nil {
		return nil, nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	return cs, dyn, err
}

// haveCluster reports a missing kubeconfig plainly, rather than as a refused connection to
// localhost:8080, client-go's last resort.
func (e *env) haveCluster() error {
	if os.Getenv("KUBERNETES_SERVICE_HOST") != "" || (e.flags.APIServer != nil && *e.flags.APIServer != "") {
		return nil
	}
	raw, err := e.flags.ToRawKubeConfigLoader().RawConfig()
	if err != nil {
		return err
	}
	if raw.CurrentContext == "" && (e.flags.Context == nil || *e.flags.Context == "") {
		return errors.New("no cluster to talk to: no kubeconfig with a current context was found (set KUBECONFIG, or pass --kubeconfig or --context)")
	}
	return nil
}

func newRootCommand(out, errOut io.Writer) *cobra.Command {
	e := &env{flags: genericclioptions.NewConfigFlags(true), out: out, errOut: errOut}
	root := &cobra.Command{
		Use:   "kubectl-regent",
		Short: "Show and operate leader-election locks: list, watch, release, hand over",
		Long: `kubectl regent shows and operates the locks of regent: Lease locks (shared with client-go's
leader election), semaphore slots, and leader-for-life ConfigMaps and LeaderLocks.

  kubectl regent list [-A] [-o wide|json|yaml]     the locks and who holds them
  kubectl regent watch LEASE                       a Lease's timeline, live
  kubectl regent release LEASE [--force]           free a Lease whose holder is gone
  kubectl regent handover LEASE --to CANDIDATE     ask the holder to hand over`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// Run by kubectl as "kubectl regent", and so named in help.
		Annotations: map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl regent"},
	}
	root.SetOut(out)
	root.SetErr(errOut)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err.Error()} })
	e.flags.AddFlags(root.PersistentFlags())
	root.AddCommand(newListCommand(e), newWatchCommand(e), newReleaseCommand(e), newHandoverCommand(e))
	return root
}

// exactArgs is cobra.ExactArgs as a usage error.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{"expected " + what}
		}
		return nil
	}
}
