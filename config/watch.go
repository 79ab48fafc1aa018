package config

import (
	"context"
	"crypto/sha256"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/sirupsen/logrus"
)

// Watch defaults.
const (
	// DefaultDebounce is how long the file must stay quiet after an event
	// before it is read: one save is often several writes.
	DefaultDebounce = 100 * time.Millisecond
	// DefaultPollInterval is how often the file's content is checked even
	// without any event, for filesystems without inotify (NFS, FUSE) and
	// for lost events.
	DefaultPollInterval = 30 * time.Second
)

// Reload is one outcome of reading the watched file after a change.
type Reload struct {
	// Snapshot is the new valid configuration; nil when Err is set.
	Snapshot *Snapshot
	// Err says why the file was rejected; the running config stays.
	Err error
	// Trigger is what caused the read: "file", "signal", "poll", or
	// "start" for the read Run makes when it starts watching.
	Trigger string
}

// Watcher watches a config file and sends a Reload for every change of its
// content, or of the content of the files it references (certificates,
// keys, CAs: see Snapshot.Files): fsnotify events on the file's directory (so renames over the
// file, delete-and-create and Kubernetes' ..data symlink swap are seen),
// explicit triggers (SIGHUP), and a periodic poll, all read by one goroutine
// so that two reads never overlap.
type Watcher struct {
	path     string
	debounce time.Duration
	poll     time.Duration
	log      logrus.FieldLogger

	trigger chan struct{}
	out     chan Reload
	// last is the hash of the content read last, valid or not; zero when
	// nothing was read or the file was missing.
	last [sha256.Size]byte
	// lastErr is the error of the last read that failed, so that a file
	// which stays unreadable is reported once, not at every poll.
	lastErr string
	// files are the TLS and CA files the last valid snapshot references;
	// their directories are watched too.
	files []string
}

// WatchOptions tune a Watcher; zero values mean the defaults.
type WatchOptions struct {
	Debounce     time.Duration
	PollInterval time.Duration
	Log          logrus.FieldLogger
}

// NewWatcher returns a watcher for path. Call Run to start it.
func NewWatcher(path string, opts WatchOptions) *Watcher {
	w := &Watcher{
		path:     path,
		debounce: opts.Debounce,
		poll:     opts.PollInterval,
		log:      opts.Log,
		trigger:  make(chan struct{}, 1),
		out:      make(chan Reload),
	}
	if w.debounce <= 0 {
		w.debounce = DefaultDebounce
	}
	if w.poll <= 0 {
		w.poll = DefaultPollInterval
	}
	if w.log == nil {
		w.log = logrus.New()
	}
	return w
}

// Reloads delivers one Reload per content change or trigger.
func (w *Watcher) Reloads() <-chan Reload { return w.out }

// Trigger asks for a reload now, even when the content is unchanged (as
// for SIGHUP). It never blocks.
func (w *Watcher) Trigger() {
	select {
	case w.trigger <- struct{}{}:
	default:
	}
}

// Run watches until ctx is done. It reads the file once as soon as its
// directory is watched, so a change made between loading the first snapshot
// and Run is not missed; the receiver compares snapshots and ignores an
// unchanged one. If inotify can't be set up Run logs a warning and relies on
// the poll and triggers.
func (w *Watcher) Run(ctx context.Context) {
	fw, err := fsnotify.NewWatcher()
	var events chan fsnotify.Event
	var errs chan error
	if err != nil {
		w.log.WithError(err).Warn("config file watch unavailable; polling only")
	} else {
		defer fw.Close()
		events, errs = fw.Events, fw.Errors
		w.watchDirs(fw)
	}

	w.check(ctx, "start", false)
	if fw != nil {
		w.watchDirs(fw) // the referenced files are known now
	}
	poll := time.NewTicker(w.poll)
	defer poll.Stop()
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-events:
			if ev.Has(fsnotify.Chmod) && !ev.Has(fsnotify.Write|fsnotify.Create|fsnotify.Remove|fsnotify.Rename) {
				continue
			}
			if !w.relevant(ev.Name) {
				continue
			}
			debounce.Reset(w.debounce)
		case err := <-errs:
			// An overflow or any watcher error: the file may have changed.
			w.log.WithError(err).Warn("config file watch error; re-reading the file")
			debounce.Reset(w.debounce)
		case <-debounce.C:
			if fw != nil {
				w.watchDirs(fw) // a symlink may now point elsewhere
			}
			w.check(ctx, "file", false)
		case <-poll.C:
			w.check(ctx, "poll", false)
		case <-w.trigger:
			w.check(ctx, "signal", true)
			if fw != nil {
				w.watchDirs(fw)
			}
		}
	}
}

// watchDirs watches the directory of the config file and of each file it
// references and, for those that are symlinks, the directory of their
// target. Directories already watched stay watched.
func (w *Watcher) watchDirs(fw *fsnotify.Watcher) {
	var dirs []string
	for _, f := range append([]string{w.path}, w.files...) {
		dirs = append(dirs, filepath.Dir(f))
		if real, err := filepath.EvalSymlinks(f); err == nil {
			dirs = append(dirs, filepath.Dir(real))
		}
	}
	slices.Sort(dirs)
	for _, d := range slices.Compact(dirs) {
		if slices.Contains(fw.WatchList(), d) {
			continue
		}
		if err := fw.Add(d); err != nil {
			w.log.WithError(err).WithField("dir", d).Warn("can't watch the directory of the config file or of a file it references; polling only")
		}
	}
}

// relevant reports whether an event on name may change the file or a file
// it references: the file itself, its symlink target, or Kubernetes'
// ..data and ..timestamp entries.
func (w *Watcher) relevant(name string) bool {
	base := filepath.Base(name)
	if base == filepath.Base(w.path) || strings.HasPrefix(base, "..") {
		return true
	}
	name = filepath.Clean(name)
	for _, f := range append([]string{w.path}, w.files...) {
		if name == filepath.Clean(f) {
			return true
		}
		if real, err := filepath.EvalSymlinks(f); err == nil && name == real {
			return true
		}
	}
	return false
}

// check reads the file and sends a Reload when its content changed since
// the last read, or always when forced.
func (w *Watcher) check(ctx context.Context, trigger string, force bool) {
	data, err := ReadFile(w.path)
	var r Reload
	if err != nil {
		if !force && err.Error() == w.lastErr {
			return // the same trouble as last time: said already
		}
		w.lastErr = err.Error()
		w.last = [sha256.Size]byte{}
		r = Reload{Err: err, Trigger: trigger}
	} else {
		w.lastErr = ""
		snap, err := Parse(w.path, data)
		h := sha256.New()
		h.Write(data)
		if err == nil {
			// A renewed certificate is a change too.
			snap = WithFileDigests(snap)
			w.files = snap.Files()
			for _, l := range snap.Listeners {
				_, _ = io.WriteString(h, "\x00"+l.FilesDigest)
			}
		}
		var sum [sha256.Size]byte
		h.Sum(sum[:0])
		if sum == w.last && !force {
			return
		}
		w.last = sum
		r = Reload{Snapshot: snap, Err: err, Trigger: trigger}
	}
	select {
	case w.out <- r:
	case <-ctx.Done():
	}
}
