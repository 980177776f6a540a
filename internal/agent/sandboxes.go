package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"
)

// DefaultKeepSandboxes is how long an ended task's sandbox (its working
// directory, files and logs) stays on its node after its last change.
const DefaultKeepSandboxes = 24 * time.Hour

// pruneEvery is how often the agent looks for sandboxes past their time.
const pruneEvery = time.Hour

// pruneLoop removes old sandboxes at start and then every pruneEvery,
// until ctx ends.
func (a *Agent) pruneLoop(ctx context.Context) {
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		if n, err := a.pruneSandboxes(time.Now()); err != nil {
			a.log.WarnContext(ctx, "could not remove old task sandboxes", "err", err)
		} else if n > 0 {
			a.log.InfoContext(ctx, "removed old task sandboxes", "sandboxes", n, "keep", a.cfg.KeepSandboxes)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pruneSandboxes removes the sandboxes of tasks this agent no longer runs
// or reports whose directory has not changed for KeepSandboxes: the
// sandboxes of ended tasks (their output already reached the server) and
// those an earlier life of the agent left (reapLeftovers killed their
// processes at start). It returns how many it removed.
func (a *Agent) pruneSandboxes(now time.Time) (int, error) {
	if a.cfg.KeepSandboxes < 0 {
		return 0, nil
	}
	dir := filepath.Join(a.cfg.DataDir, "tasks")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	a.mu.Lock()
	live := make(map[string]bool, len(a.tasks))
	for id := range a.tasks {
		live[id] = true
	}
	a.mu.Unlock()
	removed := 0
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || live[e.Name()] {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // gone meanwhile
		}
		if now.Sub(info.ModTime()) <= a.cfg.KeepSandboxes {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, err)
			continue
		}
		removed++
	}
	return removed, errors.Join(errs...)
}
