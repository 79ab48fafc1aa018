// Command demo starts two local etcd clusters on loopback (three members
// and one member), runs the gateway in-process on a config file pointing at
// them, checks that both listeners work, prints commands to try, and runs
// until Ctrl-C.
//
//	go run ./examples/demo
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/gateway"
	"github.com/etcd-gateway/etcd-gateway/internal/etcdtest"
)

func main() {
	var addrs demoAddrs
	checkOnly := defineFlags(flag.CommandLine, &addrs)
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, addrs, *checkOnly); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// demoConfig is the gateway config the demo writes: the two-listener
// example of examples/etcd-gateway.yaml, pointed at the local clusters.
const demoConfig = `# Written by the etcd-gateway demo. Edit it while the demo runs.
log-level: info
admin-addr: %s
retry-delay: 5s
dial-timeout: 1s
listeners:
  - name: main
    listen-addr: %s
    endpoints: [%s]
  - name: events
    listen-addr: %s
    endpoints: [%s]
`

// demoAddrs are the addresses the demo's gateway listens on.
type demoAddrs struct{ main, events, admin string }

// defineFlags defines the demo's flags in fs, filling addrs; the README
// names each of them.
func defineFlags(fs *flag.FlagSet, addrs *demoAddrs) *bool {
	fs.StringVar(&addrs.main, "main-addr", "127.0.0.1:23790", "listen address of the listener in front of the three-member cluster")
	fs.StringVar(&addrs.events, "events-addr", "127.0.0.1:23791", "listen address of the listener in front of the one-member cluster")
	fs.StringVar(&addrs.admin, "admin-addr", "127.0.0.1:23800", "address of the gateway's admin server (/status, /metrics, /healthz)")
	return fs.Bool("check", false, "start everything, check both listeners and the admin server, then exit")
}

func run(ctx context.Context, out io.Writer, addrs demoAddrs, checkOnly bool) error {
	mainAddr, eventsAddr := addrs.main, addrs.events
	dir, err := os.MkdirTemp("", "etcd-gateway-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	fmt.Fprintln(out, "starting etcd cluster \"main\" (3 members) and \"events\" (1 member) on loopback...")
	mainCluster, err := etcdtest.Start(filepath.Join(dir, "main"), 3)
	if err != nil {
		return err
	}
	defer mainCluster.Close()
	eventsCluster, err := etcdtest.Start(filepath.Join(dir, "events"), 1)
	if err != nil {
		return err
	}
	defer eventsCluster.Close()

	path := filepath.Join(dir, "etcd-gateway.yaml")
	text := fmt.Sprintf(demoConfig, addrs.admin, mainAddr, strings.Join(mainCluster.ClientAddrs(), ", "),
		eventsAddr, strings.Join(eventsCluster.ClientAddrs(), ", "))
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		return err
	}
	snap, err := config.Load(path)
	if err != nil {
		return err
	}
	gw, err := gateway.Start(ctx, os.Stderr, snap)
	if err != nil {
		return err
	}
	if err := selfCheck(ctx, out, addrs); err != nil {
		_ = gw.Shutdown()
		return err
	}
	if checkOnly {
		return gw.Shutdown()
	}
	fmt.Fprintf(out, `
The gateway is running on %s. Try (etcdctl from an etcd release):

  ETCDCTL_API=3 etcdctl --endpoints=%s put foo bar
  ETCDCTL_API=3 etcdctl --endpoints=%s get foo
  ETCDCTL_API=3 etcdctl --endpoints=%s get foo   # the other cluster: nothing
  ETCDCTL_API=3 etcdctl --endpoints=%s watch foo

The three "main" members are %s.
The admin server is on http://%s: /status (JSON), /metrics, /healthz.
Edit %s while the demo runs (drop a member from
"main", say): the gateway reloads it live without dropping a connection.
Ctrl-C stops the gateway (draining connections) and both clusters.
`, path, mainAddr, mainAddr, eventsAddr, mainAddr, strings.Join(mainCluster.ClientAddrs(), ", "), addrs.admin, path)
	return gw.Run(ctx, nil, config.WatchOptions{})
}

// selfCheck puts a key through each listener and reads it back, shows
// that the two clusters are separate, and asks the admin server /healthz.
func selfCheck(ctx context.Context, out io.Writer, addrs demoAddrs) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for _, addr := range []string{addrs.main, addrs.events} {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{addr}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			return err
		}
		defer cli.Close()
		key := "demo/" + addr
		if _, err := cli.Put(ctx, key, "hello"); err != nil {
			return fmt.Errorf("put through %s: %w", addr, err)
		}
		resp, err := cli.Get(ctx, "demo/", clientv3.WithPrefix())
		if err != nil {
			return fmt.Errorf("get through %s: %w", addr, err)
		}
		if len(resp.Kvs) != 1 || string(resp.Kvs[0].Key) != key {
			return fmt.Errorf("get through %s: got %d keys, want only %s", addr, len(resp.Kvs), key)
		}
		fmt.Fprintf(out, "check: put and get %s through %s: ok (its cluster holds only its own key)\n", key, addr)
	}
	return checkAdmin(ctx, out, addrs.admin)
}

// checkAdmin asks the admin server's /healthz and prints its address.
func checkAdmin(ctx context.Context, out io.Writer, addr string) error {
	url := "http://" + addr + "/healthz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("admin server: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("admin server: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("admin server: GET %s: %s", url, resp.Status)
	}
	fmt.Fprintf(out, "check: admin server on http://%s: /healthz ok; see /status and /metrics\n", addr)
	return nil
}
