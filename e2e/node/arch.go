package node

import "runtime"

func goarch() string { return runtime.GOARCH }
