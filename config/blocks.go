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

// block returns the table v of a block key (health-check, upstream-tls,
// tls). Anything else is reported, every key of the block is marked bad,
// and the block is nil, as if absent.
func (cv converter) block(idx int, key string, v any) map[string]any {
	if m, ok := v.(map[string]any); ok {
		return m
	}
	short := make([]string, 0, 7)
	for _, k := range blockKeys(key) {
		short = append(short, strings.TrimPrefix(k, key+"."))
	}
	cv.c.add(idx, key, "must be a table of keys (%s), not %s", strings.Join(short, ", "), describeValue(v))
	for _, k := range blockKeys(key) {
		cv.c.markBad(idx, k)
	}
	return nil
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

// checkEmptyTLS reports a tls block v that is an empty table: it has no
// certificate to serve. A block of unknown keys only is reported as such
// (by walk).
func (cv converter) checkEmptyTLS(idx int, v any, t ListenTLS) {
	m, isTable := v.(map[string]any)
	if !isTable || t.Enabled() || len(m) != 0 || cv.c.isBad(idx, keyTLSCertFile) || cv.c.isBad(idx, keyTLSKeyFile) || cv.c.isBad(idx, keyTLSClientCA) {
		return
	}
	cv.c.add(idx, keyTLSCertFile, "missing: a tls block serves TLS to the clients and needs %s and %s", keyTLSCertFile, keyTLSKeyFile)
	cv.c.markBad(idx, keyTLSKeyFile)
}

// checkCheckTimeout reports a health-check timeout longer than the
// interval: the other keys of the block are checked by their rules.
func checkCheckTimeout(c *collector, idx int, h HealthCheck) {
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
