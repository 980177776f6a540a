package server_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/api"
)

func (b *bundle) upload(t *testing.T, stream string, offset int64, data string) int64 {
	t.Helper()
	got := call[map[string]int64](t, b, "POST", "/v1/agent/logs",
		mustJSON(t, api.LogChunk{TaskID: "task0001", Stream: stream, Offset: offset, Data: []byte(data)}), http.StatusOK)
	return got["end"]
}

func TestLogs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.running(t)

	require.Equal(t, int64(6), b.upload(t, "stdout", 0, "hello\n"))
	require.Equal(t, int64(6), b.upload(t, "stdout", 0, "hello\n"), "a repeated upload adds nothing")
	require.Equal(t, int64(10), b.upload(t, "stdout", 3, "lo\nbye\n"), "overlapping bytes are skipped")
	require.Equal(t, int64(4), b.upload(t, "stderr", 0, "oops"))

	tests := []struct {
		name  string
		query string
		want  string
		start string
	}{
		{"whole stream", "", "hello\nbye\n", "0"},
		{"from an offset", "?offset=6", "bye\n", "6"},
		{"from the end", "?offset=-4", "bye\n", "6"},
		{"before the start", "?offset=-100", "hello\nbye\n", "0"},
		{"past the end", "?offset=100", "", "100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, body := b.do(t, "GET", "/v1/tasks/task0001/logs/stdout"+tt.query, "", nil)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, "text/plain; charset=utf-8", resp.Header.Get("Content-Type"))
			require.Equal(t, tt.want, string(body))
			require.Equal(t, tt.start, resp.Header.Get("X-Drover-Log-Start"))
		})
	}
	_, body := b.do(t, "GET", "/v1/tasks/task0001/logs/stderr", "", nil)
	require.Equal(t, "oops", string(body))
	_, body = b.do(t, "GET", "/v1/tasks/task0002/logs/stdout", "", nil)
	require.Empty(t, body, "a task that wrote nothing has an empty log")
}

// TestLogsGap reads across a gap: output the agent rotated away before it
// shipped it. The bytes after the gap come once, and the start header says
// where they begin.
func TestLogsGap(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.running(t)
	b.upload(t, "stdout", 0, "abc\n")
	require.Equal(t, int64(104), b.upload(t, "stdout", 100, "xyz\n"))
	_, body := b.do(t, "GET", "/v1/tasks/task0001/logs/stdout", "", nil)
	require.Equal(t, "abc\nxyz\n", string(body))
	resp, body := b.do(t, "GET", "/v1/tasks/task0001/logs/stdout?offset=10", "", nil)
	require.Equal(t, "xyz\n", string(body))
	require.Equal(t, "100", resp.Header.Get("X-Drover-Log-Start"))
}

// TestLogsFollow follows a running task's output: the answer streams what
// is uploaded and ends once the task is reported SUCCEEDED.
func TestLogsFollow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.running(t)
	b.upload(t, "stdout", 0, "hello\n")

	req, err := http.NewRequestWithContext(b.ctx, "GET", b.url+"/v1/tasks/task0001/logs/stdout?follow=true", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+b.admin.Reveal())
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// What is there already arrives before the task ends.
	first := make([]byte, len("hello\n"))
	_, err = io.ReadFull(resp.Body, first)
	require.NoError(t, err)
	require.Equal(t, "hello\n", string(first))

	b.upload(t, "stdout", 6, "bye\n")
	zero := 0
	b.sync(t, api.SyncRequest{Node: nodeInfo("n1"), Tasks: []api.TaskStatus{
		{TaskID: "task0001", State: "SUCCEEDED", ExitCode: &zero, Reason: "exited"},
	}})

	rest, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, "bye\n", string(rest))
}

func TestLogsFollowEndedTask(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.running(t)
	b.upload(t, "stdout", 0, "all done\n")
	zero := 0
	b.sync(t, api.SyncRequest{Node: nodeInfo("n1"), Tasks: []api.TaskStatus{
		{TaskID: "task0001", State: "SUCCEEDED", ExitCode: &zero, Reason: "exited"},
	}})

	resp, body := b.do(t, "GET", "/v1/tasks/task0001/logs/stdout?follow=1", "", nil)

	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "all done\n", string(body))
}
