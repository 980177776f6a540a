package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"

	"github.com/drover-dev/drover/internal/store"
	"github.com/drover-dev/drover/internal/tasklog"
)

// maxOpenLogs bounds the log files the server keeps open at once.
const maxOpenLogs = 256

// logStore keeps the task output agents upload, under dir/TASK_ID/, capped
// and rotated like the agent's copy. It keeps recently used logs open.
type logStore struct {
	dir  string
	mu   sync.Mutex
	open map[string]*tasklog.Log
	lru  []string
}

func newLogStore(dir string) *logStore {
	return &logStore{dir: dir, open: map[string]*tasklog.Log{}}
}

// get returns the open log of a task's stream, opening it if needed. The
// caller has checked that the task exists and its ID is safe in a path.
func (l *logStore) get(taskID, stream string) (*tasklog.Log, error) {
	key := taskID + "/" + stream
	l.mu.Lock()
	defer l.mu.Unlock()
	if lg, ok := l.open[key]; ok {
		return lg, nil
	}
	lg, err := tasklog.Open(filepath.Join(l.dir, taskID), stream, tasklog.Config{})
	if err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			return nil, fmt.Errorf("open log of task %s: %w", taskID, store.ErrNoSpace)
		}
		return nil, fmt.Errorf("open log of task %s: %w", taskID, err)
	}
	l.open[key] = lg
	l.lru = append(l.lru, key)
	for len(l.lru) > maxOpenLogs {
		old := l.lru[0]
		l.lru = l.lru[1:]
		// Readers that still hold it see a closed log and end their
		// answer; they can ask again.
		_ = l.open[old].Close()
		delete(l.open, old)
	}
	return lg, nil
}

// remove deletes a task's logs (retention). Readers that hold an open log
// see it closed.
func (l *logStore) remove(taskID string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, stream := range []string{"stdout", "stderr"} {
		key := taskID + "/" + stream
		if lg, ok := l.open[key]; ok {
			_ = lg.Close()
			delete(l.open, key)
			l.lru = slices.DeleteFunc(l.lru, func(k string) bool { return k == key })
		}
	}
	if err := os.RemoveAll(filepath.Join(l.dir, taskID)); err != nil {
		return fmt.Errorf("remove logs of task %s: %w", taskID, err)
	}
	return nil
}

func (l *logStore) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	for k, lg := range l.open {
		errs = append(errs, lg.Close())
		delete(l.open, k)
	}
	l.lru = nil
	return errors.Join(errs...)
}
