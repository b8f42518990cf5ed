package contextinfo

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
)

// processSuffix is drawn once per process, so that a restarted process never presents the
// identity of its predecessor and silently resumes a term that was not its own.
var processSuffix = randomSuffix()

func randomSuffix() string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand does not fail on supported platforms; the pid still keeps restarts apart.
		return fmt.Sprintf("p%d", os.Getpid())
	}
	return hex.EncodeToString(b)
}

// Identity is a lock holder's name for this process: the Pod name, or outside a cluster the host
// name, followed by "_" and a random suffix drawn once per process.
func (i Info) Identity() string {
	base := i.PodName
	if base == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "localhost"
		}
		base = host
	}
	return base + "_" + processSuffix
}

// DefaultIdentity is the identity of this process as the environment tells it, without reading
// the Pod: POD_NAME (or the host name) plus the per-process suffix.
func DefaultIdentity() string {
	return Info{PodName: os.Getenv(EnvPodName)}.Identity()
}
