//go:build linux

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// system is what the faults act on: three etcd members, each in a
// process of its own, and a child gateway in front of them.
type system struct {
	members []*member
	gateway *child
	file    gatewayFile
}

// gatewayFile is the gateway's config file and what it names.
type gatewayFile struct {
	path, addr, sock string
	// moves, set for the faults that move connections, lets the test see
	// and drive them.
	moves *moveAccess
}

// moveAccess is what the move faults add to the config: an admin server
// whose /status counts the moves, a control socket for drain, and a slow
// start short enough that a returning member is rebalanced to within a
// round. The other faults keep the default slow start (30 s), so that
// their runs see no rebalance.
type moveAccess struct {
	admin, control string
}

// startSystem starts the members and a gateway in front of them; moves
// adds moveAccess to its config.
func startSystem(t *testing.T, moves bool) *system {
	t.Helper()
	s := &system{members: startMembers(t, 3)}
	dir := t.TempDir()
	s.file = gatewayFile{path: filepath.Join(dir, "gw.yaml"), addr: testutil.ListenAddr(t), sock: filepath.Join(dir, "upgrade.sock")}
	if moves {
		s.file.moves = &moveAccess{admin: testutil.ListenAddr(t), control: filepath.Join(dir, "control.sock")}
	}
	s.file.write(t, memberAddrs(s.members))
	s.gateway = startUpgradable(t, s.file.path, s.file.addr, s.file.sock)
	return s
}

// write writes the config with the members' addresses in the order
// given, as an editor saves a file (a new file renamed over the old):
// the gateway never reads half of it. Round robin puts the clients on
// every member; checks every second see a fault in a few.
func (f gatewayFile) write(t *testing.T, endpoints []string) {
	t.Helper()
	text := fmt.Sprintf(`log-level: info
log-format: json
shutdown-timeout: 2s
upgrade-socket: %s
%slisteners:
  - name: etcd
    listen-addr: %s
    endpoints: [%s]
    dial-timeout: 1s
    policy: round-robin
    health-check: {interval: 1s, fall: 2, rise: 2}
`, f.sock, f.moves.config(), f.addr, strings.Join(endpoints, ", "))
	tmp := f.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, f.path); err != nil {
		t.Fatal(err)
	}
}

// config is the top-level keys of moveAccess; none when a is nil.
func (a *moveAccess) config() string {
	if a == nil {
		return ""
	}
	return fmt.Sprintf("admin-addr: %s\ncontrol-socket: %s\nslow-start: 1s\n", a.admin, a.control)
}

// revision is the cluster's revision, read through the member at addr.
func revision(t *testing.T, addr string) int64 {
	t.Helper()
	cli := testutil.Client(t, addr)
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, keyPrefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatalf("revision through %s: %v", addr, err)
	}
	return resp.Header.Revision
}
