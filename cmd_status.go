package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/gateway"
)

// newStatusCmd is `etcd-gateway status`: the running gateway's /status as
// tables, for a person on the host, as `haproxy show stat` or `kubectl
// get`; -o json prints /status as it is, for a script.
func newStatusCmd() *cobra.Command {
	var path, adminAddr, output string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the running gateway's listeners and endpoints, read from its admin server's /status",
		Long: "Show the running gateway's listeners and endpoints, read from its admin server's /status.\n" +
			"The admin address is --admin-addr, else the admin-addr of the config file (--config, $ETCD_GATEWAY_CONFIG, or " +
			config.DefaultConfigPath + ").",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("-o %q: want text or json", output)
			}
			addr, from, err := statusAddr(cmd, path, adminAddr)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			body, err := fetchStatus(ctx, addr)
			if err != nil {
				return fmt.Errorf("%w (admin address %s, from %s)", err, addr, from)
			}
			if output == "json" {
				_, err := cmd.OutOrStdout().Write(body)
				return err
			}
			var st gateway.Status
			if err := json.Unmarshal(body, &st); err != nil {
				return fmt.Errorf("http://%s/status did not answer a gateway's status: %w", addr, err)
			}
			printStatus(cmd.OutOrStdout(), st, time.Now())
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&adminAddr, "admin-addr", "", "the admin server's address (default: admin-addr from the config file)")
	fl.StringVar(&path, "config", "", "config file whose admin-addr to use")
	fl.StringVarP(&output, "output", "o", "text", "text (tables) or json (/status as it is)")
	fl.DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for the admin server")
	return cmd
}

// statusAddr finds the admin server's address: --admin-addr, else the
// config file's admin-addr. An unspecified host (":23800", "0.0.0.0")
// means the gateway listens on every address: loopback reaches it. It also
// says where the address came from, for errors.
func statusAddr(cmd *cobra.Command, path, flag string) (addr, from string, err error) {
	if flag != "" {
		addr, from = flag, "--admin-addr"
	} else {
		if path == "" {
			path = os.Getenv("ETCD_GATEWAY_CONFIG")
		}
		if path == "" {
			if _, err := os.Stat(config.DefaultConfigPath); err != nil {
				return "", "", fmt.Errorf("no admin address: give --admin-addr, or --config with the gateway's config file (%s does not exist)", config.DefaultConfigPath)
			}
			path = config.DefaultConfigPath
		}
		snap, err := config.Load(path)
		if err != nil {
			return "", "", err
		}
		if snap.AdminAddr == "" {
			return "", "", fmt.Errorf("the admin server is off: %s sets no admin-addr (set one, e.g. admin-addr: 127.0.0.1:23800, and the gateway applies it live)", path)
		}
		addr, from = snap.AdminAddr, "admin-addr in "+path
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", "", fmt.Errorf("admin address %q (from %s): %w", addr, from, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return net.JoinHostPort(host, port), from, nil
}

// fetchStatus GETs http://addr/status.
func fetchStatus(ctx context.Context, addr string) ([]byte, error) {
	url := "http://" + addr + "/status"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, fmt.Errorf("can't reach the admin server: %w: is the gateway running, with this admin-addr?", op)
		}
		return nil, fmt.Errorf("can't read %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
}

// printStatus writes st as a header and two aligned tables: the listeners,
// then every endpoint; a third lists host names when DNS has a say.
func printStatus(w io.Writer, st gateway.Status, now time.Time) {
	printHeader(w, st, now)
	fmt.Fprintln(w)
	table(w, "LISTENER\tADDRESS\tSOURCE\tUP\tOPEN\tTOTAL\tREJECTED\tMAX\tTO UPSTREAM\tTO CLIENT", listenerRows(st))
	for _, ls := range st.Listeners {
		if ls.Waiting != "" {
			fmt.Fprintf(w, "listener %s can't serve new clients: %s\n", ls.Name, ls.Waiting)
		}
	}
	fmt.Fprintln(w)
	table(w, "LISTENER\tENDPOINT\tSTATE\tHEALTH\tSINCE\tOPEN\tTOTAL\tDIAL ERRORS\tREASON", endpointRows(st, now))
	if names := nameRows(st); len(names) > 0 {
		fmt.Fprintln(w)
		table(w, "LISTENER\tHOST NAME\tDNS\tADDRESSES\tANSWER AGE\tLAST ERROR", names)
	}
}

// printHeader prints the version, uptime, health and last reload.
func printHeader(w io.Writer, st gateway.Status, now time.Time) {
	fmt.Fprintf(w, "etcd-gateway %s, up %s", st.Version, shortDuration(time.Duration(st.UptimeSeconds*float64(time.Second))))
	if st.ConfigFile != "" {
		fmt.Fprintf(w, ", config %s", st.ConfigFile)
	}
	fmt.Fprintln(w)
	health := "ok"
	if !st.Healthy {
		health = "UNHEALTHY: " + st.Health
	}
	fmt.Fprintf(w, "health: %s\n", health)
	r := st.Reload
	fmt.Fprintf(w, "last reload: %s", r.LastResult)
	if r.LastAt != nil {
		fmt.Fprintf(w, " %s ago", shortDuration(now.Sub(*r.LastAt)))
	}
	fmt.Fprintf(w, " (%d applied, %d rejected, %d unchanged)\n", r.Applied, r.Rejected, r.Unchanged)
	if r.LastError != "" {
		fmt.Fprintf(w, "  error: %s\n", strings.ReplaceAll(r.LastError, "\n", "\n         "))
	}
}

// table prints rows under header, columns aligned.
func table(w io.Writer, header string, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, row := range rows {
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	_ = tw.Flush()
}

func listenerRows(st gateway.Status) [][]string {
	var rows [][]string
	for _, ls := range st.Listeners {
		up := 0
		for _, ep := range ls.Endpoints {
			if ep.State == "active" {
				up++
			}
		}
		source := "static"
		if ls.Source.Type == "srv" {
			source = "srv:" + ls.Source.Domain
		}
		maxConns := "-"
		if ls.MaxConnections > 0 {
			maxConns = strconv.FormatInt(ls.MaxConnections, 10)
		}
		rows = append(rows, []string{ls.Name, ls.Address, source, fmt.Sprintf("%d/%d", up, len(ls.Endpoints)),
			fmt.Sprint(ls.OpenConnections), fmt.Sprint(ls.TotalConnections), fmt.Sprint(ls.RejectedConnections),
			maxConns, sizeBytes(ls.BytesToUpstream), sizeBytes(ls.BytesToClient)})
	}
	return rows
}

func endpointRows(st gateway.Status, now time.Time) [][]string {
	var rows [][]string
	for _, ls := range st.Listeners {
		for _, ep := range ls.Endpoints {
			state, since := "up", "-"
			switch {
			case ep.Drained:
				state = "drained"
			case ep.State != "active":
				state = "DOWN"
			}
			if ep.Since != nil {
				since = shortDuration(now.Sub(*ep.Since))
			}
			rows = append(rows, []string{ls.Name, ep.Address, state, ep.Health, since, fmt.Sprint(ep.OpenConnections),
				fmt.Sprint(ep.TotalConnections), fmt.Sprint(ep.DialErrors), orDash(strings.ReplaceAll(ep.Reason, "\n", " "))})
		}
	}
	return rows
}

func nameRows(st gateway.Status) [][]string {
	var rows [][]string
	for _, ls := range st.Listeners {
		if ls.DNS == nil {
			continue
		}
		for _, n := range ls.DNS.Names {
			age := "-"
			if n.ResolvedAt != nil {
				age = shortDuration(time.Duration(n.AgeSeconds * float64(time.Second)))
			}
			rows = append(rows, []string{ls.Name, n.Name, n.State, strings.Join(n.Addresses, ","), age, orDash(n.LastError)})
		}
	}
	return rows
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// shortDuration is d as kubectl prints ages: 45s, 3m12s, 5h3m, 2d4h.
func shortDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < time.Hour:
		return fmt.Sprintf("%dm%ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd%dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
}

// sizeBytes is n in binary units: 912B, 1.2KiB, 3.4MiB.
func sizeBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatUint(n, 10) + "B"
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
