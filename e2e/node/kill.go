package node

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// KillContainer kills a container at once with SIGKILL, as a crash would (CRI StopContainer with
// no grace period); kubelet then restarts it by the Pod's restartPolicy. containerID is the
// Pod status's form, containerd://ID, or the bare ID.
func (n *Node) KillContainer(ctx context.Context, containerID string) error {
	id := containerID
	if _, after, ok := strings.Cut(containerID, "://"); ok {
		id = after
	}
	conn, err := grpc.NewClient("unix://"+n.criSocket(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := runtimeapi.NewRuntimeServiceClient(conn).StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 0}); err != nil {
		return fmt.Errorf("node: kill container %s: %w", id, err)
	}
	return nil
}
