// Package handover moves a running gateway's listening sockets and open
// connections to the next gateway process, so that an upgrade or a restart
// never refuses or resets a connect, and plain connections go on.
//
// One word for the act: a handover. The old process gives, the new one
// receives, by one of two transports:
//
//   - the socket (the `upgrade-socket` key): a conversation between the two
//     running processes (protocol.go, server.go for the old side,
//     receiver.go for the new one, conns.go for the connections);
//   - the store: systemd's file descriptor store, across a stop and a start
//     (fdstore.go), whose descriptors systemd passes beside the socket
//     units' (Systemd, the one owner of LISTEN_FDS).
//
// Both gather the same sockets and connections (give.go) and end the same
// way in the new process (receive.go): the configuration claims the
// sockets it received (Received), and the listeners adopt the connections.
// Export and adopt are the forwarder's two halves of moving one connection
// (forward.ExportBatch, Listener.Adopt); a connection the new process did
// not take is adopted again by the old one.
//
// A build with the failpoints tag can stop either process at a step of
// the socket transport (failpoint.go), so that a test can kill it there.
package handover
