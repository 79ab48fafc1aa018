package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"
)

// Diff is what one snapshot changes in another, as `check --diff` and
// `reload` say it: the top-level keys whose values change, the listeners
// added and removed (matched by name), and what changes in the others.
type Diff struct {
	Keys           []KeyChange
	Added, Removed []string
	Changed        []ListenerDiff
}

// ListenerDiff is what changes in one listener.
type ListenerDiff struct {
	Name string
	Keys []KeyChange
	// Files are the files the listener references whose content changed
	// on disk while their paths stayed.
	Files                            []string
	EndpointsAdded, EndpointsRemoved []string
}

// KeyChange is a key whose value changes, both values as check shows
// them (durations without trailing zero units, "off" for what is off).
type KeyChange struct {
	Key, Old, New string
	// Note says when the change waits for a restart; "" otherwise.
	Note string
}

// Changes returns the lines of what next changes in old; see Diff.Lines.
func Changes(old, next *Snapshot) []string { return Compare(old, next).Lines() }

// Compare returns what next changes in old, listeners and keys in order:
// listeners by name, keys in the order of the docs. The endpoints are as
// written, https:// kept for the members that serve TLS.
func Compare(old, next *Snapshot) Diff {
	d := Diff{Keys: keyChanges(reflect.ValueOf(old), reflect.ValueOf(next), levelSpecs(topOnly))}
	for _, l := range next.Listeners {
		o, ok := old.Listener(l.Name)
		switch {
		case !ok:
			d.Added = append(d.Added, l.Name)
		case !reflect.DeepEqual(o, l):
			d.Changed = append(d.Changed, compareListener(o, l))
		}
	}
	for _, l := range old.Listeners {
		if _, ok := next.Listener(l.Name); !ok {
			d.Removed = append(d.Removed, l.Name)
		}
	}
	slices.Sort(d.Added)
	slices.Sort(d.Removed)
	slices.SortFunc(d.Changed, func(a, b ListenerDiff) int { return strings.Compare(a.Name, b.Name) })
	return d
}

// Listener returns what changes in the listener name: its entry of
// Changed, else one that changes nothing.
func (d Diff) Listener(name string) ListenerDiff {
	for _, l := range d.Changed {
		if l.Name == name {
			return l
		}
	}
	return ListenerDiff{Name: name}
}

// compareListener returns what next changes in old, two listeners of the
// same name.
func compareListener(old, next Listener) ListenerDiff {
	ld := ListenerDiff{Name: next.Name, Keys: keyChanges(reflect.ValueOf(&old), reflect.ValueOf(&next), levelSpecs(listenerOnly, inherited))}
	if old.FilesDigest != next.FilesDigest && slices.Equal(old.Files(), next.Files()) {
		ld.Files = next.Files()
	}
	o, n := writtenEndpoints(old), writtenEndpoints(next)
	ld.EndpointsAdded, ld.EndpointsRemoved = missing(n, o), missing(o, n)
	return ld
}

// writtenEndpoints returns the endpoints of l as the file writes them,
// https:// in front of the members that serve TLS.
func writtenEndpoints(l Listener) []string {
	out := make([]string, len(l.Endpoints))
	for i, ep := range l.Endpoints {
		out[i] = ep
		if slices.Contains(l.TLSEndpoints, ep) {
			out[i] = "https://" + ep
		}
	}
	return out
}

// missing returns the elements of a that b lacks, in a's order.
func missing(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// keyChanges returns the keys of specs whose values differ between old
// and next, a *Snapshot or a *Listener each. A block is a key of its own
// when it is a setting by itself (upstream-tls: an empty block means TLS
// with the system roots).
func keyChanges(old, next reflect.Value, specs []*spec) []KeyChange {
	var out []KeyChange
	for _, sp := range specs {
		path := sp.field
		if sp.kind == blockKind {
			path = blockSetField(old, sp.key)
		}
		if path == "" || sp.kind == endpointsKind {
			continue
		}
		o, n := fieldOf(old, path), fieldOf(next, path)
		if reflect.DeepEqual(o.Interface(), n.Interface()) {
			continue
		}
		out = append(out, KeyChange{Key: sp.key, Old: shownValue(sp, o), New: shownValue(sp, n), Note: startOnlyNote(sp.key)})
	}
	return out
}

// blockSetField returns the path of the field that says whether the block
// key is written, for a block whose struct has one (Enabled), else "".
func blockSetField(root reflect.Value, key string) string {
	keys := blockKeys(key)
	if len(keys) == 0 {
		return ""
	}
	parent, _, _ := strings.Cut(specOf(keys[0]).field, ".")
	if f := fieldOf(root, parent).FieldByName("Enabled"); f.IsValid() && f.Kind() == reflect.Bool {
		return parent + ".Enabled"
	}
	return ""
}

// shownValue returns the value f of the key sp as a diff line shows it.
func shownValue(sp *spec, f reflect.Value) string {
	switch {
	case sp.kind == blockKind && f.Bool():
		return "set"
	case f.IsZero() && sp.none != "":
		none, _, _ := strings.Cut(sp.none, " (")
		return none
	case f.Type() == reflect.TypeFor[time.Duration]():
		return fmtDuration(time.Duration(f.Int()))
	case f.Kind() == reflect.Slice:
		parts := make([]string, f.Len())
		for i := range parts {
			parts[i] = fmt.Sprint(f.Index(i).Interface())
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case f.Kind() == reflect.String && f.String() == "":
		return `""`
	}
	return fmt.Sprint(f.Interface())
}

// startOnlyNote is the note of a key the gateway reads at start only.
func startOnlyNote(key string) string {
	switch key {
	case keyUpgradeSocket, keyControlSocket, keyControlGroup:
		return " (read at start: a restart applies it)"
	}
	return ""
}

// Lines returns the diff one change a line, "+" added, "-" removed, "~"
// changed: the top-level keys, the listeners added, those removed, then
// each changed listener followed by its keys, its files and its
// endpoints added and removed.
func (d Diff) Lines() []string {
	var out []string
	for _, k := range d.Keys {
		out = append(out, "~ "+k.String())
	}
	for _, n := range d.Added {
		out = append(out, "+ listener "+n)
	}
	for _, n := range d.Removed {
		out = append(out, "- listener "+n)
	}
	for _, l := range d.Changed {
		out = append(out, l.lines()...)
	}
	return out
}

// String returns "key: old → new", and the note.
func (k KeyChange) String() string {
	return fmt.Sprintf("%s: %s → %s%s", k.Key, k.Old, k.New, k.Note)
}

// lines returns the lines of one changed listener.
func (l ListenerDiff) lines() []string {
	prefix := "listener " + l.Name
	out := []string{"~ " + prefix}
	for _, k := range l.Keys {
		out = append(out, "~ "+prefix+" "+k.String())
	}
	if len(l.Files) > 0 {
		out = append(out, "~ "+prefix+" files changed on disk: "+strings.Join(l.Files, ", "))
	}
	for _, a := range l.EndpointsAdded {
		out = append(out, "+ "+prefix+" endpoint "+a)
	}
	for _, a := range l.EndpointsRemoved {
		out = append(out, "- "+prefix+" endpoint "+a)
	}
	return out
}
