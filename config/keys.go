package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Configuration keys, as written in the file (viper lower-cases keys).
const (
	keyLogLevel          = "log-level"
	keyLogFormat         = "log-format"
	keyShutdownTimeout   = "shutdown-timeout"
	keyDNSServer         = "dns-server"
	keyDNSStaleMax       = "dns-stale-max"
	keyListeners         = "listeners"
	keyName              = "name"
	keyListenAddr        = "listen-addr"
	keyEndpoints         = "endpoints"
	keyDiscoverySRV      = "discovery-srv"
	keyDiscoverySRVName  = "discovery-srv-name"
	keyInsecureDiscovery = "insecure-discovery"
	keyTrustedCAFile     = "trusted-ca-file"
	keyDNSRefresh        = "dns-refresh"
	keyRetryDelay        = "retry-delay"
	keyDialTimeout       = "dial-timeout"
	keyOnEndpointRemoved = "on-endpoint-removed"
	keyDrainTimeout      = "drain-timeout"
	keyAdminAddr         = "admin-addr"
	keyAdminPprof        = "admin-pprof"
	keyUpgradeSocket     = "upgrade-socket"
	keyControlSocket     = "control-socket"
	keyControlGroup      = "control-group"
	keyMaxConnections    = "max-connections"
	keyIdleTimeout       = "idle-timeout"
	keyKeepAlive         = "keepalive"
	keyPolicy            = "policy"
	keySlowStart         = "slow-start"
	keyRebalance         = "rebalance"
	keyMaxConnectionAge  = "max-connection-age"
	keyHealthCheck       = "health-check"
	keyOnUnhealthy       = "on-unhealthy"
	keyMemberSync        = "member-sync"
	keyUpstreamTLS       = "upstream-tls"
	keyTLS               = "tls"
	keySocketMode        = "socket-mode"
	keySocketOwner       = "socket-owner"
	keySocketGroup       = "socket-group"
	keyAllowedUIDs       = "allowed-uids"
	keyAllowedGIDs       = "allowed-gids"

	// Keys inside the blocks, qualified by the block's key.
	keyCheckType     = "health-check.type"
	keyCheckInterval = "health-check.interval"
	keyCheckTimeout  = "health-check.timeout"
	keyCheckFall     = "health-check.fall"
	keyCheckRise     = "health-check.rise"
	keyLeaderlessMax = "health-check.leaderless-max"
	keyLagMax        = "health-check.lag-max"
	keySuspectAfter  = "health-check.suspect-after"
	keyUpCAFile      = "upstream-tls.ca-file"
	keyUpCertFile    = "upstream-tls.cert-file"
	keyUpKeyFile     = "upstream-tls.key-file"
	keyUpServerName  = "upstream-tls.server-name"
	keyUpPassthrough = "upstream-tls.passthrough"
	keyTLSCertFile   = "tls.cert-file"
	keyTLSKeyFile    = "tls.key-file"
	keyTLSClientCA   = "tls.client-ca-file"
)

// unknownKeyMsg is the message for an unknown key: "unknown key", then a
// hint: where the key belongs when it is a key of the other level (a
// listener key at the top level, or the reverse), else a suggestion when a
// known key is close to it (a typo, or '_' instead of '-'), else the list
// of known keys.
func unknownKeyMsg(key string, known, otherLevel []string, otherLevelName string) string {
	if slices.Contains(otherLevel, key) {
		return fmt.Sprintf("%s here: it is %s", unknownKey, otherLevelName)
	}
	if s := suggest(key, known); s != "" {
		return fmt.Sprintf("%s; did you mean %q?", unknownKey, s)
	}
	q := make([]string, len(known))
	for i, k := range known {
		q[i] = strconv.Quote(k)
	}
	return unknownKey + "; known keys are " + strings.Join(q, ", ")
}

// suggest returns the known key closest to key, or "" when none is close.
func suggest(key string, known []string) string {
	best, bestDist := "", 3 // suggest only within an edit distance of 2
	for _, k := range known {
		if d := editDistance(key, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
