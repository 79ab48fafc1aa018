package config

import (
	"math"
	"strings"
	"time"
)

// Bounds of health-check.fall and health-check.rise.
const (
	minFallRise = 1
	maxFallRise = 1000
)

// memberSyncOff is the value that turns member sync off.
const memberSyncOff = "off"

// block returns the table of a block key (health-check, upstream-tls, tls): nil and true
// when it is absent, the table and true when it is one. Anything else is
// reported, and every key of the block is marked bad.
func (cv converter) block(idx int, key string, v any) (map[string]any, bool) {
	switch m := v.(type) {
	case nil:
		return nil, true
	case map[string]any:
		return m, true
	}
	short := make([]string, 0, 5)
	for _, k := range blockKeys(key) {
		short = append(short, strings.TrimPrefix(k, key+"."))
	}
	cv.c.add(idx, key, "must be a table of keys (%s), not %s", strings.Join(short, ", "), describeValue(v))
	for _, k := range blockKeys(key) {
		cv.c.markBad(idx, k)
	}
	return nil, false
}

// sub returns the value of the qualified key in its block's table.
func sub(m map[string]any, key string) any {
	_, k, _ := strings.Cut(key, ".")
	return m[k]
}

// timeoutUnset stands for a health-check.timeout that no level of the file
// sets, until checkTimeout replaces it. No duration written in a file
// parses to it.
const timeoutUnset = time.Duration(math.MinInt64)

// unsetTimeoutCheck is the built-in health check with its timeout not
// yet decided: the top level's starting point.
func unsetTimeoutCheck() HealthCheck {
	h := DefaultHealthCheck()
	h.Timeout = timeoutUnset
	return h
}

// checkTimeout gives a timeout that no level set its default: the smaller
// of DefaultCheckTimeout and the interval, so that interval: 1s alone is
// valid. A timeout written in the file is kept, and checked.
func checkTimeout(h HealthCheck) HealthCheck {
	if h.Timeout != timeoutUnset {
		return h
	}
	h.Timeout = DefaultCheckTimeout
	if h.Interval > 0 && h.Interval < h.Timeout {
		h.Timeout = h.Interval
	}
	return h
}

// healthCheck converts a health-check block. Each key left out keeps its
// value from def: the built-in defaults at the top level, the top level's
// values in a listener (a bad one there is not reported again).
func (cv converter) healthCheck(idx int, v any, def HealthCheck) HealthCheck {
	m, _ := cv.block(idx, keyHealthCheck, v)
	absent := func(key string) bool {
		if sub(m, key) != nil {
			return false
		}
		if idx != topLevel && cv.c.isBad(topLevel, key) {
			cv.c.markBad(idx, key)
		}
		return true
	}
	h := def
	if !absent(keyCheckType) {
		h.Type = strings.ToLower(cv.str(idx, keyCheckType, sub(m, keyCheckType), def.Type))
	}
	if !absent(keyCheckInterval) {
		h.Interval = cv.duration(idx, keyCheckInterval, sub(m, keyCheckInterval), def.Interval)
	}
	if !absent(keyCheckTimeout) {
		h.Timeout = cv.duration(idx, keyCheckTimeout, sub(m, keyCheckTimeout), def.Timeout)
	}
	if !absent(keyCheckFall) {
		h.Fall = cv.integer(idx, keyCheckFall, sub(m, keyCheckFall), def.Fall)
	}
	if !absent(keyCheckRise) {
		h.Rise = cv.integer(idx, keyCheckRise, sub(m, keyCheckRise), def.Rise)
	}
	return h
}

// upstreamTLS converts a listener's upstream-tls block. A block, even
// empty, enables TLS to the members.
func (cv converter) upstreamTLS(idx int, v any) UpstreamTLS {
	m, ok := cv.block(idx, keyUpstreamTLS, v)
	if !ok || v == nil {
		return UpstreamTLS{}
	}
	return UpstreamTLS{
		Enabled:     true,
		CAFile:      cv.str(idx, keyUpCAFile, sub(m, keyUpCAFile), ""),
		CertFile:    cv.str(idx, keyUpCertFile, sub(m, keyUpCertFile), ""),
		KeyFile:     cv.str(idx, keyUpKeyFile, sub(m, keyUpKeyFile), ""),
		ServerName:  cv.str(idx, keyUpServerName, sub(m, keyUpServerName), ""),
		Passthrough: cv.boolean(idx, keyUpPassthrough, sub(m, keyUpPassthrough)),
	}
}

// listenTLS converts a listener's tls block. An empty block is reported:
// it has no certificate to serve.
func (cv converter) listenTLS(idx int, v any) ListenTLS {
	m, ok := cv.block(idx, keyTLS, v)
	if !ok || v == nil {
		return ListenTLS{}
	}
	t := ListenTLS{
		CertFile:     cv.str(idx, keyTLSCertFile, sub(m, keyTLSCertFile), ""),
		KeyFile:      cv.str(idx, keyTLSKeyFile, sub(m, keyTLSKeyFile), ""),
		ClientCAFile: cv.str(idx, keyTLSClientCA, sub(m, keyTLSClientCA), ""),
	}
	// A block of unknown keys only is reported as such (by walk).
	if !t.Enabled() && len(m) == 0 && !cv.c.isBad(idx, keyTLSCertFile) && !cv.c.isBad(idx, keyTLSKeyFile) && !cv.c.isBad(idx, keyTLSClientCA) {
		cv.c.add(idx, keyTLSCertFile, "missing: a tls block serves TLS to the clients and needs %s and %s", keyTLSCertFile, keyTLSKeyFile)
		cv.c.markBad(idx, keyTLSKeyFile)
	}
	return t
}

// memberSync converts member-sync: a duration greater than zero, or "off"
// (false too); nil is off.
func (cv converter) memberSync(idx int, v any) time.Duration {
	switch x := v.(type) {
	case nil:
		return 0
	case bool:
		if !x {
			return 0
		}
		cv.c.add(idx, keyMemberSync, "true is not an interval: write a duration such as \"1m\", or \"off\"")
		return 0
	case string:
		if strings.EqualFold(strings.TrimSpace(x), memberSyncOff) {
			return 0
		}
	}
	d := cv.duration(idx, keyMemberSync, v, 0)
	if d <= 0 && !cv.c.isBad(idx, keyMemberSync) {
		cv.c.add(idx, keyMemberSync, "%s: must be greater than zero; write \"off\" to turn member sync off", fmtDuration(d))
	}
	return d
}

// checkHealthCheck reports the problems of a health-check block.
func checkHealthCheck(c *collector, idx int, h HealthCheck) {
	checkEnum(c, idx, keyCheckType, h.Type, checkTypes())
	checkPositive(c, idx, keyCheckInterval, h.Interval)
	checkPositive(c, idx, keyCheckTimeout, h.Timeout)
	for _, k := range []struct {
		key string
		n   int
	}{{keyCheckFall, h.Fall}, {keyCheckRise, h.Rise}} {
		if (k.n < minFallRise || k.n > maxFallRise) && !c.isBad(idx, k.key) {
			c.add(idx, k.key, "%d: must be from %d to %d (checks in a row)", k.n, minFallRise, maxFallRise)
		}
	}
	if h.Timeout > h.Interval && h.Interval > 0 && !c.isBad(idx, keyCheckTimeout) && !c.isBad(idx, keyCheckInterval) {
		c.add(idx, keyCheckTimeout, "%s is longer than %s %s: a check must end before the next one is due",
			fmtDuration(h.Timeout), keyCheckInterval, fmtDuration(h.Interval))
	}
}

// checkUpstreamTLS reports the problems of an upstream-tls block.
func checkUpstreamTLS(c *collector, idx int, t UpstreamTLS) {
	if !t.Enabled {
		return
	}
	checkPair(c, idx, t.CertFile, t.KeyFile, keyUpCertFile, keyUpKeyFile)
	if strings.ContainsAny(t.ServerName, " \t/:") && !c.isBad(idx, keyUpServerName) {
		c.add(idx, keyUpServerName, "%q is not a host name", t.ServerName)
	}
}

// checkListenTLS reports the problems of a tls block, and of its
// combination with upstream-tls.
func checkListenTLS(c *collector, idx int, t ListenTLS, up UpstreamTLS) {
	if !t.Enabled() {
		return
	}
	checkPair(c, idx, t.CertFile, t.KeyFile, keyTLSCertFile, keyTLSKeyFile)
	if t.CertFile == "" && t.KeyFile == "" && !c.isBad(idx, keyTLSCertFile) {
		c.add(idx, keyTLSCertFile, "missing: a tls block serves TLS to the clients and needs %s and %s", keyTLSCertFile, keyTLSKeyFile)
	}
	if up.Enabled && up.Passthrough && !c.isBad(idx, keyUpPassthrough) {
		c.add(idx, keyUpPassthrough, "true together with a %s block: the gateway ends the clients' TLS, so it can't pass their bytes through to members that expect TLS; "+
			"remove %s (the gateway then speaks TLS to the members) or the %s block (clients then speak TLS to the members through it)", keyTLS, keyUpPassthrough, keyTLS)
	}
}

// checkPair reports a certificate without its key, or a key without its
// certificate.
func checkPair(c *collector, idx int, cert, key, certKey, keyKey string) {
	switch {
	case cert != "" && key == "" && !c.isBad(idx, keyKey):
		c.add(idx, keyKey, "missing: %s needs %s, its private key", certKey, keyKey)
	case key != "" && cert == "" && !c.isBad(idx, certKey):
		c.add(idx, certKey, "missing: %s needs %s, its certificate", keyKey, certKey)
	}
}
