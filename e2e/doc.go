// Package e2e holds the tests that build the gateway binary and drive it
// as a user would: child gateways started on config files, handed over
// from one process to the next, socket-activated, stopped at an open-file
// limit, killed mid-handover, against real etcd members.
//
// TestMain builds the binary once per run, with the failpoints tag (the
// handover's failpoint, gateway/handover) and with -race when the tests
// run with it; the CLI's in-process tests stay beside main.go.
//
// TestRobustness (robustness_*_test.go) tests the gateway as etcd's
// tests/robustness test etcd: clients put, read and watch through a child
// gateway in front of three etcd members, each a process of its own (the
// test binary re-executed as one member, memberEnv), while a fault
// strikes: a member killed and restarted, a member frozen, a reload, a
// handover, a learner added, promoted and removed, a member cut off from
// its peers (peerNet) until it has no leader, a member killed and
// restarted until the gateway rebalances connections back to it
// (rebalanceMember), the busiest member drained by `etcd-gateway drain`
// and undrained (drainMember). Then the history must be
// linearizable (porcupine, a register per key) and every watch must have
// delivered the members' events once each, in order, none lost. A fault
// is a func (fault). The traffic runs for -robustness.duration under each fault, a few
// seconds by default, for CI; a soak is
//
//	go test ./e2e -run Robustness -robustness.duration=5m -timeout 40m
//
// and -artifacts keeps porcupine's drawing of a history that fails.
// TestRobustnessChecker* feed the checks hand-made violations.
//
// TestFleetRollingRestart (fleet_test.go) runs fleets of child gateways,
// sticky-random, each with a watching client, through a rolling restart
// of three members: every member must end with a gateway.
package e2e
