package config

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestReadinessKeys: slow-start, health-check.leaderless-max and
// health-check.lag-max have their defaults, are inherited from the top
// level (the health-check ones key by key, as the block's other keys), may
// be 0 where 0 means off, and are checked.
func TestReadinessKeys(t *testing.T) {
	const ok = "name: a\n    listen-addr: 127.0.0.1:23790\n    endpoints: [10.0.0.1:2379]"
	s, err := Parse("/etc/gw.yaml", []byte(listenerYAML(ok)))
	if err != nil {
		t.Fatal(err)
	}
	l := s.Listeners[0]
	if l.SlowStart != 30*time.Second || l.HealthCheck.LeaderlessMax != 3*time.Second || l.HealthCheck.LagMax != 1000 {
		t.Fatalf("defaults: slow-start %s, leaderless-max %s, lag-max %d", l.SlowStart, l.HealthCheck.LeaderlessMax, l.HealthCheck.LagMax)
	}

	top := "slow-start: 10s\nhealth-check: {leaderless-max: 5s, lag-max: 50}\n"
	s, err = Parse("/etc/gw.yaml", []byte(top+listenerYAML(ok, "health-check: {lag-max: 0}", "slow-start: 0s")))
	if err != nil {
		t.Fatal(err)
	}
	l = s.Listeners[0]
	if l.SlowStart != 0 || l.HealthCheck.LeaderlessMax != 5*time.Second || l.HealthCheck.LagMax != 0 {
		t.Fatalf("inherited and set: slow-start %s, leaderless-max %s, lag-max %d", l.SlowStart, l.HealthCheck.LeaderlessMax, l.HealthCheck.LagMax)
	}

	for data, want := range map[string]string{
		listenerYAML(ok, "slow-start: -1s"):                    `listener "a": key "slow-start": -1s: must be 0s (off) or more`,
		listenerYAML(ok, "health-check: {leaderless-max: 0s}"): `listener "a": key "health-check.leaderless-max": 0s: must be greater than zero`,
		listenerYAML(ok, "health-check: {lag-max: -5}"):        `listener "a": key "health-check.lag-max": -5: must be 0 (no wait) or more`,
		listenerYAML(ok, "health-check: {lag-max: 1s}"):        `listener "a": key "health-check.lag-max": must be a whole number`,
	} {
		_, err := Parse("/etc/gw.yaml", []byte(data))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q): %v, want %q", data, err, want)
		}
	}
}

// TestDescribeShowsReadinessKeys: check shows the new keys, with the
// etcd-only ones marked unused for another check type, and slow start off
// in the drop-in mode.
func TestDescribeShowsReadinessKeys(t *testing.T) {
	const ok = "name: a\n    listen-addr: 127.0.0.1:23790\n    endpoints: [10.0.0.1:2379]"
	s, err := Parse("/etc/gw.yaml", []byte(listenerYAML(ok, "health-check: {type: tcp}")))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	s.Describe(&buf)
	for _, w := range []string{"slow-start  30s", "health-check.leaderless-max  3s (used by type etcd only)", "health-check.lag-max  1000 (used by type etcd only)"} {
		if !strings.Contains(strings.Join(strings.Fields(buf.String()), "  "), strings.Join(strings.Fields(w), "  ")) {
			t.Errorf("%q missing in:\n%s", w, buf.String())
		}
	}
	f, err := FromFlags(DefaultFlags())
	if err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	f.Describe(&buf)
	if !strings.Contains(buf.String(), "off (a returning member gets its full share at once)") {
		t.Errorf("the drop-in mode's slow start is not shown off:\n%s", buf.String())
	}
}
