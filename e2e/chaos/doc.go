// Package chaos holds the referees of the chaos suite: a fencing Sink that the workers write to
// with their term's token, and a Timeline of terms on the machine's monotonic clock with an
// overlap checker. Both are plain data structures, independent of the faults injected and of the
// library under test, so the same checks judge regent and client-go workers.
//
// Times are CLOCK_MONOTONIC nanoseconds (Now). That clock is one for the whole machine, so the
// instants that separate worker processes log can be compared with each other and with the
// harness's own; it does not jump with wall-clock changes.
package chaos
