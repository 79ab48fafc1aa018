package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// hostPort is a checked host:port address.
type hostPort struct {
	host string // without brackets; may be empty for a listen address
	port int
}

// canonical returns a form of the address in which equal addresses are
// equal strings: IPs in their canonical form, names in lower case.
func (hp hostPort) canonical() string {
	host := strings.ToLower(strings.TrimSuffix(hp.host, "."))
	if a, err := netip.ParseAddr(hp.host); err == nil {
		host = a.Unmap().String()
	}
	return net.JoinHostPort(host, strconv.Itoa(hp.port))
}

// wildcard reports whether the host means every local address. Go listens
// on an unspecified address with a dual-stack socket, so a wildcard takes
// the port on every address, IPv4 and IPv6.
func (hp hostPort) wildcard() bool {
	if hp.host == "" {
		return true
	}
	a, err := netip.ParseAddr(hp.host)
	return err == nil && a.IsUnspecified()
}

// parseHostPort checks that addr is host:port with a numeric port from 1 to
// 65535. The host is an IPv4 address, an IPv6 address in brackets or a DNS
// name; it may be empty only when hostOptional is set. example is shown in
// the error messages.
func parseHostPort(addr string, hostOptional bool, example string) (hostPort, error) {
	if addr == "" {
		return hostPort{}, errors.New("empty address")
	}
	if strings.TrimSpace(addr) != addr {
		return hostPort{}, errors.New("leading or trailing space")
	}
	colon := strings.LastIndexByte(addr, ':')
	if colon < 0 || strings.HasSuffix(addr, "]") {
		return hostPort{}, fmt.Errorf("missing port: write host:port, e.g. %q", example)
	}
	if !strings.HasPrefix(addr, "[") && strings.Count(addr, ":") > 1 {
		return hostPort{}, errors.New("an IPv6 address needs brackets and a port, e.g. \"[::1]:2379\"")
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return hostPort{}, fmt.Errorf("not host:port: %w", err)
	}
	port, err := parsePort(portStr)
	if err != nil {
		return hostPort{}, err
	}
	bracketed := strings.HasPrefix(addr, "[")
	switch {
	case host == "" && bracketed:
		return hostPort{}, errors.New("empty IPv6 address in brackets")
	case host == "":
		if !hostOptional {
			return hostPort{}, fmt.Errorf("missing host: write host:port, e.g. %q", example)
		}
	case bracketed:
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() {
			return hostPort{}, fmt.Errorf("%q in brackets is not an IPv6 address", host)
		}
	default:
		if err := checkHost(host); err != nil {
			return hostPort{}, err
		}
	}
	return hostPort{host: host, port: port}, nil
}

// parsePort parses a decimal port number from 1 to 65535.
func parsePort(s string) (int, error) {
	if s == "" {
		return 0, errors.New("missing port number after ':'")
	}
	if len(s) > 5 || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", s)
	}
	p, _ := strconv.Atoi(s) // at most 5 digits: cannot fail
	if p < 1 || p > 65535 {
		return 0, fmt.Errorf("port %d is out of range 1-65535", p)
	}
	return p, nil
}

// checkHost checks an unbracketed host: an IPv4 address or a DNS name.
func checkHost(host string) error {
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Is6() {
			return fmt.Errorf("IPv6 address %q must be in brackets", host)
		}
		return nil
	}
	if looksNumeric(host) {
		return fmt.Errorf("%q is not a valid IPv4 address", host)
	}
	if err := checkDomainName(host); err != nil {
		return fmt.Errorf("host %q: %w", host, err)
	}
	return nil
}

// looksNumeric reports whether the last label of a name is all digits: such
// a name is a mistyped IP address, not a DNS name.
func looksNumeric(name string) bool {
	name = strings.TrimSuffix(name, ".")
	last := name[strings.LastIndexByte(name, '.')+1:]
	return last != "" && strings.Trim(last, "0123456789") == ""
}

// checkDomainName checks the syntax of a DNS name: dot-separated labels of
// 1 to 63 letters, digits, '-' or '_', not starting or ending with '-', at
// most 253 characters; one trailing dot is allowed.
func checkDomainName(name string) error {
	name = strings.TrimSuffix(name, ".")
	if name == "" {
		return errors.New("empty name")
	}
	if len(name) > 253 {
		return errors.New("name longer than 253 characters")
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" {
			return errors.New("empty label (two dots in a row, or a leading dot)")
		}
		if len(label) > 63 {
			return fmt.Errorf("label %q longer than 63 characters", label)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("label %q starts or ends with '-'", label)
		}
		for _, r := range label {
			if !isLabelChar(r) {
				return fmt.Errorf("character %q not allowed in a DNS name", r)
			}
		}
	}
	return nil
}

func isLabelChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_'
}

// maxNameLen is the longest listener name allowed.
const maxNameLen = 64

// validName reports whether name is a valid listener name: 1 to maxNameLen
// letters, digits, '-', '_' or '.'. Names appear in logs and metric labels.
func validName(name string) bool {
	if name == "" || len(name) > maxNameLen {
		return false
	}
	for _, r := range name {
		if !isLabelChar(r) && r != '.' {
			return false
		}
	}
	return true
}

// stripScheme removes an http:// or https:// prefix from an endpoint, as
// etcd does, and a trailing slash after it, and reports whether it was
// https://: such a member serves TLS, and the health check must speak it.
// Any other scheme, and a path, are errors.
func stripScheme(ep string) (hostPort string, https bool, err error) {
	lower := strings.ToLower(ep)
	for _, scheme := range []string{"http://", "https://"} {
		if !strings.HasPrefix(lower, scheme) {
			continue
		}
		rest := strings.TrimSuffix(ep[len(scheme):], "/")
		if strings.ContainsAny(rest, "/?#") {
			return "", false, fmt.Errorf("endpoint %q has a path: write %shost:port", ep, scheme)
		}
		return rest, scheme == "https://", nil
	}
	if i := strings.Index(ep, "://"); i >= 0 {
		return "", false, fmt.Errorf("endpoint %q: scheme %q not supported: write host:port, optionally after http:// or https://", ep, ep[:i])
	}
	return ep, false, nil
}
