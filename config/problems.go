package config

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Problem is one thing wrong with a configuration.
type Problem struct {
	// Listener is the name of the listener the problem is in, or
	// "listeners[N]" (N counting from 0) when that listener has no valid
	// name. It is empty for a top-level key and for command-line flags.
	Listener string
	// Key is the key as written in the file (kebab-case), or the flag
	// ("--endpoints") for a configuration built from flags. It is empty
	// when the problem is not about one key.
	Key string
	// Msg says what is wrong and, where it can, how to fix it.
	Msg string
}

// String formats the problem without the file name:
// `listener "NAME": key "KEY": MSG`, leaving out the parts that are empty.
// An unknown key reads `listener "NAME": unknown key "KEY"; did you mean …`.
func (p Problem) String() string { return p.keyError("").Error() }

// keyError returns the problem as a *KeyError of file.
func (p Problem) keyError(file string) *KeyError {
	return &KeyError{File: file, Listener: p.Listener, Key: p.Key, Err: errors.New(p.Msg)}
}

// KeyError is an error about one key of a configuration, in the one form
// every package reports a bad value in, so that an operator finds the
// place the same way whoever found the problem:
// `FILE: listener "NAME": key "KEY": ERR`, leaving out the parts that are
// empty.
type KeyError struct {
	// File is the configuration file, or what stands for it ("command
	// line"); empty leaves it out.
	File string
	// Listener is the listener's name, or "listeners[N]" (see
	// Problem.Listener); empty for the top level.
	Listener string
	// Key is the key as written (kebab-case, a block's keys qualified),
	// or a flag ("--endpoints"); empty when the error is not about one key.
	Key string
	// Err says what is wrong.
	Err error
}

// Error formats the error as `FILE: listener "NAME": key "KEY": ERR`; a
// flag reads `flag --KEY: ERR`, and an unknown key
// `listener "NAME": unknown key "KEY"; did you mean …`.
func (e *KeyError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File + ": ")
	}
	if strings.HasPrefix(e.Listener, "listeners[") {
		b.WriteString(e.Listener + ": ")
	} else if e.Listener != "" {
		fmt.Fprintf(&b, "listener %q: ", e.Listener)
	}
	msg := fmt.Sprint(e.Err)
	if rest, ok := strings.CutPrefix(msg, unknownKey); ok && e.Key != "" {
		// Reads better than `key "x": unknown key`.
		fmt.Fprintf(&b, "%s %q%s", unknownKey, e.Key, rest)
		return b.String()
	}
	if strings.HasPrefix(e.Key, "-") {
		fmt.Fprintf(&b, "flag %s: ", e.Key)
	} else if e.Key != "" {
		fmt.Fprintf(&b, "key %q: ", e.Key)
	}
	b.WriteString(msg)
	return b.String()
}

// Unwrap returns Err, for errors.Is and errors.As.
func (e *KeyError) Unwrap() error { return e.Err }

// ValidationError is returned by Parse, Load, FromFlags and
// Snapshot.Validate when a configuration is well-formed but not valid. It
// lists every problem found, not only the first; callers get the list with
// errors.As.
type ValidationError struct {
	// File is the configuration file; empty for command-line flags.
	File string
	// Problems holds at least one problem: those at the top level first,
	// then those of each listener in file order.
	Problems []Problem
}

// Error lists the problems, one per line, each formatted as
// `FILE: listener "NAME": key "KEY": MSG`.
func (e *ValidationError) Error() string {
	if len(e.Problems) == 0 {
		if e.File == "" {
			return "invalid configuration"
		}
		return e.File + ": invalid configuration"
	}
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.keyError(e.File).Error()
	}
	return strings.Join(lines, "\n")
}

// unknownKey starts the message of every unknown-key problem.
const unknownKey = "unknown key"

// topLevel is the listener index of problems that are in no listener.
const topLevel = -1

// scopedKey identifies a key of the top level (idx == topLevel) or of the
// listener at index idx.
type scopedKey struct {
	idx int
	key string
}

// problem is a Problem before it gets its listener label.
type problem struct {
	idx      int
	key, msg string
}

// collector accumulates problems while a configuration is decoded and
// validated. A key with a problem is marked bad, so that later checks of the
// same key stay quiet instead of reporting a consequence of the first
// problem.
type collector struct {
	list []problem
	bad  map[scopedKey]bool
	// flags is set when the configuration comes from command-line flags:
	// keys are then shown as the flags that set them.
	flags bool
}

func newCollector(flags bool) *collector {
	return &collector{bad: make(map[scopedKey]bool), flags: flags}
}

// add records a problem with key of the listener idx (or topLevel) and marks
// the key bad.
func (c *collector) add(idx int, key, format string, args ...any) {
	c.list = append(c.list, problem{idx: idx, key: key, msg: fmt.Sprintf(format, args...)})
	c.markBad(idx, key)
}

// markBad marks key as already dealt with, without reporting anything.
func (c *collector) markBad(idx int, key string) {
	c.bad[scopedKey{idx, key}] = true
}

// isBad reports whether key already had a problem.
func (c *collector) isBad(idx int, key string) bool {
	return c.bad[scopedKey{idx, key}]
}

// name returns how key is shown to the user: the key itself, or the flag
// that sets it.
func (c *collector) name(key string) string {
	if !c.flags {
		return key
	}
	if f := flagFor(key); f != "" {
		return f
	}
	return key
}

// err returns nil when nothing was collected, else a *ValidationError.
// label gives the listener label of an index (see Problem.Listener).
func (c *collector) err(file string, label func(idx int) string) error {
	if len(c.list) == 0 {
		return nil
	}
	list := append([]problem(nil), c.list...)
	sort.SliceStable(list, func(i, j int) bool { return list[i].idx < list[j].idx })
	ve := &ValidationError{File: file, Problems: make([]Problem, len(list))}
	for i, p := range list {
		ve.Problems[i] = Problem{Key: c.name(p.key), Msg: p.msg}
		if p.idx != topLevel {
			ve.Problems[i].Listener = label(p.idx)
		}
	}
	return ve
}

// listenerLabel returns the Problem.Listener label of the listener at idx:
// its name, or "listeners[N]" when the name is not valid or an earlier
// listener has it too.
func listenerLabel(ls []Listener, idx int) string {
	if named(ls, idx) {
		return ls[idx].Name
	}
	return fmt.Sprintf("listeners[%d]", idx)
}

// listenerRef names the listener at idx in a message: `listener "NAME"`, or
// `listeners[N]` as listenerLabel decides.
func listenerRef(ls []Listener, idx int) string {
	if named(ls, idx) {
		return fmt.Sprintf("listener %q", ls[idx].Name)
	}
	return fmt.Sprintf("listeners[%d]", idx)
}

// named reports whether the listener at idx is identified by its name.
func named(ls []Listener, idx int) bool {
	if idx < 0 || idx >= len(ls) || !validName(ls[idx].Name) {
		return false
	}
	for _, l := range ls[:idx] {
		if l.Name == ls[idx].Name {
			return false
		}
	}
	return true
}
