package config

import (
	"regexp"
	"strings"
	"unicode"
)

// The forms of the values, as JSON Schema patterns. They are written for
// both regular expression engines that read them: Go's (RE2, in the
// tests' validator) and ECMAScript's (in the editors), so they use
// neither look-around nor back-references. Where the decoder's check is
// more than a form (a port's range, a name's length), a pattern may let
// through what the decoder refuses, never the reverse.
const (
	// durationPattern is Go's time.ParseDuration syntax, around spaces
	// the decoder trims.
	durationPattern = `^\s*[-+]?(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)\s*$`

	// portPattern is 1 to 65535.
	portPattern   = `0*([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])`
	labelPattern  = `[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?`
	domainPattern = labelPattern + `(\.` + labelPattern + `)*\.?`
	// hostPattern is a DNS name or an IPv4 address (both dotted labels),
	// or an IPv6 address in brackets.
	hostPattern     = `(` + domainPattern + `|\[[0-9A-Fa-f:.]+(%[^\]]+)?\])`
	hostPortPattern = hostPattern + `:` + portPattern

	// endpointPattern is host:port, optionally after http:// or https://
	// (in any case, with a trailing slash), around spaces.
	endpointPattern = `^\s*([Hh][Tt][Tt][Pp][Ss]?://` + hostPortPattern + `/?|` + hostPortPattern + `)\s*$`

	// listenAddrPattern is host:port (the host may be empty: every
	// address), unix:///absolute/path (at most maxSocketPath bytes) or
	// systemd:NAME.
	listenAddrPattern = `^(` + hostPattern + `?:` + portPattern +
		`|unix:///[^\x00]{0,105}[^/\x00]` +
		`|systemd:[^: \t\n]{1,255})$`
)

// form is a pattern, and what an editor says of a value that does not
// match it (patternErrorMessage, which VS Code's and the YAML language
// server's validators read, and others ignore).
type form struct{ pattern, message string }

// schema is a string of the form.
func (f form) schema() object {
	return object{"type": "string", "pattern": f.pattern, "patternErrorMessage": f.message}
}

// stringForm returns the form of the string keys that have one; the
// zero form for the others. An empty string counts as the key left out,
// except for the required keys.
func stringForm(key string) form {
	switch key {
	case keyName:
		return form{`^[A-Za-z0-9_.-]{1,64}$`, "1 to 64 letters, digits, '-', '_' or '.'"}
	case keyListenAddr:
		return form{listenAddrPattern, `host:port ("127.0.0.1:23790", ":23790", "[::1]:23790"), unix:///absolute/path or systemd:NAME`}
	case keyDNSServer:
		return form{`^(` + hostPortPattern + `)?$`, `host:port, the port required, e.g. "10.0.0.53:53"`}
	case keyAdminAddr:
		return form{`^(` + hostPattern + `?:` + portPattern + `)?$`, `host:port, e.g. "127.0.0.1:23800"`}
	case keyDiscoverySRV:
		return form{`^(` + domainPattern + `)?$`, `a DNS domain, e.g. "example.com"`}
	case keyDiscoverySRVName:
		return form{`^([A-Za-z0-9_-]{0,45}[A-Za-z0-9_])?$`, "up to 46 letters, digits, '-' or '_', not ending in '-'"}
	case keyUpServerName:
		return form{`^[^ \t/:]*$`, "a host name, without a port"}
	}
	return form{}
}

// kindForm returns the form of the values of a kind that is written as
// a string: a duration, an endpoint, a file mode, member-sync's off.
func kindForm(k kind) form {
	switch k {
	case endpointsKind:
		return form{endpointPattern, `host:port, optionally after http:// or https://, e.g. "10.0.0.1:2379"`}
	case modeKind:
		return form{`^\s*0*[0-7]{1,3}\s*$`, `a quoted octal string from "0" to "0777", e.g. "0660"`}
	case syncKind:
		return form{`^\s*` + anyCase(memberSyncOff) + `\s*$`, `a duration, or "off"`}
	}
	return form{durationPattern, `a duration with a unit (ns, us, ms, s, m, h), e.g. "30s", "1m" or "1m30s"`}
}

// durationSchema is a duration that obeys r: a positive one has a digit
// other than 0 and no minus sign; one of 0 or more has no minus sign
// before a digit other than 0.
func durationSchema(r rule) object {
	s := kindForm(byType).schema()
	switch r {
	case above0, keepAliveRule, syncRule:
		s["allOf"] = []object{
			{"pattern": "[1-9]", "patternErrorMessage": "must be greater than zero"},
			{"not": object{"type": "string", "pattern": `^\s*-`}, "errorMessage": "must be greater than zero"},
		}
	case atLeast0:
		s["not"] = object{"type": "string", "pattern": `^\s*-.*[1-9]`}
		s["errorMessage"] = "must be 0 or more"
	}
	return s
}

// anyCase returns a pattern of the words, in any case, as alternatives:
// character classes, since an ECMAScript pattern can't carry a flag.
func anyCase(words ...string) string {
	alts := make([]string, len(words))
	for i, w := range words {
		var b strings.Builder
		for _, r := range w {
			if unicode.IsLetter(r) && unicode.ToUpper(r) != unicode.ToLower(r) {
				b.WriteString("[" + string(unicode.ToLower(r)) + string(unicode.ToUpper(r)) + "]")
				continue
			}
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
		alts[i] = b.String()
	}
	return strings.Join(alts, "|")
}
