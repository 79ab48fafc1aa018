package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// converter converts parsed values to their Go types, reporting wrong types.
type converter struct{ c *collector }

// set converts v, the value of the key sp, into the field f; a value of
// the wrong type is reported and leaves f as it was.
func (cv converter) set(idx int, sp *spec, v any, f reflect.Value) {
	switch {
	case sp.kind == syncKind:
		f.SetInt(int64(cv.memberSync(idx, v)))
	case sp.kind == idKind:
		f.SetString(cv.id(idx, sp.key, v))
	case sp.kind == idsKind:
		f.Set(reflect.ValueOf(cv.ids(idx, sp.key, v)))
	case sp.kind == modeKind:
		f.SetString(cv.mode(idx, sp.key, v, f.String()))
	case f.Type() == reflect.TypeFor[time.Duration]():
		f.SetInt(int64(cv.duration(idx, sp.key, v, time.Duration(f.Int()))))
	case f.Kind() == reflect.String:
		s := typed(cv, idx, sp.key, v, f.String(), "a string")
		if sp.values != nil {
			s = strings.ToLower(s)
		}
		f.SetString(s)
	case f.Kind() == reflect.Bool:
		f.SetBool(typed(cv, idx, sp.key, v, false, "true or false"))
	case f.Kind() == reflect.Int:
		f.SetInt(int64(cv.integer(idx, sp.key, v, int(f.Int()))))
	}
}

// typed converts v, a value of type T; nil gives def. A value of another
// type is reported with want, what the key takes, and gives def.
func typed[T any](cv converter, idx int, key string, v any, def T, want string) T {
	switch x := v.(type) {
	case nil:
		return def
	case T:
		return x
	}
	cv.c.add(idx, key, "must be %s, not %s", want, describeValue(v))
	return def
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

// id converts a user or group: a name, or a whole number (as a number or
// a string), as the string written. nil or a bad value gives "".
func (cv converter) id(idx int, key string, v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return strings.TrimSpace(x)
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return fmt.Sprint(x)
	}
	cv.c.add(idx, key, "must be a name or a number, not %s", describeValue(v))
	return ""
}

// ids converts a list of users or groups (see id); a single one is a list
// of one.
func (cv converter) ids(idx int, key string, v any) []string {
	list, ok := v.([]any)
	if !ok {
		if s := cv.id(idx, key, v); s != "" {
			return []string{s}
		}
		return nil
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		if s := cv.id(idx, key, e); s != "" {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// mode converts a file mode written as an octal string; nil gives def.
// A number is refused: YAML reads an unquoted 0660 as 432.
func (cv converter) mode(idx int, key string, v any, def string) string {
	switch x := v.(type) {
	case nil:
		return def
	case string:
		return strings.TrimSpace(x)
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		cv.c.add(idx, key, "the number %v: write the mode as a quoted octal string, e.g. \"0660\" (unquoted, YAML reads 0660 as the number 432)", x)
		return def
	}
	cv.c.add(idx, key, "must be an octal string such as \"0660\", not %s", describeValue(v))
	return def
}
