package agent

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/client"
)

// TestPruneSandboxes: sandboxes of tasks the agent no longer has go once
// unchanged for KeepSandboxes; a running task's, a recent one's and (with
// a negative keep) every one stay.
func TestPruneSandboxes(t *testing.T) {
	t.Parallel()
	c, err := client.New("http://127.0.0.1:1", nil)
	require.NoError(t, err)
	a, err := New(Config{Client: c, DataDir: t.TempDir(), Name: "n1", KeepSandboxes: time.Hour})
	require.NoError(t, err)
	now := time.Now()
	tasks := filepath.Join(a.cfg.DataDir, "tasks")
	mk := func(id string, age time.Duration) {
		dir := filepath.Join(tasks, id)
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "work"), 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "work", "out"), []byte("x"), 0o600))
		require.NoError(t, os.Chtimes(dir, now.Add(-age), now.Add(-age)))
	}
	mk("old", 2*time.Hour)
	mk("recent", 10*time.Minute)
	mk("running", 3*time.Hour)
	a.tasks["running"] = &runTask{agent: a}

	n, err := a.pruneSandboxes(now)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	left, err := os.ReadDir(tasks)
	require.NoError(t, err)
	var names []string
	for _, e := range left {
		names = append(names, e.Name())
	}
	require.ElementsMatch(t, []string{"recent", "running"}, names)

	a.cfg.KeepSandboxes = -1
	n, err = a.pruneSandboxes(now.Add(48 * time.Hour))
	require.NoError(t, err)
	require.Zero(t, n, "a negative keep keeps every sandbox")
}
