package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
)

// rawConfig is the file as decoded by viper's UnmarshalExact. Every value is
// kept as it was parsed (nil when absent), so that decoding fails only on
// unknown keys, and type errors are reported by convert with the key, the
// listener and a useful message.
type rawConfig struct {
	LogLevel          any           `mapstructure:"log-level"`
	LogFormat         any           `mapstructure:"log-format"`
	ShutdownTimeout   any           `mapstructure:"shutdown-timeout"`
	DNSServer         any           `mapstructure:"dns-server"`
	DNSStaleMax       any           `mapstructure:"dns-stale-max"`
	RetryDelay        any           `mapstructure:"retry-delay"`
	DialTimeout       any           `mapstructure:"dial-timeout"`
	DNSRefresh        any           `mapstructure:"dns-refresh"`
	OnEndpointRemoved any           `mapstructure:"on-endpoint-removed"`
	DrainTimeout      any           `mapstructure:"drain-timeout"`
	AdminAddr         any           `mapstructure:"admin-addr"`
	AdminPprof        any           `mapstructure:"admin-pprof"`
	MaxConnections    any           `mapstructure:"max-connections"`
	IdleTimeout       any           `mapstructure:"idle-timeout"`
	KeepAlive         any           `mapstructure:"keepalive"`
	Policy            any           `mapstructure:"policy"`
	HealthCheck       any           `mapstructure:"health-check"`
	OnUnhealthy       any           `mapstructure:"on-unhealthy"`
	MemberSync        any           `mapstructure:"member-sync"`
	Listeners         []rawListener `mapstructure:"listeners"`
}

// rawListener is one listener of rawConfig.
type rawListener struct {
	Name              any `mapstructure:"name"`
	ListenAddr        any `mapstructure:"listen-addr"`
	Endpoints         any `mapstructure:"endpoints"`
	DiscoverySRV      any `mapstructure:"discovery-srv"`
	DiscoverySRVName  any `mapstructure:"discovery-srv-name"`
	InsecureDiscovery any `mapstructure:"insecure-discovery"`
	TrustedCAFile     any `mapstructure:"trusted-ca-file"`
	DNSRefresh        any `mapstructure:"dns-refresh"`
	RetryDelay        any `mapstructure:"retry-delay"`
	DialTimeout       any `mapstructure:"dial-timeout"`
	OnEndpointRemoved any `mapstructure:"on-endpoint-removed"`
	DrainTimeout      any `mapstructure:"drain-timeout"`
	MaxConnections    any `mapstructure:"max-connections"`
	IdleTimeout       any `mapstructure:"idle-timeout"`
	KeepAlive         any `mapstructure:"keepalive"`
	Policy            any `mapstructure:"policy"`
	HealthCheck       any `mapstructure:"health-check"`
	OnUnhealthy       any `mapstructure:"on-unhealthy"`
	MemberSync        any `mapstructure:"member-sync"`
	UpstreamTLS       any `mapstructure:"upstream-tls"`
	TLS               any `mapstructure:"tls"`
}

// strictDecoding turns off viper's weak typing and decode hooks: values are
// converted by convert, never silently (an integer is not a duration in
// nanoseconds, a map is not a one-element list).
func strictDecoding(c *mapstructure.DecoderConfig) {
	c.WeaklyTypedInput = false
	c.DecodeHook = nil
}

// decode turns the configuration read by v into a validated snapshot.
func decode(path string, v *viper.Viper) (*Snapshot, error) {
	c := newCollector(false)

	// Unknown keys, and the shape of the listeners list, first: the walk
	// reports every one of them, with its listener.
	shape := walk(c, v)

	// Then the strict decoding. The walk has found whatever makes it
	// fail; it is run anyway as a backstop, and what it decoded is used
	// even when it reports unknown keys, so that all problems are listed.
	var raw rawConfig
	if err := v.UnmarshalExact(&raw, strictDecoding); err != nil && len(c.list) == 0 {
		c.add(topLevel, "", "cannot decode: %v", err)
	}
	switch {
	case !shape.ok:
		raw.Listeners = nil
	case len(raw.Listeners) != shape.n:
		if len(c.list) == 0 {
			c.add(topLevel, keyListeners, "cannot decode: %d listeners found, %d decoded", shape.n, len(raw.Listeners))
		}
		c.markBad(topLevel, keyListeners)
		raw.Listeners = nil
	}

	s := convert(c, path, &raw, shape)
	validateSnapshot(s, c)
	if err := c.err(path, func(idx int) string { return listenerLabel(s.Listeners, idx) }); err != nil {
		return nil, err
	}
	return s, nil
}

// listenersShape is what walk found of the listeners value.
type listenersShape struct {
	ok      bool         // absent, or a list
	n       int          // length of the list
	badElem map[int]bool // elements that are not tables
}

// walk reports every unknown key, at the top level, in each listener and in
// their blocks (health-check, upstream-tls, tls), and a listeners value that is not a list
// of tables.
func walk(c *collector, v *viper.Viper) listenersShape {
	// AllKeys, unlike AllSettings, also lists the keys whose value is null.
	// Nested keys come as "a.b": a block's key, or a table where a value
	// was expected.
	keys := v.AllKeys()
	slices.Sort(keys)
	for _, k := range keys {
		top, rest, nested := strings.Cut(k, ".")
		switch {
		case slices.Contains(topKeys(), top):
			if sub := blockKeys(top); sub != nil && nested {
				first, _, _ := strings.Cut(rest, ".")
				walkBlockKey(c, topLevel, top+"."+first, sub)
			}
		case slices.Contains(listenerKeys(), top):
			if !c.isBad(topLevel, top) {
				c.add(topLevel, top, "%s", unknownKeyMsg(top, topKeys(), listenerKeys(), "a listener key: set it in each listener"))
			}
		default:
			c.add(topLevel, k, "%s", unknownKeyMsg(k, topKeys(), listenerKeys(), "a listener key: set it in each listener"))
		}
	}

	settings := v.AllSettings()
	switch list := settings[keyListeners].(type) {
	case nil:
		return listenersShape{ok: true}
	case []any:
		shape := listenersShape{ok: true, n: len(list), badElem: make(map[int]bool)}
		for i, elem := range list {
			m, isMap := elem.(map[string]any)
			if !isMap {
				c.add(i, "", "a listener must be a table of keys (name, listen-addr, ...), not %s", describeValue(elem))
				shape.badElem[i] = true
				continue
			}
			lkeys := make([]string, 0, len(m))
			for k := range m {
				lkeys = append(lkeys, k)
			}
			slices.Sort(lkeys)
			for _, k := range lkeys {
				if !slices.Contains(listenerKeys(), k) {
					c.add(i, k, "%s", unknownKeyMsg(k, listenerKeys(), topKeys(), "a top-level key"))
					continue
				}
				block, isBlock := m[k].(map[string]any)
				if sub := blockKeys(k); sub != nil && isBlock {
					bkeys := make([]string, 0, len(block))
					for bk := range block {
						bkeys = append(bkeys, bk)
					}
					slices.Sort(bkeys)
					for _, bk := range bkeys {
						walkBlockKey(c, i, k+"."+bk, sub)
					}
				}
			}
		}
		return shape
	default:
		c.add(topLevel, keyListeners, "must be a list of listeners (\"- name: ...\" items in YAML, [[listeners]] tables in TOML), not %s", describeValue(list))
		return listenersShape{}
	}
}

// walkBlockKey reports the qualified key of a block when it is not one of
// known.
func walkBlockKey(c *collector, idx int, key string, known []string) {
	if slices.Contains(known, key) || c.isBad(idx, key) {
		return
	}
	// The members' TLS block was called tls before upstream-tls.
	if rest, ok := strings.CutPrefix(key, keyTLS+"."); ok && slices.Contains(blockKeys(keyUpstreamTLS), keyUpstreamTLS+"."+rest) {
		c.add(idx, key, "%s; did you mean %q? The members' TLS settings are in the %s block; tls is the TLS the listener serves to its clients",
			unknownKey, keyUpstreamTLS+"."+rest, keyUpstreamTLS)
		return
	}
	c.add(idx, key, "%s", unknownKeyMsg(key, known, nil, ""))
}

// convert builds the snapshot from raw, applying defaults and inheritance,
// and reports to c every value of the wrong type.
func convert(c *collector, path string, raw *rawConfig, shape listenersShape) *Snapshot {
	cv := converter{c}
	s := &Snapshot{
		File:            path,
		LogLevel:        strings.ToLower(cv.str(topLevel, keyLogLevel, raw.LogLevel, DefaultLogLevel)),
		LogFormat:       strings.ToLower(cv.str(topLevel, keyLogFormat, raw.LogFormat, DefaultLogFormat)),
		ShutdownTimeout: cv.duration(topLevel, keyShutdownTimeout, raw.ShutdownTimeout, DefaultShutdownTimeout),
		DNSServer:       cv.str(topLevel, keyDNSServer, raw.DNSServer, ""),
		DNSStaleMax:     cv.duration(topLevel, keyDNSStaleMax, raw.DNSStaleMax, 0),
		AdminAddr:       cv.str(topLevel, keyAdminAddr, raw.AdminAddr, ""),
		AdminPprof:      cv.boolean(topLevel, keyAdminPprof, raw.AdminPprof),
	}
	if !shape.ok {
		// Do not also report "no listeners".
		c.markBad(topLevel, keyListeners)
	}

	// The defaults listeners inherit. They are checked here, once, and a
	// listener inheriting a bad one does not report it again.
	def := Listener{
		DNSRefresh:        cv.duration(topLevel, keyDNSRefresh, raw.DNSRefresh, DefaultDNSRefresh),
		RetryDelay:        cv.duration(topLevel, keyRetryDelay, raw.RetryDelay, DefaultRetryDelay),
		DialTimeout:       cv.duration(topLevel, keyDialTimeout, raw.DialTimeout, DefaultDialTimeout),
		OnEndpointRemoved: strings.ToLower(cv.str(topLevel, keyOnEndpointRemoved, raw.OnEndpointRemoved, RemovedKeep)),
		DrainTimeout:      cv.duration(topLevel, keyDrainTimeout, raw.DrainTimeout, DefaultDrainTimeout),
		MaxConnections:    cv.integer(topLevel, keyMaxConnections, raw.MaxConnections, 0),
		IdleTimeout:       cv.duration(topLevel, keyIdleTimeout, raw.IdleTimeout, 0),
		KeepAlive:         cv.duration(topLevel, keyKeepAlive, raw.KeepAlive, DefaultKeepAlive),
		Policy:            strings.ToLower(cv.str(topLevel, keyPolicy, raw.Policy, DefaultPolicy)),
		HealthCheck:       cv.healthCheck(topLevel, raw.HealthCheck, unsetTimeoutCheck()),
		OnUnhealthy:       strings.ToLower(cv.str(topLevel, keyOnUnhealthy, raw.OnUnhealthy, DefaultOnUnhealthy)),
		MemberSync:        cv.memberSync(topLevel, raw.MemberSync),
	}
	checkEnum(c, topLevel, keyPolicy, def.Policy, policies())
	checkEnum(c, topLevel, keyOnUnhealthy, def.OnUnhealthy, unhealthyPolicies())
	checkHealthCheck(c, topLevel, checkTimeout(def.HealthCheck))
	checkPositive(c, topLevel, keyDNSRefresh, def.DNSRefresh)
	checkPositive(c, topLevel, keyRetryDelay, def.RetryDelay)
	checkPositive(c, topLevel, keyDialTimeout, def.DialTimeout)
	checkPositive(c, topLevel, keyDrainTimeout, def.DrainTimeout)
	checkEnum(c, topLevel, keyOnEndpointRemoved, def.OnEndpointRemoved, removedPolicies())
	checkLimits(c, topLevel, &def)

	s.Listeners = make([]Listener, len(raw.Listeners))
	for i := range raw.Listeners {
		if shape.badElem[i] {
			// Already reported: keep quiet about its keys.
			for _, k := range listenerKeys() {
				c.markBad(i, k)
			}
			continue
		}
		s.Listeners[i] = cv.listener(i, &raw.Listeners[i], &def)
	}
	return s
}

// converter converts parsed values to their Go types, reporting wrong types.
type converter struct{ c *collector }

// listener converts one listener; def holds the inherited defaults.
func (cv converter) listener(i int, rl *rawListener, def *Listener) Listener {
	l := Listener{
		Name:              cv.str(i, keyName, rl.Name, ""),
		ListenAddr:        cv.str(i, keyListenAddr, rl.ListenAddr, ""),
		DiscoverySRV:      cv.str(i, keyDiscoverySRV, rl.DiscoverySRV, ""),
		DiscoverySRVName:  cv.str(i, keyDiscoverySRVName, rl.DiscoverySRVName, ""),
		InsecureDiscovery: cv.boolean(i, keyInsecureDiscovery, rl.InsecureDiscovery),
		TrustedCAFile:     cv.str(i, keyTrustedCAFile, rl.TrustedCAFile, ""),
	}
	l.Endpoints, l.TLSEndpoints = cv.endpoints(i, rl.Endpoints)
	inheritDuration := func(key string, v any, d time.Duration) time.Duration {
		if v == nil {
			if cv.c.isBad(topLevel, key) {
				cv.c.markBad(i, key)
			}
			return d
		}
		return cv.duration(i, key, v, d)
	}
	l.DNSRefresh = inheritDuration(keyDNSRefresh, rl.DNSRefresh, def.DNSRefresh)
	l.RetryDelay = inheritDuration(keyRetryDelay, rl.RetryDelay, def.RetryDelay)
	l.DialTimeout = inheritDuration(keyDialTimeout, rl.DialTimeout, def.DialTimeout)
	l.DrainTimeout = inheritDuration(keyDrainTimeout, rl.DrainTimeout, def.DrainTimeout)
	l.IdleTimeout = inheritDuration(keyIdleTimeout, rl.IdleTimeout, def.IdleTimeout)
	l.KeepAlive = inheritDuration(keyKeepAlive, rl.KeepAlive, def.KeepAlive)
	if rl.MaxConnections == nil {
		l.MaxConnections = def.MaxConnections
		if cv.c.isBad(topLevel, keyMaxConnections) {
			cv.c.markBad(i, keyMaxConnections)
		}
	} else {
		l.MaxConnections = cv.integer(i, keyMaxConnections, rl.MaxConnections, 0)
	}
	inheritEnum := func(key string, v any, d string) string {
		if v == nil {
			if cv.c.isBad(topLevel, key) {
				cv.c.markBad(i, key)
			}
			return d
		}
		return strings.ToLower(cv.str(i, key, v, ""))
	}
	l.OnEndpointRemoved = inheritEnum(keyOnEndpointRemoved, rl.OnEndpointRemoved, def.OnEndpointRemoved)
	l.Policy = inheritEnum(keyPolicy, rl.Policy, def.Policy)
	l.OnUnhealthy = inheritEnum(keyOnUnhealthy, rl.OnUnhealthy, def.OnUnhealthy)
	if rl.MemberSync == nil {
		l.MemberSync = def.MemberSync
		if cv.c.isBad(topLevel, keyMemberSync) {
			cv.c.markBad(i, keyMemberSync)
		}
	} else {
		l.MemberSync = cv.memberSync(i, rl.MemberSync)
	}
	l.HealthCheck = checkTimeout(cv.healthCheck(i, rl.HealthCheck, def.HealthCheck))
	l.UpstreamTLS = cv.upstreamTLS(i, rl.UpstreamTLS)
	l.TLS = cv.listenTLS(i, rl.TLS)
	return l
}

// str converts a string value; nil gives def.
func (cv converter) str(idx int, key string, v any, def string) string {
	switch x := v.(type) {
	case nil:
		return def
	case string:
		return x
	default:
		cv.c.add(idx, key, "must be a string, not %s", describeValue(v))
		return def
	}
}

// boolean converts a boolean value; nil gives false.
func (cv converter) boolean(idx int, key string, v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	default:
		cv.c.add(idx, key, "must be true or false, not %s", describeValue(v))
		return false
	}
}

// integer converts a whole number; nil gives def. A fraction, a string or
// a number too large for an int is an error.
func (cv converter) integer(idx int, key string, v any, def int) int {
	switch x := v.(type) {
	case nil:
		return def
	case int:
		return x
	case int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		n, err := strconv.ParseInt(fmt.Sprint(x), 10, strconv.IntSize)
		if err != nil {
			cv.c.add(idx, key, "%v is too large", x)
			return def
		}
		return int(n)
	case float32, float64:
		cv.c.add(idx, key, "%v is not a whole number", x)
		return def
	default:
		cv.c.add(idx, key, "must be a whole number, not %s", describeValue(v))
		return def
	}
}

// duration converts a duration written as a Go duration string ("30s",
// "1m30s"); nil gives def. A bare number is an error: its unit would be a
// guess.
func (cv converter) duration(idx int, key string, v any, def time.Duration) time.Duration {
	switch x := v.(type) {
	case nil:
		return def
	case string:
		d, err := time.ParseDuration(strings.TrimSpace(x))
		if err == nil {
			return d
		}
		if isNumber(strings.TrimSpace(x)) {
			cv.c.add(idx, key, "%s", bareNumberMsg(strings.TrimSpace(x)))
		} else {
			cv.c.add(idx, key, "%q is not a duration: write a number with a unit (ns, us, ms, s, m, h), e.g. \"30s\", \"1m\" or \"1m30s\"", x)
		}
		return def
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		cv.c.add(idx, key, "%s", bareNumberMsg(fmt.Sprint(x)))
		return def
	default:
		cv.c.add(idx, key, "must be a duration such as \"30s\" or \"1m\", not %s", describeValue(v))
		return def
	}
}

// bareNumberMsg is the message for a duration written without a unit.
func bareNumberMsg(num string) string {
	example := "30s"
	if !strings.HasPrefix(num, "-") && num != "0" {
		example = num + "s"
	}
	return fmt.Sprintf("%s has no unit: write a duration with a unit, e.g. %q (seconds) or \"1m\"; a bare number is not accepted", num, example)
}

// isNumber reports whether s looks like a decimal number.
func isNumber(s string) bool {
	s = strings.TrimLeft(s, "+-")
	if s == "" {
		return false
	}
	digits := false
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits = true
		case r == '.' || r == '_' || r == 'e' || r == 'E':
		default:
			return false
		}
	}
	return digits
}

// endpoints converts the endpoints list; see cleanEndpoints.
func (cv converter) endpoints(idx int, v any) (eps, tlsEps []string) {
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		cv.c.add(idx, keyEndpoints, "must be a list of host:port strings, e.g. [\"10.0.0.1:2379\", \"10.0.0.2:2379\"], not %s", describeValue(v))
		return nil, nil
	}
	strs := make([]string, 0, len(list))
	for j, e := range list {
		str, ok := e.(string)
		if !ok {
			cv.c.add(idx, keyEndpoints, "endpoints[%d] must be a host:port string, not %s", j, describeValue(e))
			continue
		}
		strs = append(strs, str)
	}
	return cleanEndpoints(cv.c, idx, strs)
}

// cleanEndpoints trims each endpoint and strips its http:// or https://
// prefix, as etcd does; tlsEps are the endpoints of eps that were given as
// https://. When an endpoint is unusable it reports every endpoint problem
// of the list at once (validation then skips the key), so that one bad
// entry does not hide the others.
func cleanEndpoints(c *collector, idx int, list []string) (eps, tlsEps []string) {
	eps = make([]string, 0, len(list))
	for _, e := range list {
		e = strings.TrimSpace(e)
		if e == "" {
			c.add(idx, keyEndpoints, "empty endpoint in the list")
			continue
		}
		ep, https, err := stripScheme(e)
		if err != nil {
			c.add(idx, keyEndpoints, "%v", err)
			continue
		}
		eps = append(eps, ep)
		if https {
			tlsEps = append(tlsEps, ep)
		}
	}
	if c.isBad(idx, keyEndpoints) {
		for _, ep := range eps {
			if _, err := parseHostPort(ep, false, "10.0.0.1:2379"); err != nil {
				c.add(idx, keyEndpoints, "endpoint %q: %v", ep, err)
			}
		}
	}
	if len(eps) == 0 {
		return nil, nil
	}
	return eps, tlsEps
}

// describeValue names the type of a parsed value, and the value when short, for
// error messages.
func describeValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "an empty value"
	case string:
		return fmt.Sprintf("the string %q", x)
	case bool:
		return fmt.Sprintf("the boolean %v", x)
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return fmt.Sprintf("the number %v", x)
	case float32, float64:
		return fmt.Sprintf("the number %v", x)
	case []any:
		return "a list"
	case map[string]any:
		return "a table"
	case time.Time:
		return fmt.Sprintf("the date/time %s", x.Format(time.RFC3339))
	case fmt.Stringer:
		return fmt.Sprintf("the value %s (%T)", x, x)
	default:
		return fmt.Sprintf("a value of type %T", v)
	}
}
