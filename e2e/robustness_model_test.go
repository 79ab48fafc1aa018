//go:build linux

package e2e

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/anishathalye/porcupine"
)

// kvOp is one operation as its client saw it: what it asked, what it got,
// and when (call and ret, on the traffic's clock).
type kvOp struct {
	client int
	put    bool
	key    string
	// value is what a put wrote, or what a get read.
	value string
	// found: the get found the key.
	found bool
	// rev is the put's revision, or the mod revision of what a get read.
	rev int64
	// unknown: the put failed after it may have been sent. Its revision,
	// if it was applied, comes from the members' event log (patch).
	unknown   bool
	call, ret int64
}

// register is the state of one key in the model: its value and the
// revision that wrote it (0: no such key).
type register struct {
	value string
	rev   int64
}

// kvModel is the sequential specification the history must match, a
// register per key, checked key by key: a put sets the key at a revision
// greater than the one before; a get reads the value and the revision of
// the last put.
func kvModel() porcupine.Model {
	return porcupine.Model{
		Partition: partitionByKey,
		Init:      func() any { return register{} },
		Step: func(state, input, _ any) (bool, any) {
			st, op := state.(register), input.(kvOp)
			if op.put {
				return op.rev > st.rev, register{op.value, op.rev}
			}
			return op.found == (st.rev != 0) && op.value == st.value && op.rev == st.rev, st
		},
		DescribeOperation: func(input, _ any) string { return input.(kvOp).String() },
		DescribeState: func(state any) string {
			st := state.(register)
			return fmt.Sprintf("%q@%d", st.value, st.rev)
		},
	}
}

func (op kvOp) String() string {
	switch {
	case op.put && op.unknown:
		return fmt.Sprintf("put(%s, %s) → ? (applied at %d)", op.key, op.value, op.rev)
	case op.put:
		return fmt.Sprintf("put(%s, %s) → %d", op.key, op.value, op.rev)
	case op.found:
		return fmt.Sprintf("get(%s) → %s@%d", op.key, op.value, op.rev)
	}
	return fmt.Sprintf("get(%s) → none", op.key)
}

// partitionByKey splits a history by key: registers are independent.
func partitionByKey(history []porcupine.Operation) [][]porcupine.Operation {
	byKey := map[string][]porcupine.Operation{}
	var keys []string
	for _, op := range history {
		k := op.Input.(kvOp).key
		if _, ok := byKey[k]; !ok {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], op)
	}
	out := make([][]porcupine.Operation, len(keys))
	for i, k := range keys {
		out[i] = byKey[k]
	}
	return out
}

// patch resolves the puts of unknown outcome with applied, the revision
// of every value in the members' event log, as etcd's robustness tests
// do: a put that never made it there never happened and is left out; one
// that did took effect at its revision, at some time after its call,
// which porcupine is left to find (its return is the end of the history).
func patch(history []kvOp, applied map[string]int64) []kvOp {
	var end int64
	for _, op := range history {
		end = max(end, op.ret)
	}
	out := make([]kvOp, 0, len(history))
	for _, op := range history {
		if op.unknown {
			rev, ok := applied[op.value]
			if !ok {
				continue
			}
			op.rev, op.ret = rev, end+1
		}
		out = append(out, op)
	}
	return out
}

// linearizabilityTimeout bounds the checker; a history it can't decide
// in that time fails the run too.
const linearizabilityTimeout = time.Minute

// checkLinearizable checks a patched history against kvModel. On a
// violation, or a history the checker can't decide, it writes porcupine's
// visualization into the directory dir returns, and says where.
func checkLinearizable(history []kvOp, dir func() string) error {
	ops := make([]porcupine.Operation, len(history))
	for i, op := range history {
		ops[i] = porcupine.Operation{ClientId: op.client, Input: op, Call: op.call, Return: op.ret}
	}
	model := kvModel()
	result, info := porcupine.CheckOperationsVerbose(model, ops, linearizabilityTimeout)
	if result == porcupine.Ok {
		return nil
	}
	path := filepath.Join(dir(), "linearizability.html")
	if err := porcupine.VisualizePath(model, info, path); err != nil {
		return fmt.Errorf("history of %d operations: %s; visualization: %w", len(ops), result, err)
	}
	return fmt.Errorf("history of %d operations: %s (not linearizable, or undecided in %s); visualization: %s", len(ops), result, linearizabilityTimeout, path)
}
