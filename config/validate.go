package config

import (
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Validate checks every rule a snapshot built by Parse or FromFlags obeys.
// It returns nil or a *ValidationError listing every problem. Parse,
// Load and FromFlags already call it; it is for snapshots built by hand.
func (s *Snapshot) Validate() error {
	c := newCollector(false)
	validateSnapshot(s, c)
	return c.err(s.File, func(idx int) string { return listenerLabel(s.Listeners, idx) })
}

// validateSnapshot checks the values of s, with every default applied, and
// reports to c each problem whose key is not already marked bad.
func validateSnapshot(s *Snapshot, c *collector) {
	checkRules(c, topLevel, reflect.ValueOf(s), levelSpecs(topOnly))
	if s.DNSServer != "" && !c.isBad(topLevel, keyDNSServer) {
		if _, err := parseHostPort(s.DNSServer, false, "10.0.0.53:53"); err != nil {
			c.add(topLevel, keyDNSServer, "%q: %v", s.DNSServer, err)
		}
	}
	var admin *hostPort
	if s.AdminAddr != "" && !c.isBad(topLevel, keyAdminAddr) {
		hp, err := parseHostPort(s.AdminAddr, true, "127.0.0.1:23800")
		if err != nil {
			c.add(topLevel, keyAdminAddr, "%q: %v", s.AdminAddr, err)
		} else {
			admin = &hp
		}
	}
	if s.ControlGroup != "" {
		if _, err := LookupGID(s.ControlGroup); err != nil {
			c.add(topLevel, keyControlGroup, "%v", err)
		}
	}
	if s.AdminPprof && s.AdminAddr == "" && !c.isBad(topLevel, keyAdminPprof) && !c.isBad(topLevel, keyAdminAddr) {
		c.add(topLevel, keyAdminPprof, "only valid with %s: pprof is served by the admin server", keyAdminAddr)
	}
	if len(s.Listeners) == 0 && !c.isBad(topLevel, keyListeners) {
		c.add(topLevel, keyListeners, "no listeners: at least one listener is required")
	}
	addrs := validateListeners(c, s.Listeners)
	if admin != nil {
		checkAdminOverlap(c, s, *admin, addrs)
	}
}

// boundAddr is a valid listen address and the index of its listener.
type boundAddr struct {
	hostPort
	owner int
}

// validateListeners checks each listener, and that no two have the same
// name or address. It returns the valid listen addresses.
func validateListeners(c *collector, ls []Listener) []boundAddr {
	names := make(map[string]int) // name -> index of the first listener with it
	addrs := make([]boundAddr, 0, 4)
	var locals []int // listeners on a valid unix:// or systemd: address
	for i := range ls {
		l := &ls[i]
		validateListener(c, i, l)
		if l.Name != "" && !c.isBad(i, keyName) {
			if first, dup := names[l.Name]; dup {
				c.add(i, keyName, "duplicate name %q: listeners[%d] has it too", l.Name, first)
			} else {
				names[l.Name] = i
			}
		}
		if l.ListenAddr == "" || c.isBad(i, keyListenAddr) {
			continue
		}
		if local, err := checkLocalAddr(l.ListenAddr); local {
			if err != nil {
				c.add(i, keyListenAddr, "%v", err)
			} else {
				checkLocalOverlap(c, ls, i, locals)
				locals = append(locals, i)
			}
			continue
		}
		hp, err := parseHostPort(l.ListenAddr, true, "127.0.0.1:23790")
		if err != nil {
			c.add(i, keyListenAddr, "%q: %v", l.ListenAddr, err)
			continue
		}
		checkAddrOverlap(c, ls, i, hp, addrs)
		addrs = append(addrs, boundAddr{hp, i})
	}
	return addrs
}

// checkAddrOverlap reports the listen address hp of listener i when an
// earlier listener has it, or a wildcard address on the same port.
func checkAddrOverlap(c *collector, ls []Listener, i int, hp hostPort, addrs []boundAddr) {
	l := &ls[i]
	for _, other := range addrs {
		if other.port != hp.port {
			continue
		}
		o := &ls[other.owner]
		if other.canonical() == hp.canonical() {
			c.add(i, keyListenAddr, "duplicate address %q: %s listens on %q",
				l.ListenAddr, listenerRef(ls, other.owner), o.ListenAddr)
			return
		}
		if other.wildcard() || hp.wildcard() {
			c.add(i, keyListenAddr, "%q overlaps %q of %s: a wildcard address takes the port on every address",
				l.ListenAddr, o.ListenAddr, listenerRef(ls, other.owner))
			return
		}
	}
}

// checkLocalOverlap reports the unix:// or systemd: listen address of
// listener i when one of the earlier listeners locals has it: a path
// written another way ("/run/x.sock" and "/run//x.sock") is the same.
func checkLocalOverlap(c *collector, ls []Listener, i int, locals []int) {
	same := func(a string) string {
		if n, p := SplitListenAddr(a); n == NetworkUnix {
			return unixPrefix + filepath.Clean(p)
		}
		return a
	}
	for _, o := range locals {
		if same(ls[o].ListenAddr) == same(ls[i].ListenAddr) {
			c.add(i, keyListenAddr, "duplicate address %q: %s listens on %q", ls[i].ListenAddr, listenerRef(ls, o), ls[o].ListenAddr)
			return
		}
	}
}

// checkAdminOverlap reports an admin-addr that a listener's address
// takes too.
func checkAdminOverlap(c *collector, s *Snapshot, admin hostPort, addrs []boundAddr) {
	for _, other := range addrs {
		if other.port != admin.port {
			continue
		}
		if other.canonical() == admin.canonical() || other.wildcard() || admin.wildcard() {
			c.add(topLevel, keyAdminAddr, "%q overlaps %q of %s: the admin server needs an address of its own",
				s.AdminAddr, s.Listeners[other.owner].ListenAddr, listenerRef(s.Listeners, other.owner))
			return
		}
	}
}

// validateListener checks the values of one listener, except what involves
// other listeners.
func validateListener(c *collector, i int, l *Listener) {
	if !c.isBad(i, keyName) {
		switch {
		case l.Name == "":
			c.add(i, keyName, "missing: every listener needs a name")
		case !validName(l.Name):
			c.add(i, keyName, "%q is not a valid name: use 1 to %d letters, digits, '-', '_' or '.'", l.Name, maxNameLen)
		}
	}
	if l.ListenAddr == "" && !c.isBad(i, keyListenAddr) {
		c.add(i, keyListenAddr, "missing: a listen address is required, e.g. \"127.0.0.1:23790\"")
	}
	validateSource(c, i, l)
	validateSRVKeys(c, i, l)
	checkRules(c, i, reflect.ValueOf(l), levelSpecs(listenerOnly, inherited))
	checkCheckTimeout(c, i, l.HealthCheck)
	checkUpstreamTLS(c, i, l.UpstreamTLS)
	checkListenTLS(c, i, l.TLS, l.UpstreamTLS)
	validateSocketKeys(c, i, l)
}

// validateSource checks the endpoints and discovery-srv of a listener:
// exactly one of them, each valid.
func validateSource(c *collector, i int, l *Listener) {
	n := c.name
	if !c.isBad(i, keyEndpoints) {
		for _, ep := range l.Endpoints {
			if _, err := parseHostPort(ep, false, "10.0.0.1:2379"); err != nil {
				c.add(i, keyEndpoints, "endpoint %q: %v", ep, err)
			}
		}
		checkDuplicateEndpoints(c, i, l.Endpoints)
	}
	hasEndpoints, hasSRV := len(l.Endpoints) > 0, l.DiscoverySRV != ""
	switch {
	case hasEndpoints && hasSRV:
		c.add(i, keyEndpoints, "%s and %s are both set: set exactly one", n(keyEndpoints), n(keyDiscoverySRV))
	case hasEndpoints || hasSRV:
	case c.isBad(i, keyEndpoints) || c.isBad(i, keyDiscoverySRV):
		// One of them was set, with a bad value.
	default:
		c.add(i, keyEndpoints, "no etcd endpoints: set %s (a list of host:port) or %s (a DNS domain)", n(keyEndpoints), n(keyDiscoverySRV))
	}
	if hasSRV && !c.isBad(i, keyDiscoverySRV) {
		if err := checkDomainName(l.DiscoverySRV); err != nil {
			c.add(i, keyDiscoverySRV, "%q is not a DNS domain: %v", l.DiscoverySRV, err)
		} else if looksNumeric(l.DiscoverySRV) {
			c.add(i, keyDiscoverySRV, "%q is not a DNS domain", l.DiscoverySRV)
		}
	}
}

// validateSRVKeys checks the keys that only SRV discovery (or, for
// trusted-ca-file, https:// endpoints) uses.
func validateSRVKeys(c *collector, i int, l *Listener) {
	n := c.name
	hasSRV := l.DiscoverySRV != ""
	srvOnly := func(key string, set bool) {
		if set && !hasSRV && !c.isBad(i, key) && !c.isBad(i, keyDiscoverySRV) {
			c.add(i, key, "only valid with %s", n(keyDiscoverySRV))
		}
	}
	srvOnly(keyDiscoverySRVName, l.DiscoverySRVName != "")
	srvOnly(keyInsecureDiscovery, l.InsecureDiscovery)
	if l.TrustedCAFile != "" && !hasSRV && len(l.TLSEndpoints) == 0 && !c.isBad(i, keyTrustedCAFile) && !c.isBad(i, keyDiscoverySRV) && !c.isBad(i, keyEndpoints) {
		c.add(i, keyTrustedCAFile, "only valid with %s or with https:// %s: it verifies the members that serve TLS", n(keyDiscoverySRV), n(keyEndpoints))
	}
	if l.DiscoverySRVName != "" && !c.isBad(i, keyDiscoverySRVName) {
		// It becomes part of the label _etcd-client-ssl-NAME.
		if !validSRVName(l.DiscoverySRVName) {
			c.add(i, keyDiscoverySRVName, "%q is not a valid SRV service name suffix: use up to %d letters, digits, '-' or '_'", l.DiscoverySRVName, maxSRVNameLen)
		}
	}
}

// checkRules reports each value of root (a *Snapshot or a *Listener) that
// breaks the rule of its key among specs, unless the key is already bad.
func checkRules(c *collector, idx int, root reflect.Value, specs []*spec) {
	for _, sp := range specs {
		if sp.rule == anyValue || c.isBad(idx, sp.key) {
			continue
		}
		if msg := ruleProblem(sp, fieldOf(root, sp.field)); msg != "" {
			c.add(idx, sp.key, "%s", msg)
		}
	}
}

// ruleProblem returns what is wrong with f, the value of the key sp, or "".
func ruleProblem(sp *spec, f reflect.Value) string {
	if sp.rule == oneOf {
		if slices.Contains(sp.values, f.String()) {
			return ""
		}
		return fmt.Sprintf("%q is not one of %s", f.String(), joinQuoted(sp.values))
	}
	if sp.rule == modeRule {
		if _, err := ParseSocketMode(f.String()); err != nil {
			return err.Error()
		}
		return ""
	}
	n := f.Int()
	d := fmtDuration(time.Duration(n))
	switch {
	case sp.rule == above0 && n <= 0:
		return d + ": must be greater than zero"
	case sp.rule == atLeast0 && n < 0 && f.Kind() == reflect.Int:
		return fmt.Sprintf("%d: must be 0 (%s) or more", n, sp.zero)
	case sp.rule == atLeast0 && n < 0:
		return fmt.Sprintf("%s: must be 0s (%s) or more", d, sp.zero)
	case sp.rule == checksInRow && (n < minFallRise || n > maxFallRise):
		return fmt.Sprintf("%d: must be from %d to %d (checks in a row)", n, minFallRise, maxFallRise)
	case sp.rule == syncRule && n < 0:
		return d + ": must be greater than zero, or off"
	case sp.rule == keepAliveRule:
		return keepAliveProblem(time.Duration(n))
	}
	return ""
}

// TCP keepalive is set in whole seconds, up to the kernel's maximum for
// TCP_KEEPIDLE.
const (
	minKeepAlive = time.Second
	maxKeepAlive = 32767 * time.Second
)

// keepAliveProblem returns what is wrong with a keepalive period, or "".
func keepAliveProblem(d time.Duration) string {
	switch {
	case d <= 0:
		return fmtDuration(d) + ": must be greater than zero"
	case d < minKeepAlive || d%time.Second != 0:
		return fmtDuration(d) + ": TCP keepalive counts in whole seconds: use 1s or more, e.g. \"15s\""
	case d > maxKeepAlive:
		return fmt.Sprintf("%s: the longest TCP keepalive is %s", fmtDuration(d), fmtDuration(maxKeepAlive))
	}
	return ""
}

// checkDuplicateEndpoints reports each endpoint listed more than once (the
// same host and port, however written), in one problem that names each of
// its positions once. eps are as written, after the scheme is removed.
func checkDuplicateEndpoints(c *collector, idx int, eps []string) {
	positions := make(map[string][]int, len(eps))
	var order []string
	for pos, ep := range eps {
		hp, err := parseHostPort(ep, false, "")
		if err != nil {
			continue
		}
		k := hp.canonical()
		if positions[k] == nil {
			order = append(order, k)
		}
		positions[k] = append(positions[k], pos)
	}
	for _, k := range order {
		if ps := positions[k]; len(ps) > 1 {
			c.add(idx, keyEndpoints, "duplicate endpoint %q: listed at positions %s (counting from 0)%s; list it once",
				eps[ps[0]], joinAnd(ps), spellings(eps, ps))
		}
	}
}

// joinAnd writes 0, 1 and 3.
func joinAnd(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	if len(s) == 1 {
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// spellings returns ", written ..." when the endpoints at positions ps are
// not all written the same, else "".
func spellings(eps []string, ps []int) string {
	var written []string
	for _, p := range ps {
		if !slices.Contains(written, eps[p]) {
			written = append(written, eps[p])
		}
	}
	if len(written) == 1 {
		return ""
	}
	return ", written " + joinQuoted(written)
}

// joinQuoted returns the quoted values, comma-separated.
func joinQuoted(vals []string) string {
	s := ""
	for i, v := range vals {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%q", v)
	}
	return s
}

// maxSRVNameLen is the longest discovery-srv-name: the label
// "_etcd-client-ssl-NAME" must fit in 63 characters.
const maxSRVNameLen = 63 - len("_etcd-client-ssl-")

// validSRVName reports whether name can end the SRV service labels
// _etcd-client-NAME and _etcd-client-ssl-NAME.
func validSRVName(name string) bool {
	if name == "" || len(name) > maxSRVNameLen || strings.HasSuffix(name, "-") {
		return false
	}
	for _, r := range name {
		if !isLabelChar(r) {
			return false
		}
	}
	return true
}
