package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/pool"
	"github.com/drover-dev/drover/internal/store"
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

// page fetches a web page as bearer and requires the status.
func (w *world) page(t *testing.T, bearer, path string, want int) string {
	t.Helper()
	return string(w.must(t, bearer, "GET", path, "", want))
}

// TestJobPageRuns: the job page lists the runs newest first with their
// triggers and why each retry happened, and ?run=N shows that run's
// tasks; the reasons an agent reports are shown as text, never markup.
func TestJobPageRuns(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	a := w.tok[whoTeamA]
	w.syncAs(t, w.tok[whoAgent], api.SyncRequest{Node: nodeInfo("n1"), Tasks: []api.TaskStatus{
		{TaskID: taskA, State: "FAILED", ExitCode: ptr(4), Message: "<b>disk full</b>"},
	}}, http.StatusOK)
	w.must(t, a, "POST", "/v1/jobs/"+jobA+"/kill", "", http.StatusOK)
	w.syncAs(t, w.tok[whoAgent], api.SyncRequest{Node: nodeInfo("n1")}, http.StatusOK)
	var res api.SubmitResponse
	require.NoError(t, json.Unmarshal(w.must(t, a, "POST", "/v1/jobs/"+jobA+"/rerun", `{"failed": true}`, http.StatusCreated), &res))
	require.Equal(t, 2, res.Run)
	var runs []api.Run
	require.NoError(t, json.Unmarshal(w.must(t, a, "GET", "/v1/jobs/"+jobA+"/runs", "", http.StatusOK), &runs))
	require.Len(t, runs, 2)
	retried := runs[1].Retries[0]
	run2Task := `href="/ui/tasks/` + res.Tasks[0] + `"`

	page := w.page(t, a, "/ui/jobs/"+jobA, http.StatusOK)
	require.Contains(t, page, `Run 2 <span class="state RUNNING">RUNNING</span>`, "the newest run is shown")
	require.Contains(t, page, run2Task)
	i1, i2 := strings.Index(page, `?run=1">1</a>`), strings.Index(page, `?run=2">2</a>`)
	require.True(t, i2 > 0 && i1 > i2, "both runs are listed, newest first")
	require.Contains(t, page, "<td>rerun of 1</td>")
	require.Contains(t, page, "<td>submit</td>")
	require.Contains(t, page, `<td class="state KILLED">KILLED</td><td>2</td>`, "run 1 ended KILLED after 2 attempts")
	require.Contains(t, page, "instance 0 attempt 2: retry after")
	require.Contains(t, page, "FAILED: &lt;b&gt;disk full&lt;/b&gt; (node n1)")
	require.NotContains(t, page, "<b>disk full</b>")
	require.Equal(t, "FAILED: <b>disk full</b> (node n1)", retried.Reason, "the page shows the API's reason")

	page = w.page(t, a, "/ui/jobs/"+jobA+"?run=1", http.StatusOK)
	require.Contains(t, page, `Run 1 <span class="state KILLED">KILLED</span>`)
	require.Contains(t, page, `href="/ui/tasks/`+taskA+`"`)
	require.Contains(t, page, `href="/ui/tasks/`+retried.After+`"`)
	require.NotContains(t, page, run2Task, "run 2's tasks are not run 1's")
	require.Contains(t, page, `<tr class="shown"><td><a href="/ui/jobs/`+jobA+`?run=1">`)

	require.Contains(t, w.page(t, a, "/ui/jobs/"+jobA+"?run=x", http.StatusBadRequest), "run")
	require.Contains(t, w.page(t, a, "/ui/jobs/"+jobA+"?run=9", http.StatusNotFound), "run 9 of job "+jobA+" not found")
	// Team A learns nothing of team B's runs.
	require.NotContains(t, w.page(t, a, "/ui/jobs/"+jobB+"?run=1", http.StatusNotFound), taskB)
}

// TestJobPageSchedule: a scheduled job's page shows its schedule and next
// fire time in the schedule's zone, the jobs page shows the next fire, and
// once it fires the page shows what was decided and the run it made.
func TestJobPageSchedule(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	b := w.tok[whoTeamB]
	const berlin = "team-b/prod/berlin"
	w.must(t, b, "POST", "/v1/jobs", fmt.Sprintf(`{"job": %q, "schedule": {"cron": "30 1 * * *", "time_zone": "Europe/Berlin", "catch_up": "all", "catch_up_limit": 3}, "task": {"command": ["true"]}}`, berlin), http.StatusCreated)

	jobs := w.page(t, b, "/", http.StatusOK)
	require.Contains(t, jobs, "2030-03-05 02:00:00 UTC", "the nightly job's next fire")
	require.Contains(t, jobs, "2030-03-05 01:30:00 CET", "the Berlin job's next fire, in its zone")
	require.NotContains(t, w.page(t, w.tok[whoTeamA], "/", http.StatusOK), "2030-03-05", "team A sees no schedule of team B")

	page := w.page(t, b, "/ui/jobs/"+cronB, http.StatusOK)
	require.Contains(t, page, `<table id="schedule">`)
	require.Contains(t, page, "<td><code>0 2 * * *</code></td><td>UTC</td><td>forbid</td>")
	require.Contains(t, page, "2030-03-05 02:00:00 UTC")
	require.Contains(t, page, "none yet")
	require.Contains(t, page, "No run yet")
	require.Contains(t, page, "No runs yet.")
	page = w.page(t, b, "/ui/jobs/"+berlin, http.StatusOK)
	require.Contains(t, page, "<td>Europe/Berlin</td><td>forbid</td>\n<td>all (up to 3)</td>")

	w.clock.Set(time.Date(2030, 3, 5, 2, 0, 0, 0, time.UTC))
	require.NoError(t, w.sched.FireDue(t.Context()))
	page = w.page(t, b, "/ui/jobs/"+cronB, http.StatusOK)
	var s api.Schedule
	require.NoError(t, json.Unmarshal(w.must(t, b, "GET", "/v1/jobs/"+cronB+"/schedule", "", http.StatusOK), &s))
	require.NotNil(t, s.LastFire)
	require.Contains(t, page, "2030-03-05 02:00:00 UTC: "+s.LastFire.Outcome+" (run 1)", "the last decision and its run")
	require.Contains(t, page, "2030-03-06 02:00:00 UTC", "the next fire moved on")
	require.Contains(t, page, "<td>schedule</td><td>2030-03-05 02:00:00 UTC</td>", "run 1 was made by the schedule, for 02:00")

	// A job without a schedule shows none.
	require.NotContains(t, w.page(t, w.tok[whoTeamA], "/ui/jobs/"+jobA, http.StatusOK), `id="schedule"`)
}

// TestPoolPages: the pools page lists only the pools the caller may read,
// and a pool's page shows its size, its spec and its machines.
func TestPoolPages(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	admin := w.tok[whoAdmin]
	launched := t0.Add(-90 * time.Second)
	require.NoError(t, w.store.Update(t.Context(), func(tx store.Tx) error {
		for _, m := range []pool.Machine{
			{ID: "m-ready", Pool: poolS, Node: "shared-1", State: pool.Ready, LaunchedAt: launched, RegisteredAt: launched.Add(time.Second), UpdatedAt: launched},
			{ID: "m-failed", Pool: poolS, Node: "shared-2", State: pool.Failed, Reason: "<i>never registered</i>",
				LaunchedAt: launched, EndedAt: launched.Add(30 * time.Second), UpdatedAt: launched},
		} {
			if err := tx.PutMachine(t.Context(), m); err != nil {
				return err
			}
		}
		return nil
	}))

	list := w.page(t, admin, "/ui/pools", http.StatusOK)
	require.Contains(t, list, `<a href="/ui/pools">Pools</a>`, "the nav links the pools")
	require.Contains(t, list, `<td><a href="/ui/pools/shared">shared</a></td><td>local</td><td>fixed</td>`)
	require.Contains(t, list, "<td>0</td><td>1</td>", "desired 0, actual 1 (the ready machine)")
	require.NotContains(t, w.page(t, w.tok[whoTeamA], "/ui/pools", http.StatusOK), `href="/ui/pools/shared"`)

	page := w.page(t, admin, "/ui/pools/shared", http.StatusOK)
	require.Contains(t, page, "local · fixed policy · min 0 · max 2")
	require.Contains(t, page, "<td>m-ready</td><td>shared-1</td><td class=\"state ready\">ready</td><td>1m30s</td>")
	require.Contains(t, page, "<td>m-failed</td><td>shared-2</td><td class=\"state failed\">failed</td><td>30s</td><td>&lt;i&gt;never registered&lt;/i&gt;</td>")
	require.NotContains(t, page, "<i>never registered</i>")
	require.Contains(t, page, "provider: local")
	require.Contains(t, page, "max: 2")

	body := w.page(t, w.tok[whoTeamA], "/ui/pools/shared", http.StatusNotFound)
	require.NotContains(t, body, "m-ready")
	require.Contains(t, body, "pool shared not found")
}
