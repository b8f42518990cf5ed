package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	kubeduration "k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/yaml"
)

// outputFormats are the values -o accepts, as kubectl names them.
var outputFormats = []string{"", "wide", "json", "yaml"}

func checkOutput(format string) error {
	for _, f := range outputFormats {
		if format == f {
			return nil
		}
	}
	return usageError{fmt.Sprintf("--output %q: accepted are wide, json and yaml (or none, for the table)", format)}
}

// lockList is what -o json and -o yaml print: the locks, in a kubectl-like list.
type lockList struct {
	Kind  string     `json:"kind"`
	Items []lockView `json:"items"`
}

func printLocks(w io.Writer, format string, views []lockView, allNamespaces bool) error {
	switch format {
	case "json", "yaml":
		if views == nil {
			views = []lockView{}
		}
		b, err := json.MarshalIndent(lockList{Kind: "LockList", Items: views}, "", "    ")
		if err != nil {
			return err
		}
		if format == "yaml" {
			if b, err = yaml.JSONToYAML(b); err != nil {
				return err
			}
		} else {
			b = append(b, '\n')
		}
		_, err = w.Write(b)
		return err
	}
	if len(views) == 0 {
		_, err := fmt.Fprintln(w, "No locks found.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	cols := []string{"NAME", "KIND", "HOLDER", "TOKEN", "HELD FOR", "LAST RENEWAL", "EXPIRES IN"}
	if allNamespaces {
		cols = append([]string{"NAMESPACE"}, cols...)
	}
	if format == "wide" {
		cols = append(cols, "DURATION", "HANDOVER TO", "OWNER")
	}
	fmt.Fprintln(tw, strings.Join(cols, "\t"))
	for _, v := range views {
		row := []string{v.Name, v.Kind, dash(v.Holder), dash(v.Token), age(v.HeldFor), age(v.LastRenewal), age(v.ExpiresIn)}
		if allNamespaces {
			row = append([]string{v.Namespace}, row...)
		}
		if format == "wide" {
			row = append(row, age(v.LeaseDuration), dash(v.HandoverTo), dash(v.Owner))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// age prints a duration as kubectl prints ages (3m5s, 2d4h), with milliseconds below 10 s,
// where they matter for a lease.
func age(d *duration) string {
	switch {
	case d == nil:
		return "-"
	case time.Duration(*d) < 10*time.Second:
		return time.Duration(*d).Round(100 * time.Millisecond).String()
	}
	return kubeduration.HumanDuration(time.Duration(*d))
}
