package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/scheduler"
)

// TestRunsHistoryAndRerun: a run's retries come with their reasons; a job
// shows any of its runs with ?run=N; a rerun waits for the job to end and
// runs the failed instance again under the same version.
func TestRunsHistoryAndRerun(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	a := w.tok[whoTeamA]
	// Team A's task fails; its retry is pending after the backoff.
	w.syncAs(t, w.tok[whoAgent], api.SyncRequest{Node: nodeInfo("n1"), Tasks: []api.TaskStatus{
		{TaskID: taskA, State: "FAILED", ExitCode: ptr(4), Message: "exit code 4"},
	}}, http.StatusOK)

	var runs []api.Run
	require.NoError(t, json.Unmarshal(w.must(t, a, "GET", "/v1/jobs/"+jobA+"/runs", "", http.StatusOK), &runs))
	require.Len(t, runs, 1)
	r := runs[0]
	require.Equal(t, 1, r.Run)
	require.Equal(t, "RUNNING", r.State)
	require.Equal(t, "submit", r.Trigger)
	require.Equal(t, 2, r.Attempts)
	require.Equal(t, []int{0}, r.Instances)
	require.Len(t, r.Retries, 1)
	require.Equal(t, api.RunRetry{Instance: 0, Attempt: 2, Kind: "retry", After: taskA, Reason: "FAILED: exit code 4 (node n1)"}, r.Retries[0])

	var e api.Error
	require.NoError(t, json.Unmarshal(w.must(t, a, "POST", "/v1/jobs/"+jobA+"/rerun", `{"failed": true}`, http.StatusConflict), &e))
	require.Contains(t, e.Error, "has run 1 still RUNNING")

	// Kill it, then rerun what did not succeed.
	w.must(t, a, "POST", "/v1/jobs/"+jobA+"/kill", "", http.StatusOK)
	w.syncAs(t, w.tok[whoAgent], api.SyncRequest{Node: nodeInfo("n1")}, http.StatusOK)
	var res api.SubmitResponse
	require.NoError(t, json.Unmarshal(w.must(t, a, "POST", "/v1/jobs/"+jobA+"/rerun", `{"failed": true}`, http.StatusCreated), &res))
	require.Equal(t, 2, res.Run)
	require.Equal(t, 1, res.Version)
	require.Len(t, res.Tasks, 1)

	var j api.Job
	require.NoError(t, json.Unmarshal(w.must(t, a, "GET", "/v1/jobs/"+jobA+"?run=1", "", http.StatusOK), &j))
	require.Equal(t, 1, j.Run)
	require.Equal(t, "KILLED", j.RunState)
	require.Equal(t, "RUNNING", j.State, "the job runs: run 2 does")
	require.NoError(t, json.Unmarshal(w.must(t, a, "GET", "/v1/jobs/"+jobA, "", http.StatusOK), &j))
	require.Equal(t, 2, j.Run)
	require.Equal(t, res.Tasks[0], j.Tasks[0].ID)

	var one api.Run
	require.NoError(t, json.Unmarshal(w.must(t, a, "GET", "/v1/jobs/"+jobA+"/runs/2", "", http.StatusOK), &one))
	require.Equal(t, "rerun", one.Trigger)
	require.Equal(t, 1, one.Of)
	require.Len(t, one.Tasks, 1)

	// Bad values name themselves.
	for path, field := range map[string]string{
		"/v1/jobs/" + jobA + "?run=0":        "run",
		"/v1/jobs/" + jobA + "/runs?limit=x": "limit",
		"/v1/jobs/" + jobA + "/runs/x":       "run",
	} {
		require.NoError(t, json.Unmarshal(w.must(t, a, "GET", path, "", http.StatusBadRequest), &e))
		require.Equal(t, field, e.Field, path)
	}
	w.must(t, a, "GET", "/v1/jobs/"+jobA+"/runs/9", "", http.StatusNotFound)
	w.must(t, a, "GET", "/v1/jobs/"+jobA+"?run=9", "", http.StatusNotFound)
	require.NoError(t, json.Unmarshal(w.must(t, a, "POST", "/v1/jobs/"+jobA+"/rerun", `{"instances": [3]}`, http.StatusConflict), &e))
}

func ptr[T any](v T) *T { return &v }

// scheduledTemplate is a template whose job fires daily at 02:00 with its
// inputs' defaults.
func scheduledTemplate(key, dateInput string) string {
	return `template: ` + key + `
inputs:
  - ` + dateInput + `
  - {name: table, default: events}
job:
  schedule: {cron: "0 2 * * *"}
  task:
    command: ["sh", "-c", "echo loading $TABLE for $DAY from {{ .Params.host }}"]
    env: {DAY: "{{ .Inputs.date }}", TABLE: "{{ .Inputs.table }}"}
`
}

// TestTemplateSchedule: a template with a schedule sets it when stored
// (every input needs a default), fires by launching with the defaults,
// and takes its schedule with it when it loses it or is deleted.
func TestTemplateSchedule(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	a := w.tok[whoTeamA]
	w.must(t, w.tok[whoAdmin], "PUT", "/v1/params/team-a/host", `{"value": "db.team-a"}`, http.StatusOK)
	path := "/v1/templates/team-a/prod/cron"

	var e api.Error
	require.NoError(t, json.Unmarshal(w.must(t, a, "PUT", path, scheduledTemplate("team-a/prod/cron", "{name: date, required: true}"), http.StatusBadRequest), &e))
	require.Equal(t, "schedule", e.Field)
	require.Contains(t, e.Error, `"date"`)
	require.False(t, w.hasTemplate(t, "team-a/prod/cron"), "nothing stored")

	w.must(t, a, "PUT", path, scheduledTemplate("team-a/prod/cron", "{name: date, default: yesterday}"), http.StatusCreated)
	var s api.Schedule
	require.NoError(t, json.Unmarshal(w.must(t, a, "GET", "/v1/jobs/team-a/prod/cron/schedule", "", http.StatusOK), &s))
	require.Equal(t, "team-a/prod/cron", s.Template)
	require.Equal(t, "0 2 * * *", s.Cron)
	require.Equal(t, "UTC", s.TimeZone)
	require.NotNil(t, s.Next)
	require.Equal(t, time.Date(2030, 3, 5, 2, 0, 0, 0, time.UTC), s.Next.UTC())

	// The fire launches the template with its defaults.
	w.clock.Set(time.Date(2030, 3, 5, 2, 0, 0, 0, time.UTC))
	require.NoError(t, w.sched.FireDue(t.Context()))
	var v api.JobVersion
	require.NoError(t, json.Unmarshal(w.must(t, a, "GET", "/v1/jobs/team-a/prod/cron/versions/1", "", http.StatusOK), &v))
	require.Equal(t, "yesterday", v.Spec.Task.Env["DAY"])
	require.Contains(t, strings.Join(v.Spec.Task.Command, " "), "from db.team-a")
	var runs []api.Run
	require.NoError(t, json.Unmarshal(w.must(t, a, "GET", "/v1/jobs/team-a/prod/cron/runs", "", http.StatusOK), &runs))
	require.Len(t, runs, 1)
	require.Equal(t, "schedule", runs[0].Trigger)

	// Without its schedule the template takes it away; so does deleting.
	w.must(t, a, "PUT", path, strings.Replace(scheduledTemplate("team-a/prod/cron", "{name: date, default: x}"), `  schedule: {cron: "0 2 * * *"}`+"\n", "", 1), http.StatusOK)
	w.must(t, a, "GET", "/v1/jobs/team-a/prod/cron/schedule", "", http.StatusNotFound)
	w.must(t, a, "PUT", path, scheduledTemplate("team-a/prod/cron", "{name: date, default: x}"), http.StatusOK)
	w.must(t, a, "GET", "/v1/jobs/team-a/prod/cron/schedule", "", http.StatusOK)
	w.must(t, a, "DELETE", path, "", http.StatusOK)
	w.must(t, a, "GET", "/v1/jobs/team-a/prod/cron/schedule", "", http.StatusNotFound)
}

// TestPruneRemovesLogs: retention removes ended runs with their tasks'
// logs on the server.
func TestPruneRemovesLogs(t *testing.T) {
	t.Parallel()
	w := newWorld(t, func(c *worldConfig) { c.retention = scheduler.Retention{KeepRuns: 1} })
	a := w.tok[whoTeamA]
	w.must(t, a, "GET", "/v1/tasks/"+taskA+"/logs/stdout", "", http.StatusOK)
	w.syncAs(t, w.tok[whoAgent], api.SyncRequest{Node: nodeInfo("n1"), Tasks: []api.TaskStatus{
		{TaskID: taskA, State: "SUCCEEDED", ExitCode: ptr(0)},
	}}, http.StatusOK)
	require.NoError(t, w.srv.Prune(t.Context()))
	w.must(t, a, "GET", "/v1/tasks/"+taskA+"/logs/stdout", "", http.StatusOK) // run 1 is the newest: kept

	w.must(t, a, "POST", "/v1/jobs", jobJSON(jobA, 1), http.StatusCreated) // run 2
	require.NoError(t, w.srv.Prune(t.Context()))
	w.must(t, a, "GET", "/v1/tasks/"+taskA+"/logs/stdout", "", http.StatusNotFound)
	w.must(t, a, "GET", "/v1/jobs/"+jobA+"/runs/1", "", http.StatusNotFound)
	var runs []api.Run
	require.NoError(t, json.Unmarshal(w.must(t, a, "GET", "/v1/jobs/"+jobA+"/runs", "", http.StatusOK), &runs))
	require.Len(t, runs, 1)
	require.Equal(t, 2, runs[0].Run)
}
