// Package e2e holds the tests that build the gateway binary and drive it
// as a user would: child gateways started on config files, handed over
// from one process to the next, socket-activated, stopped at an open-file
// limit, killed mid-handover, against real etcd members. The readiness
// robustness harness will join them here.
//
// TestMain builds the binary once per run, with the failpoints tag (the
// handover's failpoint, gateway/upgrade) and with -race when the tests
// run with it; the CLI's in-process tests stay beside main.go.
package e2e
