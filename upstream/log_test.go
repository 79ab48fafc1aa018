package upstream

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/internal/testutil"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/etcd-gateway/etcd-gateway/resolver"
)

// TestTransitionsAreLogged: every up/down transition is one log line with
// the endpoint and the reason.
func TestTransitionsAreLogged(t *testing.T) {
	f := newFakeEtcd(t, false)
	log, hook := logtest.NewNullLogger()
	log.SetLevel(logrus.DebugLevel)
	hc := HealthCheck{Type: config.CheckEtcd, Interval: 5 * time.Millisecond, Timeout: time.Second, Fall: 1, Rise: 1}
	p := NewPool(Options{Settings: Settings{RetryDelay: time.Hour, HealthCheck: hc}, Log: log})
	t.Cleanup(p.Close)
	p.UpdateFrom("config", resolver.Static([]string{f.addr}))
	ep := endpoint(p, f.addr)

	find := func(msg string) *logrus.Entry {
		t.Helper()
		var found *logrus.Entry
		testutil.WaitFor(t, fmt.Sprintf("log line %q", msg), 5*time.Second, func() bool {
			for _, e := range hook.AllEntries() {
				if e.Message == msg && e.Data["endpoint"] == f.addr {
					found = e
					return true
				}
			}
			return false
		})
		return found
	}
	f.answer.Store(answerNoLeader)
	e := find("endpoint unhealthy")
	if e.Level != logrus.WarnLevel || !strings.Contains(fmt.Sprint(e.Data["reason"]), "RAFT NO LEADER") {
		t.Errorf("unhealthy line: level %s, fields %v", e.Level, e.Data)
	}
	f.answer.Store(answerHealthy)
	e = find("endpoint healthy")
	if e.Level != logrus.InfoLevel || e.Data["reason"] != "health check passed" {
		t.Errorf("healthy line: level %s, fields %v", e.Level, e.Data)
	}
	p.markDown(ep, errors.New("connection refused"))
	e = find("endpoint deactivated")
	if e.Data["reason"] != "dial failed" || e.Data["error"] != "connection refused" {
		t.Errorf("deactivated line: fields %v", e.Data)
	}
	e = find("endpoint re-activated")
	// A member coming back is good news: info, not a warning.
	if e.Level != logrus.InfoLevel || e.Data["reason"] != "health check passed" {
		t.Errorf("re-activated line: level %s, fields %v", e.Level, e.Data)
	}
	n := 0
	for _, e := range hook.AllEntries() {
		if e.Message == "endpoint unhealthy" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d unhealthy lines for one transition", n)
	}
}
