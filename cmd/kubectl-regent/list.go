package main

import (
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func newListCommand(e *env) *cobra.Command {
	var output string
	var all bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls", "get"},
		Short:   "List the locks and who holds them",
		Long: `List the locks of a namespace (-n, default: the context's) or of all (-A): Lease locks
(regent's and client-go's), semaphores and their slots, leader-for-life ConfigMaps and LeaderLocks.

HELD FOR and LAST RENEWAL come from the times the holder wrote, read by this machine's clock;
EXPIRES IN is the record's duration after its last renewal, by the same clocks, so skew between
the holder's clock and this one shifts it. Candidates judge expiry by watching instead: see
'kubectl regent watch'.

RBAC: list on leases (and on configmaps and leaderlocks.regent.dev, where allowed).`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			ns, err := e.namespace(all)
			if err != nil {
				return err
			}
			cs, dyn, err := e.clients()
			if err != nil {
				return err
			}
			views, err := listLocks(cmd.Context(), cs, dyn, ns, time.Now())
			if err != nil {
				return err
			}
			slices.SortFunc(views, func(a, b lockView) int {
				return strings.Compare(a.Namespace+"/"+a.Name+"/"+a.Kind, b.Namespace+"/"+b.Name+"/"+b.Kind)
			})
			return printLocks(e.out, output, views, all)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: wide, json or yaml")
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "list the locks of every namespace")
	return cmd
}
