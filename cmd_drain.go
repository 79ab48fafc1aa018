package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/etcd-gateway/etcd-gateway/gateway"
	"github.com/etcd-gateway/etcd-gateway/gateway/control"
)

// answerMargin is how much longer than its timeout a drain's caller waits
// for the answer: the closes at the timeout, and the call itself.
const answerMargin = 15 * time.Second

// newDrainCmd is `etcd-gateway drain`: take a member out of a listener's
// rotation before it is stopped, moving its clients while nothing of
// theirs is in flight rather than breaking them when it goes.
func newDrainCmd() *cobra.Command {
	var path, socket string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "drain LISTENER ENDPOINT",
		Short: "Drain an endpoint of a listener: no new connections; open ones are closed as each falls quiet, those still open at --timeout then; it stays drained (across reloads and handovers) until undrained",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := gateway.ParseDrainTimeout(timeout.String()); err != nil {
				return fmt.Errorf("--timeout: %w", err)
			}
			sock, err := controlSocketOf(path, socket)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout+answerMargin)
			defer cancel()
			req := gateway.DrainRequest{Listener: args[0], Endpoint: args[1], Timeout: timeout.String()}
			var a gateway.DrainAnswer
			if err := control.NewClient(sock).Call(ctx, "drain", req, &a); err != nil {
				return err
			}
			return printDrain(cmd, a)
		},
	}
	configFlag(cmd, &path)
	socketFlag(cmd, &socket)
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait for the open connections to fall quiet before closing those left (at most "+gateway.MaxDrainTimeout.String()+")")
	return cmd
}

// printDrain says what a drain did; an endpoint left holding connections
// is an error.
func printDrain(cmd *cobra.Command, a gateway.DrainAnswer) error {
	fmt.Fprintf(cmd.OutOrStdout(), "listener %q: endpoint %s drained: %d moved while quiet, %d closed at the timeout, %d open\n",
		a.Listener, a.Endpoint, a.Moved, a.Closed, a.Open)
	if a.Open > 0 {
		return fmt.Errorf("listener %q: endpoint %s still holds %d connections", a.Listener, a.Endpoint, a.Open)
	}
	return nil
}

// newUndrainCmd is `etcd-gateway undrain`: a drained member back in
// rotation, once it runs again.
func newUndrainCmd() *cobra.Command {
	var path, socket string
	cmd := &cobra.Command{
		Use:   "undrain LISTENER ENDPOINT",
		Short: "Let a drained endpoint of a listener take new connections again",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			sock, err := controlSocketOf(path, socket)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), answerMargin)
			defer cancel()
			var a gateway.UndrainAnswer
			if err := control.NewClient(sock).Call(ctx, "undrain", gateway.UndrainRequest{Listener: args[0], Endpoint: args[1]}, &a); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "listener %q: endpoint %s undrained: it takes new connections\n", a.Listener, a.Endpoint)
			return nil
		},
	}
	configFlag(cmd, &path)
	socketFlag(cmd, &socket)
	return cmd
}

// controlSocketOf is where a control command calls, from its --config
// and --control-socket flags.
func controlSocketOf(pathFlag, socketFlag string) (string, error) {
	path, named := configPath(pathFlag)
	return controlPath(socketFlag, path, named)
}
