package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// readyzPath is etcd's readiness endpoint (3.5.11 and later, 3.4.29 and
// later): its named checks, and from 3.5.19 and 3.6 non_learner, which
// /health lacks.
const readyzPath = "/readyz"

// nonLearner is the /readyz check that fails on a learner.
const nonLearner = "non_learner"

// errNoReadyz is the error of a member that serves no /readyz (404): an
// older etcd.
var errNoReadyz = errors.New("the member serves no /readyz")

// readyzCheck is one line of /readyz?verbose: "[+]NAME ok" or
// "[-]NAME failed: REASON".
type readyzCheck struct {
	name   string
	ok     bool
	reason string
}

// readyz is a /readyz?verbose answer, its checks in order.
type readyz []readyzCheck

// getReadyz asks the member's GET /readyz?verbose.
func (r *etcdRound) getReadyz(ctx context.Context) (readyz, error) {
	status, body, err := r.ask(ctx, http.MethodGet, readyzPath+"?verbose", "", maxHealthBody)
	switch {
	case err != nil:
		return nil, err
	case status == http.StatusNotFound:
		return nil, errNoReadyz
	}
	rz := parseReadyz(body)
	if status != http.StatusOK && rz.err() == nil {
		// Not ready, and no check line says why: say what came.
		rz = append(rz, readyzCheck{name: "readyz", reason: fmt.Sprintf("HTTP %d: %q", status, shorten(body))})
	}
	return rz, nil
}

// parseReadyz reads the check lines of an answer; anything else in it is
// skipped (the final "ok").
func parseReadyz(body []byte) readyz {
	var out readyz
	for line := range strings.Lines(string(body)) {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "[+]"):
			name, _, _ := strings.Cut(line[3:], " ")
			out = append(out, readyzCheck{name: name, ok: true})
		case strings.HasPrefix(line, "[-]"):
			name, reason, _ := strings.Cut(line[3:], " failed: ")
			out = append(out, readyzCheck{name: name, reason: reason})
		}
	}
	return out
}

// find returns the check named name, and whether the answer has it.
func (rz readyz) find(name string) (readyzCheck, bool) {
	for _, c := range rz {
		if c.name == name {
			return c, true
		}
	}
	return readyzCheck{}, false
}

// err is why the member is not ready, but for its being a learner (which
// the pool handles apart): the first failed check, by name, or nil.
func (rz readyz) err() error {
	for _, c := range rz {
		if !c.ok && c.name != nonLearner {
			return fmt.Errorf("etcd check: GET %s: [-]%s failed: %s", readyzPath, c.name, c.reason)
		}
	}
	return nil
}
