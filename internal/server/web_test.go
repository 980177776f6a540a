package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/api"
)

func TestPages(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.running(t)
	b.upload(t, "stdout", 0, "<b>hello</b>\n")

	tests := []struct {
		name string
		path string
		want []string
		not  []string
	}{
		{
			name: "jobs", path: "/",
			want: []string{`href="/ui/jobs/demo/dev/hello"`, "demo/dev/hello", "RUNNING", "n1"},
		},
		{
			name: "job", path: "/ui/jobs/demo/dev/hello",
			want: []string{"demo/dev/hello", "task0001", "task0002", "task0003"},
		},
		{
			name: "task", path: "/ui/tasks/task0001",
			want: []string{"task0001", "&lt;b&gt;hello&lt;/b&gt;"},
			not:  []string{"<b>hello</b>"}, // task output is escaped
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, body := b.do(t, "GET", tt.path, "", nil)
			require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
			require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
			require.NotEmpty(t, resp.Header.Get("Content-Security-Policy"))
			page := string(body)
			require.True(t, strings.HasPrefix(strings.TrimSpace(strings.ToLower(page)), "<!doctype html>"), "%.200s", page)
			for _, w := range tt.want {
				require.Contains(t, page, w)
			}
			for _, n := range tt.not {
				require.NotContains(t, page, n)
			}
		})
	}
}

func TestPageWithNoJobs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	resp, body := b.do(t, "GET", "/", "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(body), "No jobs yet")
	require.Empty(t, call[[]api.Job](t, b, "GET", "/v1/jobs", "", http.StatusOK))
}
