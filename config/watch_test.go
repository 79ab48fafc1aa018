package config

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const watchConfig = "listeners:\n  - name: main\n    listen-addr: 127.0.0.1:23790\n    endpoints: [127.0.0.1:2379]\n"

func startWatcher(t *testing.T, text string) (string, *Watcher) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gw.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	w := NewWatcher(path, WatchOptions{PollInterval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go w.Run(ctx)
	return path, w
}

func next(t *testing.T, w *Watcher) Reload {
	t.Helper()
	select {
	case r := <-w.Reloads():
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no reload within 5s")
		return Reload{}
	}
}

// none fails if a reload arrives before a forced read proves the watcher
// has handled every earlier event.
func none(t *testing.T, w *Watcher) {
	t.Helper()
	w.Trigger()
	if r := next(t, w); r.Trigger != "signal" {
		t.Fatalf("unexpected reload before the trigger: %+v", r)
	}
}

func TestWatcherReadsOnceAtStartAndOnTrigger(t *testing.T) {
	_, w := startWatcher(t, watchConfig)
	if r := next(t, w); r.Err != nil || r.Snapshot == nil || r.Trigger != "start" {
		t.Fatalf("first read: %+v", r)
	}
	// A trigger re-reads even though nothing changed.
	w.Trigger()
	if r := next(t, w); r.Err != nil || r.Trigger != "signal" {
		t.Fatalf("triggered read: %+v", r)
	}
}

func TestWatcherBurstOfWritesIsOneReload(t *testing.T) {
	path, w := startWatcher(t, watchConfig)
	next(t, w)
	changed := strings.Replace(watchConfig, "23790", "23791", 1)
	// Truncate, then write in small pieces: a burst well inside the debounce.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(changed); i += 16 {
		if _, err := f.WriteString(changed[i:min(i+16, len(changed))]); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	r := next(t, w)
	if r.Err != nil || r.Snapshot.Listeners[0].ListenAddr != "127.0.0.1:23791" {
		t.Fatalf("after the burst: %+v", r)
	}
	none(t, w)
}

func TestWatcherReportsAPersistentErrorOnce(t *testing.T) {
	path, w := startWatcher(t, watchConfig)
	next(t, w)
	if err := os.WriteFile(path, []byte("listeners: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := next(t, w); r.Err == nil || !strings.Contains(r.Err.Error(), path) {
		t.Fatalf("bad file: %+v", r)
	}
	// The file is removed: one error naming it.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if r := next(t, w); r.Err == nil || !strings.Contains(r.Err.Error(), "no such file") {
		t.Fatalf("removed file: %+v", r)
	}
	// A relevant event that finds the same trouble does not repeat it.
	if err := os.WriteFile(filepath.Join(filepath.Dir(path), "..data"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	none(t, w)
	// Recreated: read and valid again.
	if err := os.WriteFile(path, []byte(watchConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := next(t, w); r.Err != nil || r.Snapshot == nil {
		t.Fatalf("recreated file: %+v", r)
	}
}
