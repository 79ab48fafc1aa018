package upstream

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
	"github.com/etcd-gateway/etcd-gateway/resolver"
)

func TestMembersToEndpoints(t *testing.T) {
	ms := []member{
		{Name: "seed", ClientURLs: []string{"http://10.0.0.1:2379"}},
		{Name: "new", ClientURLs: []string{"http://10.0.0.3:2379"}},
		{Name: "learner", IsLearner: true, ClientURLs: []string{"http://10.0.0.4:2379"}},
		{Name: "", ClientURLs: nil}, // added, not started yet
		{Name: "tls", ClientURLs: []string{"https://etcd-5.example.com:2379"}},
		{Name: "loopback first", ClientURLs: []string{"http://127.0.0.1:2379", "http://localhost:2379", "http://10.0.0.6:2379"}},
		{Name: "loopback only", ClientURLs: []string{"http://localhost:22379"}},
		{Name: "seed, second URL", ClientURLs: []string{"http://10.0.0.2:2379", "http://10.0.0.7:2379"}},
		{Name: "bad URLs", ClientURLs: []string{"unix://etcd.sock:0", "http://10.0.0.8", "::"}},
	}
	configured := map[string]bool{"10.0.0.1:2379": true, "10.0.0.7:2379": true}
	got := membersToEndpoints(ms, configured)
	want := []resolver.Endpoint{
		{Addr: "10.0.0.3:2379"},
		{Addr: "10.0.0.6:2379"},
		{Addr: "etcd-5.example.com:2379", TLS: true},
		{Addr: "localhost:22379"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("membersToEndpoints =\n%v\nwant\n%v", got, want)
	}
}

func TestMemberSyncFailureKeepsTheEndpoints(t *testing.T) {
	f := newFakeEtcd(t, false) // answers HTTP, not etcd's gRPC: MemberList fails
	log, hook := logtest.NewNullLogger()
	p := NewPool(Options{Settings: Settings{RetryDelay: time.Hour, DialTimeout: 200 * time.Millisecond, MemberSync: 10 * time.Millisecond}, Log: log})
	t.Cleanup(p.Close)
	p.UpdateFrom("config", resolver.Static([]string{f.addr}))
	testutil.WaitFor(t, "a failed sync round to be logged", 10*time.Second, func() bool {
		for _, e := range hook.AllEntries() {
			if e.Message == "member sync failed; the endpoints stay as they are" && strings.Contains(fmt.Sprint(e.Data["error"]), f.addr) {
				return true
			}
		}
		return false
	})
	for _, e := range hook.AllEntries() {
		if strings.Contains(fmt.Sprint(e.Data["error"]), "no endpoint to ask") {
			t.Fatal("a round ran before the pool had endpoints, and failed")
		}
	}
	if n := p.Stats().SyncRounds; n != 0 {
		t.Fatalf("%d sync rounds counted as done", n)
	}
	if eps := p.Endpoints(); len(eps) != 1 || eps[0].Addr() != f.addr {
		t.Fatalf("a failed sync changed the endpoints: %v", eps)
	}
}
