// Command pause is the node's sandbox (pause) image: it holds a Pod's namespaces and waits for
// SIGTERM or SIGINT. Images cannot be pulled on the test machines, so the node builds its own.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	<-ch
}
