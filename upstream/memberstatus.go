package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// statusPath is etcd's maintenance Status RPC as the JSON gateway of the
// client port serves it (3.4 and later, unless --enable-grpc-gateway is
// off): one more request on the check's kept-alive connection, rather
// than a gRPC connection to every member.
const statusPath = "/v3/maintenance/status"

// errNoStatus is the error of a member that answers Status with anything
// but a Status: its JSON gateway is off (404), or auth is on and the
// gateway has no user (etcd 3.6 asks one). The checks then do without.
var errNoStatus = errors.New("the member answers no Status")

// memberStatus is what the checks use of a member's Status answer.
type memberStatus struct {
	learner bool
	// leader is the member's leader's ID, 0 when it has none.
	leader uint64
	// applied is its raft applied index.
	applied uint64
	// alarms are the alarms it reports, sorted: the cluster's, since
	// etcd replicates them.
	alarms []string
}

// getStatus asks the member's Status.
func (r *etcdRound) getStatus(ctx context.Context) (memberStatus, error) {
	status, body, err := r.ask(ctx, http.MethodPost, statusPath, "{}", maxHealthBody)
	switch {
	case err != nil:
		return memberStatus{}, err
	case status != http.StatusOK:
		return memberStatus{}, fmt.Errorf("%w: POST %s: HTTP %d: %q", errNoStatus, statusPath, status, shorten(body))
	}
	return parseStatus(body)
}

// parseStatus reads a Status answer. The JSON gateway writes the proto's
// field names (is_learner), 64-bit numbers as strings, and leaves out
// what is zero; camelCase names are taken too. An answer without a
// header is not a Status.
func parseStatus(body []byte) (memberStatus, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m["header"] == nil {
		return memberStatus{}, fmt.Errorf("%w: POST %s: %q", errNoStatus, statusPath, shorten(body))
	}
	var s memberStatus
	var errs []string
	_ = json.Unmarshal(field(m, "is_learner", "isLearner"), &s.learner)
	_ = json.Unmarshal(field(m, "errors", "errors"), &errs)
	s.leader = jsonUint(field(m, "leader", "leader"))
	s.applied = jsonUint(field(m, "raft_applied_index", "raftAppliedIndex"))
	s.alarms = statusAlarms(errs)
	return s, nil
}

// field returns the value of m under either name.
func field(m map[string]json.RawMessage, name, camel string) json.RawMessage {
	if v, ok := m[name]; ok {
		return v
	}
	return m[camel]
}

// jsonUint reads a 64-bit number written as a string or a number; 0 when
// absent or unreadable.
func jsonUint(raw json.RawMessage) uint64 {
	n, err := strconv.ParseUint(strings.Trim(string(raw), `"`), 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// statusAlarms returns the alarms named in Status's errors, sorted, once
// each. etcd writes each alarm in its text form, "memberID:123
// alarm:NOSPACE".
func statusAlarms(errs []string) []string {
	var out []string
	for _, e := range errs {
		_, rest, ok := strings.Cut(e, "alarm:")
		name, _, _ := strings.Cut(strings.TrimSpace(rest), " ")
		if ok && name != "" && name != "NONE" {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
