package agent_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/api"
)

// instanceTasks counts the tasks of instance i.
func instanceTasks(j api.Job, i int) []api.Task {
	var out []api.Task
	for _, t := range j.Tasks {
		if t.Instance == i {
			out = append(out, t)
		}
	}
	return out
}

func TestServiceRestartsExitedTaskUntilKilled(t *testing.T) {
	t.Parallel()
	b := setup(t)
	submit(t, b.client, `
job: t/dev/flaky
type: service
task: {command: ["sh", "-c", "echo up; exit 3"]}
restart: {delay: 50ms, attempts: 100, interval: 1m}
`)
	j := waitFor(t, b.client, "t/dev/flaky", func(j api.Job) bool { return len(instanceTasks(j, 0)) >= 3 })
	require.Equal(t, "RUNNING", j.State, "a service does not end when its task exits")
	for _, tk := range instanceTasks(j, 0) {
		if tk.State == "FAILED" {
			require.Equal(t, "exit code 3", tk.Message)
		}
	}
	events, err := b.client.JobEvents(context.Background(), "t/dev/flaky")
	require.NoError(t, err)
	var restarts int
	for _, e := range events {
		if e.Reason == "restart" {
			restarts++
			require.Contains(t, e.Message, "on the same node")
		}
	}
	require.GreaterOrEqual(t, restarts, 2)

	_, err = b.client.KillJob(context.Background(), "t/dev/flaky", nil)
	require.NoError(t, err)
	j = waitEnd(t, b.client, "t/dev/flaky")
	require.Equal(t, "KILLED", j.State, "only a kill stops a service")
}

func TestServiceHealthCheckFailureRestartsTask(t *testing.T) {
	t.Parallel()
	b := setup(t)
	marker := filepath.Join(t.TempDir(), "healthy")
	submit(t, b.client, fmt.Sprintf(`
job: t/dev/sick
type: service
task:
  command: ["sleep", "600"]
  kill_grace: 1s
  health: {command: ["test", "-f", %q], interval: 100ms, timeout: 100ms, failures: 2}
restart: {delay: 10ms}
`, marker))
	j := waitFor(t, b.client, "t/dev/sick", func(j api.Job) bool { return len(instanceTasks(j, 0)) >= 2 })
	first := instanceTasks(j, 0)[0]
	require.Equal(t, "FAILED", first.State)
	require.Equal(t, "health_failed", first.Reason)
	require.Contains(t, first.Message, "health check failed 2 times in a row")

	// Healthy from now on: the next task keeps running.
	require.NoError(t, os.WriteFile(marker, nil, 0o600))
	_, err := b.client.KillJob(context.Background(), "t/dev/sick", nil)
	require.NoError(t, err)
	require.Equal(t, "KILLED", waitEnd(t, b.client, "t/dev/sick").State)
}

func TestServicePortsAndHTTPHealth(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// The "service" is this test's own HTTP server: the task only reports
	// its port, and the health check GETs a server that answers 200 for
	// the first checks and 503 once told to.
	var sick atomicBool
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sick.get() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	port := ln.Addr().(*net.TCPAddr).Port
	submit(t, b.client, fmt.Sprintf(`
job: t/dev/web
type: service
task:
  command: ["sh", "-c", "echo port=$DROVER_PORT_HTTP admin=$DROVER_PORT_ADMIN; exec sleep 600"]
  kill_grace: 1s
  ports: [http, admin]
  health: {http: "http://127.0.0.1:%d/health?task={{port}}", interval: 100ms, timeout: 100ms, failures: 1}
restart: {delay: 10ms}
`, port))
	j := waitRunning(t, b.client, "t/dev/web", 1)
	id := j.Tasks[0].ID
	out := waitLog(t, b, id, "admin=")
	var httpPort, adminPort int
	_, err = fmt.Sscanf(strings.TrimSpace(out), "port=%d admin=%d", &httpPort, &adminPort)
	require.NoError(t, err, out)
	require.NotZero(t, httpPort)
	require.NotEqual(t, httpPort, adminPort)

	sick.set(true)
	j = waitFor(t, b.client, "t/dev/web", func(j api.Job) bool { return len(instanceTasks(j, 0)) >= 2 })
	first := instanceTasks(j, 0)[0]
	require.Equal(t, "health_failed", first.Reason)
	require.Contains(t, first.Message, "503")
	_, err = b.client.KillJob(context.Background(), "t/dev/web", nil)
	require.NoError(t, err)
	require.Equal(t, "KILLED", waitEnd(t, b.client, "t/dev/web").State)
}

// waitLog waits, change by change, until the task's stdout holds want.
func waitLog(t *testing.T, b *bundle, id, want string) string {
	t.Helper()
	rc, err := b.client.TaskLogs(context.Background(), id, "stdout", 0, true)
	require.NoError(t, err)
	defer rc.Close()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for !strings.Contains(sb.String(), want) {
		n, err := rc.Read(buf)
		sb.Write(buf[:n])
		require.False(t, err != nil && !strings.Contains(sb.String(), want), "log ended without %q: %q", want, sb.String())
	}
	return sb.String()
}
