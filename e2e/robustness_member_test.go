//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"go.etcd.io/etcd/server/v3/embed"
)

// memberConfig is what the test binary, run as an etcd member, is told
// through memberEnv: the member's name, data, addresses and cluster. The
// test holds the addresses (testutil.ListenAddr), so a killed member's
// ports refuse connects and nobody else takes them before its restart.
type memberConfig struct {
	Name           string `json:"name"`
	Dir            string `json:"dir"`
	ClientURL      string `json:"client-url"`
	PeerURL        string `json:"peer-url"`
	InitialCluster string `json:"initial-cluster"`
	Token          string `json:"token"`
	// AdvertisePeerURL, when set, is the peer URL the cluster knows the
	// member by, a relay in front of PeerURL (peerNet).
	AdvertisePeerURL string `json:"advertise-peer-url,omitempty"`
	// Existing says that the member joins a running cluster (a learner
	// added by MemberAddAsLearner), not one that starts with it.
	Existing bool `json:"existing,omitempty"`
}

// runMember, in the test binary run as an etcd member, serves as the
// member config describes until the process is killed.
func runMember(config string) {
	var c memberConfig
	if err := json.Unmarshal([]byte(config), &c); err != nil {
		exitWith("etcd member", fmt.Errorf("%s: %w", memberEnv, err))
	}
	cfg, err := c.embed()
	if err != nil {
		exitWith("etcd member "+c.Name, err)
	}
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		exitWith("etcd member "+c.Name, err)
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		exitWith("etcd member "+c.Name, err)
	}
	exitWith("etcd member "+c.Name, <-e.Err())
}

// embed is the member's embed.Config, tuned as internal/etcdtest tunes
// its in-process members: quick elections, no fsync (a killed process
// loses nothing the kernel has), and a log of warnings in its directory.
func (c memberConfig) embed() (*embed.Config, error) {
	cu, err := url.Parse(c.ClientURL)
	if err != nil {
		return nil, fmt.Errorf("client URL: %w", err)
	}
	pu, err := url.Parse(c.PeerURL)
	if err != nil {
		return nil, fmt.Errorf("peer URL: %w", err)
	}
	cfg := embed.NewConfig()
	cfg.Name, cfg.Dir = c.Name, filepath.Join(c.Dir, "data")
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	if c.AdvertisePeerURL != "" {
		au, err := url.Parse(c.AdvertisePeerURL)
		if err != nil {
			return nil, fmt.Errorf("advertised peer URL: %w", err)
		}
		cfg.AdvertisePeerUrls = []url.URL{*au}
	}
	cfg.InitialCluster, cfg.InitialClusterToken = c.InitialCluster, c.Token
	cfg.ClusterState = embed.ClusterStateFlagNew
	if c.Existing {
		cfg.ClusterState = embed.ClusterStateFlagExisting
	}
	cfg.UnsafeNoFsync = true
	cfg.TickMs, cfg.ElectionMs = 50, 500
	cfg.LogLevel, cfg.LogOutputs = "warn", []string{filepath.Join(c.Dir, "etcd.log")}
	return cfg, nil
}

// memberCommand runs the test binary as the member c. The member dies
// with the test process (Pdeathsig): a test that panics or times out
// runs no cleanup, and must not leave etcd members running.
func memberCommand(t *testing.T, c memberConfig) *exec.Cmd {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), memberEnv+"="+string(b), raceExitEnv())
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}
