package node

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// removeSandboxes stops and removes every Pod sandbox over CRI, so that CNI tears the Pods'
// networks down and containerd unmounts their shm and root filesystems.
func removeSandboxes(socket string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	list, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return err
	}
	for _, sb := range list.Items {
		if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
			return err
		}
		if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
			return err
		}
	}
	return nil
}

// Mounts lists the mount points under dir (deepest first).
func Mounts(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			out = append(out, fields[4])
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// unmountUnder unmounts whatever is still mounted under dir, deepest first.
func unmountUnder(dir string) {
	if dir == "" {
		return
	}
	for _, m := range Mounts(dir) {
		syscall.Unmount(m, syscall.MNT_DETACH)
	}
}

// Cgroups lists the kubepods cgroups left in any hierarchy.
func Cgroups() []string {
	var out []string
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods")
	for _, d := range dirs {
		filepath.Walk(d, func(path string, info os.FileInfo, err error) error {
			if err == nil && info.IsDir() {
				out = append(out, path)
			}
			return nil
		})
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// removeCgroups removes the kubepods cgroups, deepest first (a cgroup with no processes can be
// removed with rmdir).
func removeCgroups() {
	for _, c := range Cgroups() {
		os.Remove(c)
	}
}

// Leftovers lists what a stopped node left behind: mounts under its folder, the folder itself,
// kubepods cgroups, its network namespace or host link, and daemons still running.
func Leftovers(dir string) []string {
	var out []string
	for _, m := range Mounts(dir) {
		out = append(out, "mount "+m)
	}
	if _, err := os.Stat(dir); err == nil {
		out = append(out, "folder "+dir)
	}
	for _, c := range Cgroups() {
		out = append(out, "cgroup "+c)
	}
	if _, err := os.Stat("/run/netns/" + NetNS); err == nil {
		out = append(out, "network namespace "+NetNS)
	}
	if _, err := os.Stat("/sys/class/net/" + hostLink); err == nil {
		out = append(out, "link "+hostLink)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		data, err := os.ReadFile(p)
		if err == nil && dir != "" && strings.Contains(string(data), dir) {
			out = append(out, "process "+strings.ReplaceAll(string(data), "\x00", " "))
		}
	}
	return out
}
