package control

import (
	"path/filepath"
	"strings"
)

// DefaultPath is where the CLI looks for the control socket when neither
// its flag nor the config file names one: the gateway's default under the
// packaged systemd unit (RuntimeDirectory=etcd-gateway).
const DefaultPath = "/run/etcd-gateway/control.sock"

// SocketPath resolves where the gateway binds its control socket: the
// control-socket key, else, under systemd with a RuntimeDirectory=,
// control.sock in it; else "" (off).
func SocketPath(key string, getenv func(string) string) string {
	if key != "" {
		return key
	}
	dir, _, _ := strings.Cut(getenv("RUNTIME_DIRECTORY"), ":")
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, "control.sock")
}

// ClientPath resolves where the CLI calls: the flag, else the key of the
// config file, else DefaultPath.
func ClientPath(flag, key string) string {
	switch {
	case flag != "":
		return flag
	case key != "":
		return key
	}
	return DefaultPath
}
