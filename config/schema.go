package config

import (
	"reflect"
	"slices"
	"strings"
)

// level says where a key may be written.
type level uint8

const (
	// topOnly keys are written at the top level only, into Snapshot.
	topOnly level = iota
	// listenerOnly keys are written in a listener only, into Listener.
	listenerOnly
	// inherited keys are written in a listener, or at the top level as
	// the default of every listener that leaves them out.
	inherited
)

// kind says how a key's value is decoded, when its Go type does not.
type kind uint8

const (
	// byType decodes the value by the type of the field: string (an enum
	// when the key has values), bool, int or time.Duration.
	byType kind = iota
	// syncKind is member-sync: a duration, or off.
	syncKind
	// endpointsKind is a list of host:port, see cleanEndpoints.
	endpointsKind
	// blockKind is a table of qualified keys (health-check, tls...).
	blockKind
	// listKind is the listeners list, decoded by convert.
	listKind
	// idKind is a user or group: a name, or a number written as a
	// number or a string; see converter.id.
	idKind
	// idsKind is a list of idKind values.
	idsKind
	// modeKind is a file mode: an octal string; a bare number is refused,
	// since YAML reads 0660 as 432.
	modeKind
)

// rule is what a value must obey beyond its type.
type rule uint8

const (
	anyValue      rule = iota
	oneOf              // one of spec.values
	above0             // a duration greater than zero
	atLeast0           // a duration or number of 0 or more; 0 means spec.zero
	checksInRow        // a number of checks in a row, minFallRise to maxFallRise
	keepAliveRule      // see keepAliveProblem
	syncRule           // member-sync: a duration greater than zero, or off (0)
	modeRule           // a file mode: an octal string from 0 to 0777
)

// spec is one key of the file, declared once: the decoder, inheritance,
// the validation messages, the flags and the docs test all read it.
type spec struct {
	// key is the key as written; a block's keys are qualified by the
	// block ("health-check.type").
	key string
	at  level
	// field is the Go field the value goes to: of Snapshot for topOnly
	// keys, else of Listener ("HealthCheck.Type"); "" when decoded by hand.
	field string
	kind  kind
	// def is the built-in default; nil is the field's zero value.
	def any
	// values are the allowed values of an enumerated key, which are
	// case-insensitive.
	values []string
	rule   rule
	// zero says what 0 means, for atLeast0.
	zero string
	// flag is set when etcd's gateway has the flag --key for it.
	flag bool
	// doc is the type column of the key's row in docs/configuration.md.
	doc string
	// none is how check shows the zero value (an absent block); "" shows
	// it as it is.
	none string
	// shows is how check shows some values, by the value as written.
	shows map[string]string
}

// keySchema is the schema, built once: decoding reads it for every key
// of every file. Nothing modifies it.
var keySchema = slices.Clip(buildSchema())

// schema returns every key of the file, in the order of the docs: the
// top-level keys, then the listener keys, each block followed by its keys.
// The slice is shared: callers must not modify it.
func schema() []spec { return keySchema }

// buildSchema builds the schema; see schema.
func buildSchema() []spec {
	specs := append(topSpecs(), listenerSpecs()...)
	specs = append(specs, inheritedSpecs()...)
	specs = append(specs, tlsSpecs()...)
	return append(specs, spec{key: keyListeners, kind: listKind, doc: "list"})
}

// topSpecs returns the keys of the top level only.
func topSpecs() []spec {
	return []spec{
		{key: keyLogLevel, field: "LogLevel", def: DefaultLogLevel, values: []string{"debug", "info", "warn", "error"}, rule: oneOf, doc: "string"},
		{key: keyLogFormat, field: "LogFormat", def: DefaultLogFormat, values: []string{"text", "json"}, rule: oneOf, doc: "string"},
		{key: keyShutdownTimeout, field: "ShutdownTimeout", def: DefaultShutdownTimeout, rule: above0, doc: "duration"},
		{key: keyDNSServer, field: "DNSServer", doc: "host:port", none: "system resolver"},
		{key: keyDNSStaleMax, field: "DNSStaleMax", rule: atLeast0, zero: "no limit", doc: "duration"},
		{key: keyAdminAddr, field: "AdminAddr", doc: "host:port", none: "off (no /metrics, /healthz, /status)"},
		{key: keyAdminPprof, field: "AdminPprof", doc: "boolean"},
		{key: keyUpgradeSocket, field: "UpgradeSocket", doc: "path", none: "off (under systemd: $RUNTIME_DIRECTORY/upgrade.sock)"},
		{key: keyControlSocket, field: "ControlSocket", doc: "path", none: "off (under systemd: $RUNTIME_DIRECTORY/control.sock)"},
		{key: keyControlGroup, field: "ControlGroup", kind: idKind, doc: "group name or number", none: "none (root and the gateway's user only)"},
	}
}

// listenerSpecs returns the keys of a listener only, but its TLS blocks.
func listenerSpecs() []spec {
	return []spec{
		{key: keyName, at: listenerOnly, field: "Name", doc: "string"},
		{key: keyListenAddr, at: listenerOnly, field: "ListenAddr", flag: true, doc: "host:port, `unix:///path` or `systemd:NAME`"},
		{key: keyEndpoints, at: listenerOnly, kind: endpointsKind, flag: true, doc: "list of host:port"},
		{key: keyDiscoverySRV, at: listenerOnly, field: "DiscoverySRV", flag: true, doc: "DNS domain"},
		{key: keyDiscoverySRVName, at: listenerOnly, field: "DiscoverySRVName", flag: true, doc: "string"},
		{key: keyInsecureDiscovery, at: listenerOnly, field: "InsecureDiscovery", flag: true, doc: "boolean"},
		{key: keyTrustedCAFile, at: listenerOnly, field: "TrustedCAFile", flag: true, doc: "path", none: "none (system roots)"},
		{key: keySocketMode, at: listenerOnly, field: "SocketMode", kind: modeKind, def: DefaultSocketMode, rule: modeRule, doc: "octal string"},
		{key: keySocketOwner, at: listenerOnly, field: "SocketOwner", kind: idKind, doc: "user name or number", none: "the gateway's user"},
		{key: keySocketGroup, at: listenerOnly, field: "SocketGroup", kind: idKind, doc: "group name or number", none: "the gateway's group"},
		{key: keyAllowedUIDs, at: listenerOnly, field: "AllowedUIDs", kind: idsKind, doc: "list of user names or numbers", none: "anyone (no allow-list)"},
		{key: keyAllowedGIDs, at: listenerOnly, field: "AllowedGIDs", kind: idsKind, doc: "list of group names or numbers", none: "anyone (no allow-list)"},
	}
}

// inheritedSpecs returns the keys of a listener that the top level sets
// the default of.
func inheritedSpecs() []spec {
	return []spec{
		{key: keyDNSRefresh, at: inherited, field: "DNSRefresh", def: DefaultDNSRefresh, rule: above0, doc: "duration"},
		{key: keyRetryDelay, at: inherited, field: "RetryDelay", def: DefaultRetryDelay, rule: above0, flag: true, doc: "duration"},
		{key: keyDialTimeout, at: inherited, field: "DialTimeout", def: DefaultDialTimeout, rule: above0, doc: "duration"},
		{key: keyOnEndpointRemoved, at: inherited, field: "OnEndpointRemoved", def: DefaultOnEndpointRemoved,
			values: names(RemovedKeep, RemovedDrain, RemovedClose), rule: oneOf, doc: "string"},
		{key: keyDrainTimeout, at: inherited, field: "DrainTimeout", def: DefaultDrainTimeout, rule: above0, doc: "duration"},
		{key: keyMaxConnections, at: inherited, field: "MaxConnections", rule: atLeast0, zero: "no limit", doc: "integer", none: "no limit"},
		{key: keyIdleTimeout, at: inherited, field: "IdleTimeout", rule: atLeast0, zero: "off", doc: "duration", none: "off"},
		{key: keyKeepAlive, at: inherited, field: "KeepAlive", def: DefaultKeepAlive, rule: keepAliveRule, doc: "duration"},
		{key: keyPolicy, at: inherited, field: "Policy", def: DefaultPolicy,
			values: names(PolicyStickyRandom, PolicyRoundRobin, PolicyLeastConnections), rule: oneOf, doc: "string"},
		{key: keySlowStart, at: inherited, field: "SlowStart", def: DefaultSlowStart, rule: atLeast0, zero: "off", doc: "duration", none: "off (a returning member gets its full share at once)"},
		{key: keyRebalance, at: inherited, field: "Rebalance", def: DefaultRebalance, doc: "boolean"},
		{key: keyMaxConnectionAge, at: inherited, field: "MaxConnectionAge", rule: atLeast0, zero: "off", doc: "duration", none: "off"},
		{key: keyHealthCheck, at: inherited, kind: blockKind, doc: "block"},
		{key: keyCheckType, at: inherited, field: "HealthCheck.Type", def: DefaultCheckType,
			values: names(CheckNone, CheckTCP, CheckEtcd), rule: oneOf, doc: "string", shows: map[string]string{
				string(CheckNone): "none (only failed dials take an endpoint out; retry-delay brings it back)",
				string(CheckTCP):  "tcp (a connect within the timeout)",
				string(CheckEtcd): "etcd (GET /health on the client port; /readyz or Status for learners, alarms and catch-up)",
			}},
		{key: keyCheckInterval, at: inherited, field: "HealthCheck.Interval", def: DefaultCheckInterval, rule: above0, doc: "duration"},
		{key: keyCheckTimeout, at: inherited, field: "HealthCheck.Timeout", def: DefaultCheckTimeout, rule: above0, doc: "duration"},
		{key: keyCheckFall, at: inherited, field: "HealthCheck.Fall", def: DefaultFall, rule: checksInRow, doc: "integer"},
		{key: keyCheckRise, at: inherited, field: "HealthCheck.Rise", def: DefaultRise, rule: checksInRow, doc: "integer"},
		{key: keyLeaderlessMax, at: inherited, field: "HealthCheck.LeaderlessMax", def: DefaultLeaderlessMax, rule: above0, doc: "duration"},
		{key: keyLagMax, at: inherited, field: "HealthCheck.LagMax", def: DefaultLagMax, rule: atLeast0, zero: "no wait", doc: "integer",
			none: "0 (a returning member gets clients without waiting to catch up)"},
		{key: keySuspectAfter, at: inherited, field: "HealthCheck.SuspectAfter", def: DefaultSuspectAfter, rule: atLeast0, zero: "off", doc: "duration",
			none: "off (a frozen member is found by the checks of every interval only)"},
		{key: keyOnUnhealthy, at: inherited, field: "OnUnhealthy", def: DefaultOnUnhealthy,
			values: names(UnhealthyKeep, UnhealthyClose), rule: oneOf, doc: "string"},
		{key: keyMemberSync, at: inherited, field: "MemberSync", kind: syncKind, rule: syncRule, doc: "duration or `off`", none: "off"},
	}
}

// tlsSpecs returns a listener's TLS blocks and their keys.
func tlsSpecs() []spec {
	return []spec{
		{key: keyUpstreamTLS, at: listenerOnly, kind: blockKind, doc: "block",
			none: "none (plain TCP to the members, except those discovered through _etcd-client-ssl; client bytes passed through)"},
		{key: keyUpCAFile, at: listenerOnly, field: "UpstreamTLS.CAFile", doc: "path", none: "none (system roots)"},
		{key: keyUpCertFile, at: listenerOnly, field: "UpstreamTLS.CertFile", doc: "path", none: "none (no client certificate)"},
		{key: keyUpKeyFile, at: listenerOnly, field: "UpstreamTLS.KeyFile", doc: "path", none: "none"},
		{key: keyUpServerName, at: listenerOnly, field: "UpstreamTLS.ServerName", doc: "host name", none: "none (each endpoint's host)"},
		{key: keyUpPassthrough, at: listenerOnly, field: "UpstreamTLS.Passthrough", doc: "boolean", shows: map[string]string{
			"true":  "true (client bytes passed through; TLS for health checks and member sync only)",
			"false": "false (the gateway speaks TLS to the members for its clients)",
		}},
		{key: keyTLS, at: listenerOnly, kind: blockKind, doc: "block", none: "none (clients speak plain TCP to the listener)"},
		{key: keyTLSCertFile, at: listenerOnly, field: "TLS.CertFile", doc: "path"},
		{key: keyTLSKeyFile, at: listenerOnly, field: "TLS.KeyFile", doc: "path"},
		{key: keyTLSClientCA, at: listenerOnly, field: "TLS.ClientCAFile", doc: "path", none: "none (no client certificate asked)"},
	}
}

// block returns the block key of a qualified key, or "".
func (sp *spec) block() string {
	b, _, ok := strings.Cut(sp.key, ".")
	if !ok {
		return ""
	}
	return b
}

// in reports whether the key may be written at the top level (top) or in
// a listener.
func (sp *spec) in(top bool) bool {
	if top {
		return sp.at != listenerOnly
	}
	return sp.at != topOnly
}

// specsOf returns the keys of a level (top, or a listener) that are not
// in a block, in schema order.
func specsOf(top bool) []*spec {
	all := schema()
	out := make([]*spec, 0, len(all))
	for i := range all {
		if all[i].in(top) && all[i].block() == "" {
			out = append(out, &all[i])
		}
	}
	return out
}

// keysOf returns the key names of specs.
func keysOf(specs []*spec) []string {
	keys := make([]string, len(specs))
	for i, sp := range specs {
		keys[i] = sp.key
	}
	return keys
}

// topKeys returns the keys allowed at the top level of the file.
func topKeys() []string { return keysOf(specsOf(true)) }

// listenerKeys returns the keys allowed in a listener.
func listenerKeys() []string { return keysOf(specsOf(false)) }

// blockKeys returns the qualified keys allowed inside the block key, or
// nil when key is not a block.
func blockKeys(key string) []string {
	var keys []string
	for _, sp := range schema() {
		if sp.block() == key {
			keys = append(keys, sp.key)
		}
	}
	return keys
}

// flagFor returns the command-line flag that sets key, or "".
func flagFor(key string) string {
	for _, sp := range schema() {
		if sp.key == key && sp.flag {
			return "--" + key
		}
	}
	return ""
}

// specOf returns the spec of key, which is one of the schema's.
func specOf(key string) *spec {
	all := schema()
	for i := range all {
		if all[i].key == key {
			return &all[i]
		}
	}
	panic("config: no key " + key + " in the schema")
}

// fieldOf returns the field at path ("HealthCheck.Type") of the struct
// root points to.
func fieldOf(root reflect.Value, path string) reflect.Value {
	v := root.Elem()
	for _, name := range strings.Split(path, ".") {
		v = v.FieldByName(name)
	}
	return v
}

// setDefaults sets every field of the level's keys to its built-in
// default: root is a *Snapshot (top) or a *Listener.
func setDefaults(root reflect.Value, top bool) {
	for _, sp := range schema() {
		if sp.field == "" || sp.def == nil || !sp.in(top) || (top && sp.at == inherited) {
			continue
		}
		f := fieldOf(root, sp.field)
		f.Set(reflect.ValueOf(sp.def).Convert(f.Type()))
	}
}

// defaultListener returns a listener with every built-in default.
func defaultListener() Listener {
	var l Listener
	setDefaults(reflect.ValueOf(&l), false)
	return l
}

// levelSpecs returns the keys written at the levels at, blocks' keys
// included, in schema order, without the listeners list.
func levelSpecs(at ...level) []*spec {
	all := schema()
	out := make([]*spec, 0, len(all))
	for i := range all {
		if slices.Contains(at, all[i].at) && all[i].kind != listKind {
			out = append(out, &all[i])
		}
	}
	return out
}
