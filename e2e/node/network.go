package node

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// run runs a command and returns its combined output as the error's text on failure.
func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// inNS runs a command inside the node's network namespace.
func inNS(name string, args ...string) error {
	return run("nsenter", append([]string{"--net=/run/netns/" + NetNS, name}, args...)...)
}

// setupNetwork makes the namespace, links it to the host and lets its Pods reach the host.
func setupNetwork() error {
	steps := [][]string{
		{"ip", "netns", "add", NetNS},
		{"ip", "link", "add", hostLink, "type", "veth", "peer", "name", nodeLink},
		{"ip", "link", "set", nodeLink, "netns", NetNS},
		{"ip", "addr", "add", HostIP + linkPrefix, "dev", hostLink},
		{"ip", "link", "set", hostLink, "up"},
	}
	for _, s := range steps {
		if err := run(s[0], s[1:]...); err != nil {
			return fmt.Errorf("node: network: %w", err)
		}
	}
	inside := [][]string{
		{"ip", "link", "set", "lo", "up"},
		{"ip", "addr", "add", NodeIP + linkPrefix, "dev", nodeLink},
		{"ip", "link", "set", nodeLink, "up"},
		{"ip", "route", "add", "default", "via", HostIP},
		{"sysctl", "-qw", "net.ipv4.ip_forward=1"},
		// Pods' traffic to the host leaves with the node's address, so the host needs no route
		// back into the namespace.
		{"iptables", "-t", "nat", "-A", "POSTROUTING", "-s", podCIDR, "-o", nodeLink, "-j", "MASQUERADE"},
	}
	for _, s := range inside {
		if err := inNS(s[0], s[1:]...); err != nil {
			return fmt.Errorf("node: network: %w", err)
		}
	}
	return nil
}

// dnatService sends the kubernetes Service's address to the API server, as kube-proxy would.
func dnatService(apiPort int) error {
	to := HostIP + ":" + strconv.Itoa(apiPort)
	for _, chain := range []string{"PREROUTING", "OUTPUT"} {
		if err := inNS("iptables", "-t", "nat", "-A", chain, "-d", serviceIP+"/32", "-p", "tcp", "--dport", "443", "-j", "DNAT", "--to-destination", to); err != nil {
			return fmt.Errorf("node: service address: %w", err)
		}
	}
	return nil
}

// cleanupLeftovers removes what a node killed before its Stop left behind.
func cleanupLeftovers(log func(string, ...any)) {
	if _, err := os.Stat("/run/netns/" + NetNS); err == nil {
		log("node: removing the network namespace of an earlier run")
		run("ip", "netns", "delete", NetNS)
	}
	run("ip", "link", "delete", hostLink)
	removeCgroups()
}
