package upstream

import (
	"errors"
	"slices"
	"testing"
)

// TestParseStatus reads Status answers as etcd's JSON gateway writes them
// (3.7.3's, as a learner, with an alarm: camelCase at the top, the
// proto's names in the header, numbers as strings), and refuses what is
// no Status.
func TestParseStatus(t *testing.T) {
	s, err := parseStatus([]byte(`{"header":{"cluster_id":"1","member_id":"15446462905938794801","revision":"1","raft_term":"2"},` +
		`"version":"3.7.3","leader":"16361749894137694346","raftIndex":"6","raftAppliedIndex":"6","isLearner":true,` +
		`"errors":["memberID:15446462905938794801 alarm:NOSPACE ","etcdserver: no leader"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if !s.learner || s.leader != 16361749894137694346 || s.applied != 6 || !slices.Equal(s.alarms, []string{"NOSPACE"}) {
		t.Fatalf("parsed %+v", s)
	}
	s, err = parseStatus([]byte(`{"header":{},"leader":7,"raft_applied_index":"9","is_learner":false}`))
	if err != nil || s.learner || s.leader != 7 || s.applied != 9 || s.alarms != nil {
		t.Fatalf("proto names: %+v %v", s, err)
	}
	for _, body := range []string{`{"health":"true","reason":""}`, `404 page not found`} {
		if _, err := parseStatus([]byte(body)); !errors.Is(err, errNoStatus) {
			t.Errorf("parseStatus(%q): %v, want errNoStatus", body, err)
		}
	}
}

// TestParseReadyz reads /readyz?verbose as etcd 3.7.3 answers a learner.
func TestParseReadyz(t *testing.T) {
	rz := parseReadyz([]byte("[+]data_corruption ok\n[+]serializable_read ok\n[-]linearizable_read failed: context deadline exceeded\n[-]non_learner failed: not supported for learner\n\n"))
	if c, ok := rz.find(nonLearner); !ok || c.ok || c.reason != "not supported for learner" {
		t.Fatalf("non_learner: %+v %v", c, ok)
	}
	if err := rz.err(); err == nil || err.Error() != "etcd check: GET /readyz: [-]linearizable_read failed: context deadline exceeded" {
		t.Fatalf("err: %v", err)
	}
	if err := parseReadyz([]byte("[+]non_learner ok\nok\n")).err(); err != nil {
		t.Fatalf("a ready member: %v", err)
	}
}
