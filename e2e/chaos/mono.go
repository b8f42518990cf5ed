package chaos

import "golang.org/x/sys/unix"

// Now is the machine's monotonic clock in nanoseconds, comparable across processes.
func Now() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic("chaos: CLOCK_MONOTONIC unavailable: " + err.Error()) // never on Linux
	}
	return ts.Nano()
}
