package config

import (
	"errors"
	"fmt"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// The kinds of listen-addr, as SplitListenAddr returns them.
const (
	// NetworkTCP is a host:port.
	NetworkTCP = "tcp"
	// NetworkUnix is unix:///path, a unix socket the gateway creates.
	NetworkUnix = "unix"
	// NetworkSystemd is systemd:NAME, the listening socket systemd passed
	// with FileDescriptorName=NAME (socket activation).
	NetworkSystemd = "systemd"
)

// The prefixes of the listen addresses that are not host:port.
const (
	unixPrefix    = "unix://"
	systemdPrefix = "systemd:"
)

// maxSocketPath is the longest path of a unix socket: sun_path holds 108
// bytes on Linux, the last a NUL.
const maxSocketPath = 107

// SplitListenAddr returns the kind of a valid listen address (NetworkTCP,
// NetworkUnix or NetworkSystemd) and what follows the prefix: host:port,
// the socket's path, or systemd's name of the socket.
func SplitListenAddr(addr string) (network, address string) {
	if p, ok := strings.CutPrefix(addr, unixPrefix); ok {
		return NetworkUnix, p
	}
	if n, ok := strings.CutPrefix(addr, systemdPrefix); ok {
		return NetworkSystemd, n
	}
	return NetworkTCP, addr
}

// checkLocalAddr checks a unix:// or systemd: listen address; ok is false
// when addr is neither (a host:port, checked by the caller).
func checkLocalAddr(addr string) (ok bool, err error) {
	network, rest := SplitListenAddr(addr)
	switch network {
	case NetworkUnix:
		switch {
		case !filepath.IsAbs(rest):
			return true, fmt.Errorf("%q: the socket's path must be absolute: write unix:///run/etcd-gateway/main.sock", addr)
		case len(rest) > maxSocketPath:
			return true, fmt.Errorf("%q: a unix socket's path has at most %d bytes, this one %d", addr, maxSocketPath, len(rest))
		case strings.ContainsRune(rest, 0) || strings.HasSuffix(rest, "/"):
			return true, fmt.Errorf("%q is not a file path", addr)
		}
		return true, nil
	case NetworkSystemd:
		if rest == "" || len(rest) > 255 || strings.ContainsAny(rest, ": \t\n") {
			return true, fmt.Errorf("%q: write systemd:NAME, NAME as in FileDescriptorName= of the socket unit (up to 255 characters, no ':' or space)", addr)
		}
		return true, nil
	}
	if strings.HasPrefix(strings.ToLower(addr), "unix:") {
		return true, fmt.Errorf("%q: write a unix socket as unix:///absolute/path", addr)
	}
	return false, nil
}

// ParseSocketMode parses socket-mode: an octal string from 0 to 0777.
func ParseSocketMode(s string) (uint32, error) {
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || m > 0o777 {
		return 0, fmt.Errorf("%q is not a file mode: write an octal string from \"0\" to \"0777\", e.g. \"0660\"", s)
	}
	return uint32(m), nil
}

// LookupUID returns the user id of a user name or number, as
// socket-owner and allowed-uids hold them.
func LookupUID(s string) (uint32, error) {
	return lookupID(s, "user", func(name string) (string, error) {
		u, err := user.Lookup(name)
		if err != nil {
			return "", err
		}
		return u.Uid, nil
	})
}

// LookupGID returns the group id of a group name or number, as
// socket-group and allowed-gids hold them.
func LookupGID(s string) (uint32, error) {
	return lookupID(s, "group", func(name string) (string, error) {
		g, err := user.LookupGroup(name)
		if err != nil {
			return "", err
		}
		return g.Gid, nil
	})
}

// lookupID returns s as a number, or the number look gives for the name
// s; what is "user" or "group", for the errors.
func lookupID(s, what string, look func(string) (string, error)) (uint32, error) {
	if s == "" {
		return 0, fmt.Errorf("empty %s name", what)
	}
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		return uint32(n), nil
	}
	id, err := look(s)
	if err != nil {
		var unknownUser user.UnknownUserError
		var unknownGroup user.UnknownGroupError
		if errors.As(err, &unknownUser) || errors.As(err, &unknownGroup) {
			return 0, fmt.Errorf("no %s %q on this host", what, s)
		}
		return 0, fmt.Errorf("%s %q: %w", what, s, err)
	}
	n, err := strconv.ParseUint(id, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%s %q has id %q, not a number", what, s, id)
	}
	return uint32(n), nil
}

// SocketPerms is what a unix socket listener's file is set to.
type SocketPerms struct {
	// Mode is the file's permission bits.
	Mode uint32
	// UID and GID are the file's owner and group; -1 leaves the
	// gateway's.
	UID, GID int
}

// SocketPerms returns the mode, owner and group of l's socket file, names
// looked up now. The error is a *KeyError naming the key.
func (l Listener) SocketPerms() (SocketPerms, error) {
	p := SocketPerms{UID: -1, GID: -1}
	var err error
	if p.Mode, err = ParseSocketMode(l.SocketMode); err != nil {
		return p, &KeyError{Key: keySocketMode, Err: err}
	}
	if l.SocketOwner != "" {
		uid, err := LookupUID(l.SocketOwner)
		if err != nil {
			return p, &KeyError{Key: keySocketOwner, Err: err}
		}
		p.UID = int(uid)
	}
	if l.SocketGroup != "" {
		gid, err := LookupGID(l.SocketGroup)
		if err != nil {
			return p, &KeyError{Key: keySocketGroup, Err: err}
		}
		p.GID = int(gid)
	}
	return p, nil
}

// PeerIDs returns l's allow-lists as numbers, names looked up now; both
// nil when l lets anyone in. The error is a *KeyError naming the key.
func (l Listener) PeerIDs() (uids, gids []uint32, err error) {
	for _, s := range l.AllowedUIDs {
		id, err := LookupUID(s)
		if err != nil {
			return nil, nil, &KeyError{Key: keyAllowedUIDs, Err: err}
		}
		uids = append(uids, id)
	}
	for _, s := range l.AllowedGIDs {
		id, err := LookupGID(s)
		if err != nil {
			return nil, nil, &KeyError{Key: keyAllowedGIDs, Err: err}
		}
		gids = append(gids, id)
	}
	return uids, gids, nil
}

// validateSocketKeys checks the keys of unix socket listeners: the socket
// file's keys only with unix://, the allow-lists not on TCP, and the
// names' syntax.
func validateSocketKeys(c *collector, i int, l *Listener) {
	network, _ := SplitListenAddr(l.ListenAddr)
	addrBad := c.isBad(i, keyListenAddr)
	only := func(key string, set bool, why string) {
		if set && !addrBad && !c.isBad(i, key) {
			c.add(i, key, "%s", why)
			c.markBad(i, key)
		}
	}
	fileKey := "only valid with a unix:// listen-addr: it sets the socket file the gateway creates"
	if network == NetworkSystemd {
		fileKey = "not valid with a systemd: listen-addr: systemd creates the socket; set SocketMode=, SocketUser= and SocketGroup= in the socket unit"
	}
	only(keySocketMode, network != NetworkUnix && l.SocketMode != DefaultSocketMode, fileKey)
	only(keySocketOwner, network != NetworkUnix && l.SocketOwner != "", fileKey)
	only(keySocketGroup, network != NetworkUnix && l.SocketGroup != "", fileKey)
	const tcpLists = "not valid on a TCP listener: the gateway learns who connects only on a unix socket (SO_PEERCRED): use a unix socket, listen-addr: unix:///path"
	only(keyAllowedUIDs, network == NetworkTCP && len(l.AllowedUIDs) > 0, tcpLists)
	only(keyAllowedGIDs, network == NetworkTCP && len(l.AllowedGIDs) > 0, tcpLists)
	// Names are looked up when the listener is applied, on the host that
	// runs it: a file checked elsewhere may name users this host lacks.
	for _, k := range []struct {
		key  string
		vals []string
	}{
		{keySocketOwner, []string{l.SocketOwner}},
		{keySocketGroup, []string{l.SocketGroup}},
		{keyAllowedUIDs, l.AllowedUIDs},
		{keyAllowedGIDs, l.AllowedGIDs},
	} {
		for _, v := range k.vals {
			if v != "" && !c.isBad(i, k.key) && strings.ContainsAny(v, " \t\n:/,") {
				c.add(i, k.key, "%q is not a user or group name, nor a number", v)
			}
		}
	}
}

// OpenToLocalUsers reports whether every local user can connect to l: a
// TCP listener, or a unix socket whose mode lets others write, without
// an allow-list. A systemd: socket is not judged: its unit says.
func (l Listener) OpenToLocalUsers() bool {
	network, _ := SplitListenAddr(l.ListenAddr)
	switch network {
	case NetworkTCP:
		return true
	case NetworkUnix:
		m, err := ParseSocketMode(l.SocketMode)
		return err == nil && m&0o002 != 0 && len(l.AllowedUIDs) == 0 && len(l.AllowedGIDs) == 0
	}
	return false
}

// IdentityLeak returns the sentence that warns that l lends the gateway's
// etcd identity (its upstream-tls client certificate) to every local user,
// or "" when it does not: when l does not originate TLS with a client
// certificate, requires client certificates itself, or only some users
// can connect to it.
func IdentityLeak(l Listener) string {
	if !l.UpstreamTLS.Originates() || l.UpstreamTLS.CertFile == "" || l.TLS.ClientCAFile != "" || !l.OpenToLocalUsers() {
		return ""
	}
	return fmt.Sprintf("listener %q hands the gateway's etcd client certificate (upstream-tls cert-file) to every local user and container that can connect to it; "+
		"fix: listen on a unix socket (listen-addr: unix:///run/etcd-gateway/NAME.sock) with socket-group or allowed-uids/allowed-gids for the etcd clients, "+
		"or require client certificates (tls client-ca-file)", l.Name)
}
