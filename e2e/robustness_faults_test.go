//go:build linux

package e2e

import (
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// How long a fault lasts: that is the fault, not a wait for something.
const (
	killedFor = time.Second     // a killed member stays down
	frozenFor = 4 * time.Second // past the checks' verdict (interval × fall)
)

// A fault disturbs the system while the traffic runs and returns once
// the system is whole again (the member restarted, the new gateway
// serving). round counts the injections of one run, from 0, for a fault
// that takes the members in turn or alternates between ways.
//
// A new fault is one more func of this type in robustnessFaults.
type fault func(t *testing.T, s *system, round int)

// namedFault is a fault and the name of its subtest; moves says that it
// needs the gateway's moves seen and driven (moveAccess).
type namedFault struct {
	name   string
	inject fault
	moves  bool
}

// robustnessFaults lists the faults TestRobustness runs, each in a
// subtest of its own.
func robustnessFaults() []namedFault {
	return []namedFault{
		{"kill", killMember, false},
		{"freeze", freezeMember, false},
		{"reload", reloadGateway, false},
		{"handover", handOver, false},
		{"learner", addLearner, false},
		{"leaderless", leaderlessMember, false},
		{"rebalance", rebalanceMember, true},
		{"drain", drainMember, true},
	}
}

// killMember kills a member with SIGKILL and restarts it on its data.
func killMember(t *testing.T, s *system, round int) {
	m := s.members[round%len(s.members)]
	m.kill(t)
	time.Sleep(killedFor)
	m.restart(t)
}

// freezeMember stops a member with SIGSTOP and lets it go on with
// SIGCONT: meanwhile its kernel still accepts and ACKs, the process
// answers nothing.
func freezeMember(t *testing.T, s *system, round int) {
	m := s.members[round%len(s.members)]
	m.signal(t, syscall.SIGSTOP)
	time.Sleep(frozenFor)
	m.signal(t, syscall.SIGCONT)
	m.waitServes(t)
}

// reloadGateway saves the config with the same members in another order
// and waits until the gateway has applied it.
func reloadGateway(t *testing.T, s *system, round int) {
	addrs := memberAddrs(s.members)
	n := (round + 1) % len(addrs)
	s.file.write(t, slices.Concat(addrs[n:], addrs[:n]))
	testutil.WaitFor(t, fmt.Sprintf("reload %d to be applied", round+1), 10*time.Second, func() bool {
		return len(s.gateway.logLines("config reloaded")) == round+1
	})
}

// handOver starts a new gateway on the same config, which takes over the
// listener and the open connections from the running one, as the
// upgrade tests do, and waits until the old one has exited.
func handOver(t *testing.T, s *system, round int) {
	next := startChild(t, s.file.path, s.file.addr, 0)
	next.tookOver(t)
	s.gateway.waitExit(t, fmt.Sprintf("the old gateway of handover %d", round+1))
	s.gateway = next
}
