package server_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/store"
)

// TestParamsInJobs: a job's {{ .Params.NAME }} references are resolved at
// submit. A plain value is in the stored spec; a secret one is a marker
// there and its value only in the agent's assignment; a value that looks
// like shell stays one argument; a missing parameter is a 400 naming it
// and creates nothing. The secret is in no answer but the explicit
// reveal, in no event and in no line of the debug log.
func TestParamsInJobs(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	w := newWorld(t, func(c *worldConfig) {
		c.logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	ad := w.tok[whoAdmin]
	const pw = "hunter2-very-secret"
	const evil = "; rm -rf / $(id) `id` && echo pwn\n--upload-pack=touch /tmp/pwn"
	var answers []string
	call := func(bearer, method, path, body string, want int) []byte {
		t.Helper()
		data := w.must(t, bearer, method, path, body, want)
		answers = append(answers, string(data))
		return data
	}
	call(ad, "PUT", "/v1/params/team-a/host", `{"value": "db.internal"}`, http.StatusOK)
	call(ad, "PUT", "/v1/params/team-a/evil", toJSON(t, api.ParamRequest{Value: evil}), http.StatusOK)
	call(ad, "PUT", "/v1/params/team-a/tmpl", toJSON(t, api.ParamRequest{Value: "{{ .Params.pw }}"}), http.StatusOK)
	call(ad, "PUT", "/v1/params/team-a/pw", toJSON(t, api.ParamRequest{Value: pw, Secret: true}), http.StatusOK)

	// Listing and reading redact the secret; revealing shows it.
	var ps []api.Param
	require.NoError(t, json.Unmarshal(call(ad, "GET", "/v1/params/team-a", "", http.StatusOK), &ps))
	require.Len(t, ps, 4)
	require.Equal(t, "pw", ps[2].Name)
	require.Equal(t, "<redacted>", ps[2].Value)
	var p api.Param
	require.NoError(t, json.Unmarshal(call(ad, "GET", "/v1/params/team-a/pw", "", http.StatusOK), &p))
	require.Equal(t, "<redacted>", p.Value)
	require.True(t, p.Secret)
	revealed := string(w.must(t, ad, "GET", "/v1/params/team-a/pw?reveal=true", "", http.StatusOK))
	require.Contains(t, revealed, pw)
	call(ad, "GET", "/v1/params/team-a/pw?reveal=maybe", "", http.StatusBadRequest)
	call(ad, "PUT", "/v1/params/team-a/Bad", `{"value": "x"}`, http.StatusBadRequest)
	call(ad, "PUT", "/v1/params/team-a/x", `{"value": "⟦secret:pw⟧"}`, http.StatusBadRequest)

	// A job using them.
	doc := toJSON(t, map[string]any{
		"job": "team-a/prod/params", "instances": 1,
		"task": map[string]any{
			"command":   []string{"run", "--host={{ .Params.host }}", "{{ .Params.evil }}", "{{ .Params.pw }}"},
			"env":       map[string]string{"PW": "{{ .Params.pw }}", "PLAIN": "{{.Params.host}}", "TMPL": "{{ .Params.tmpl }}"},
			"resources": map[string]any{"cpu": 100, "memory": "64MiB"},
		},
	})
	w.must(t, ad, "POST", "/v1/nodes/n2/drain", "", http.StatusOK)
	var sub api.SubmitResponse
	require.NoError(t, json.Unmarshal(call(ad, "POST", "/v1/jobs", doc, http.StatusCreated), &sub))
	marker := "⟦secret:pw⟧"
	var v job.Version
	require.NoError(t, w.store.View(t.Context(), func(rd store.Reader) error {
		var err error
		v, err = rd.GetJobVersion(t.Context(), job.Key{Role: "team-a", Env: "prod", Name: "params"}, 1)
		return err
	}))
	require.Equal(t, []string{"run", "--host=db.internal", evil, marker}, v.Spec.Task.Command)
	// A value is not a template itself: it is never rendered again.
	require.Equal(t, map[string]string{"PW": marker, "PLAIN": "db.internal", "TMPL": "{{ .Params.pw }}"}, v.Spec.Task.Env)
	var ver api.JobVersion
	require.NoError(t, json.Unmarshal(call(ad, "GET", "/v1/jobs/team-a/prod/params/versions/1", "", http.StatusOK), &ver))
	require.Equal(t, marker, ver.Spec.Task.Env["PW"], "the API shows the marker")
	call(ad, "GET", "/v1/jobs/team-a/prod/params", "", http.StatusOK)

	// The same submission again is a repeat, not a conflict.
	call(ad, "POST", "/v1/jobs", doc, http.StatusOK)

	// The agent gets the value, each in one argument or variable.
	_, err := w.sched.PlaceOnce(t.Context())
	require.NoError(t, err)
	resp := w.syncAs(t, w.tok[whoAgent], api.SyncRequest{Node: nodeInfo("n1"), Seq: 1000, Tasks: []api.TaskStatus{
		{TaskID: taskA, State: "RUNNING"}, {TaskID: taskB, State: "RUNNING"},
	}}, http.StatusOK)
	require.Len(t, resp.Assign, 1)
	require.Equal(t, []string{"run", "--host=db.internal", evil, pw}, resp.Assign[0].Command)
	require.Equal(t, pw, resp.Assign[0].Env["PW"])
	require.Equal(t, "{{ .Params.pw }}", resp.Assign[0].Env["TMPL"])
	require.NoError(t, w.store.View(t.Context(), func(rd store.Reader) error {
		v2, err := rd.GetJobVersion(t.Context(), v.Key, 1)
		require.Equal(t, marker, v2.Spec.Task.Command[3], "handing out the task leaves the stored spec alone")
		return err
	}))

	// A missing parameter: 400 naming the field and the parameter, and
	// nothing created.
	missing := toJSON(t, map[string]any{
		"job": "team-a/prod/missing", "instances": 1,
		"task": map[string]any{"command": []string{"psql", "-h", "{{ .Params.db_host }}"}, "resources": map[string]any{"cpu": 100, "memory": "64MiB"}},
	})
	var e api.Error
	require.NoError(t, json.Unmarshal(call(ad, "POST", "/v1/jobs", missing, http.StatusBadRequest), &e))
	require.Equal(t, "task.command[2]", e.Field)
	require.Contains(t, e.Error, `task.command[2]: parameter "db_host" is not set for role team-a`)
	require.False(t, w.hasJob(t, "team-a/prod/missing"))
	// Another team's parameters are not this job's.
	other := toJSON(t, map[string]any{
		"job": "team-b/prod/steal", "instances": 1,
		"task": map[string]any{"command": []string{"echo", "{{ .Params.pw }}"}, "resources": map[string]any{"cpu": 100, "memory": "64MiB"}},
	})
	require.NoError(t, json.Unmarshal(call(ad, "POST", "/v1/jobs", other, http.StatusBadRequest), &e))
	require.Contains(t, e.Error, `parameter "pw" is not set for role team-b`)
	// A template that does not parse names its field.
	bad := toJSON(t, map[string]any{
		"job": "team-a/prod/bad", "instances": 1,
		"task": map[string]any{"command": []string{"echo"}, "env": map[string]string{"X": "{{ .Params.host"}, "resources": map[string]any{"cpu": 100, "memory": "64MiB"}},
	})
	require.NoError(t, json.Unmarshal(call(ad, "POST", "/v1/jobs", bad, http.StatusBadRequest), &e))
	require.Equal(t, "task.env.X", e.Field)
	require.False(t, w.hasJob(t, "team-a/prod/bad"))

	// Deleting, then deleting again.
	call(ad, "DELETE", "/v1/params/team-a/evil", "", http.StatusOK)
	call(ad, "DELETE", "/v1/params/team-a/evil", "", http.StatusNotFound)

	// The secret is nowhere else: answers, events (the audit trail too),
	// the debug log.
	call(ad, "GET", "/v1/events?limit=10000", "", http.StatusOK)
	call(ad, "GET", "/v1/jobs/team-a/prod/params/events", "", http.StatusOK)
	for _, a := range answers {
		require.NotContains(t, a, pw)
	}
	require.NotContains(t, logs.String(), pw)
}
