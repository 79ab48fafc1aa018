package config

import (
	"fmt"
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

// Allowed values of the enumerated keys.
func logLevels() []string  { return []string{"debug", "info", "warn", "error"} }
func logFormats() []string { return []string{"text", "json"} }
func removedPolicies() []string {
	return []string{RemovedKeep, RemovedDrain, RemovedClose}
}
func policies() []string {
	return []string{PolicyStickyRandom, PolicyRoundRobin, PolicyLeastConnections}
}
func unhealthyPolicies() []string { return []string{UnhealthyKeep, UnhealthyClose} }
func checkTypes() []string        { return []string{CheckNone, CheckTCP, CheckEtcd} }

// validateSnapshot checks the values of s, with every default applied, and
// reports to c each problem whose key is not already marked bad.
func validateSnapshot(s *Snapshot, c *collector) {
	checkEnum(c, topLevel, keyLogLevel, s.LogLevel, logLevels())
	checkEnum(c, topLevel, keyLogFormat, s.LogFormat, logFormats())
	checkPositive(c, topLevel, keyShutdownTimeout, s.ShutdownTimeout)
	if s.DNSStaleMax < 0 && !c.isBad(topLevel, keyDNSStaleMax) {
		c.add(topLevel, keyDNSStaleMax, "%s: must be 0s (no limit) or more", fmtDuration(s.DNSStaleMax))
	}
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
	if s.AdminPprof && s.AdminAddr == "" && !c.isBad(topLevel, keyAdminPprof) && !c.isBad(topLevel, keyAdminAddr) {
		c.add(topLevel, keyAdminPprof, "only valid with %s: pprof is served by the admin server", keyAdminAddr)
	}
	if len(s.Listeners) == 0 && !c.isBad(topLevel, keyListeners) {
		c.add(topLevel, keyListeners, "no listeners: at least one listener is required")
	}

	names := make(map[string]int)   // name -> index of the first listener with it
	addrs := make([]hostPort, 0, 4) // valid listen addresses so far
	owners := make([]int, 0, 4)     // index of the listener of each of addrs
	for i := range s.Listeners {
		l := &s.Listeners[i]
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
		hp, err := parseHostPort(l.ListenAddr, true, "127.0.0.1:23790")
		if err != nil {
			c.add(i, keyListenAddr, "%q: %v", l.ListenAddr, err)
			continue
		}
		for k, other := range addrs {
			if other.port != hp.port {
				continue
			}
			o := &s.Listeners[owners[k]]
			if other.canonical() == hp.canonical() {
				c.add(i, keyListenAddr, "duplicate address %q: %s listens on %q",
					l.ListenAddr, listenerRef(s.Listeners, owners[k]), o.ListenAddr)
				break
			}
			if other.wildcard() || hp.wildcard() {
				c.add(i, keyListenAddr, "%q overlaps %q of %s: a wildcard address takes the port on every address",
					l.ListenAddr, o.ListenAddr, listenerRef(s.Listeners, owners[k]))
				break
			}
		}
		addrs = append(addrs, hp)
		owners = append(owners, i)
	}
	if admin != nil {
		for k, other := range addrs {
			if other.port != admin.port {
				continue
			}
			o := &s.Listeners[owners[k]]
			if other.canonical() == admin.canonical() || other.wildcard() || admin.wildcard() {
				c.add(topLevel, keyAdminAddr, "%q overlaps %q of %s: the admin server needs an address of its own",
					s.AdminAddr, o.ListenAddr, listenerRef(s.Listeners, owners[k]))
				break
			}
		}
	}
}

// validateListener checks the values of one listener, except what involves
// other listeners.
func validateListener(c *collector, i int, l *Listener) {
	n := c.name
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

	checkPositive(c, i, keyDNSRefresh, l.DNSRefresh)
	checkPositive(c, i, keyRetryDelay, l.RetryDelay)
	checkPositive(c, i, keyDialTimeout, l.DialTimeout)
	checkPositive(c, i, keyDrainTimeout, l.DrainTimeout)
	checkEnum(c, i, keyOnEndpointRemoved, l.OnEndpointRemoved, removedPolicies())
	checkEnum(c, i, keyPolicy, l.Policy, policies())
	checkEnum(c, i, keyOnUnhealthy, l.OnUnhealthy, unhealthyPolicies())
	checkHealthCheck(c, i, l.HealthCheck)
	if l.MemberSync < 0 && !c.isBad(i, keyMemberSync) {
		c.add(i, keyMemberSync, "%s: must be greater than zero, or off", fmtDuration(l.MemberSync))
	}
	checkUpstreamTLS(c, i, l.UpstreamTLS)
	checkListenTLS(c, i, l.TLS, l.UpstreamTLS)
	checkLimits(c, i, l)
}

// TCP keepalive is set in whole seconds, up to the kernel's maximum for
// TCP_KEEPIDLE.
const (
	minKeepAlive = time.Second
	maxKeepAlive = 32767 * time.Second
)

// checkLimits checks max-connections, idle-timeout and keepalive of a
// listener, or of the top-level defaults when idx is topLevel.
func checkLimits(c *collector, idx int, l *Listener) {
	if l.MaxConnections < 0 && !c.isBad(idx, keyMaxConnections) {
		c.add(idx, keyMaxConnections, "%d: must be 0 (no limit) or more", l.MaxConnections)
	}
	if l.IdleTimeout < 0 && !c.isBad(idx, keyIdleTimeout) {
		c.add(idx, keyIdleTimeout, "%s: must be 0s (off) or more", fmtDuration(l.IdleTimeout))
	}
	if c.isBad(idx, keyKeepAlive) {
		return
	}
	switch {
	case l.KeepAlive <= 0:
		c.add(idx, keyKeepAlive, "%s: must be greater than zero", fmtDuration(l.KeepAlive))
	case l.KeepAlive < minKeepAlive || l.KeepAlive%time.Second != 0:
		c.add(idx, keyKeepAlive, "%s: TCP keepalive counts in whole seconds: use 1s or more, e.g. \"15s\"", fmtDuration(l.KeepAlive))
	case l.KeepAlive > maxKeepAlive:
		c.add(idx, keyKeepAlive, "%s: the longest TCP keepalive is %s", fmtDuration(l.KeepAlive), fmtDuration(maxKeepAlive))
	}
}

// checkPositive reports a duration that is zero or negative.
func checkPositive(c *collector, idx int, key string, d time.Duration) {
	if d <= 0 && !c.isBad(idx, key) {
		c.add(idx, key, "%s: must be greater than zero", fmtDuration(d))
	}
}

// checkEnum reports a value that is not one of allowed.
func checkEnum(c *collector, idx int, key, val string, allowed []string) {
	if c.isBad(idx, key) {
		return
	}
	for _, a := range allowed {
		if val == a {
			return
		}
	}
	c.add(idx, key, "%q is not one of %s", val, joinQuoted(allowed))
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
