package server_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/jobspec"
)

// versionsBundle is a server whose job demo/dev/hello has two versions:
// version 1 is examples/hello.yaml (3 instances), submitted at t0 with
// the idempotency key "req-1" and then killed; version 2 has 4 instances
// and was submitted an hour later.
func versionsBundle(t *testing.T) (*bundle, string) {
	t.Helper()
	b := setup(t)
	resp, body := b.do(t, "POST", "/v1/jobs", helloYAML(t), map[string]string{"Idempotency-Key": "req-1"})
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body)
	call[api.KillResponse](t, b, "POST", "/v1/jobs/demo/dev/hello/kill", "", http.StatusOK)
	b.clock.mu.Lock()
	b.clock.now = t0.Add(time.Hour)
	b.clock.mu.Unlock()
	changed := strings.Replace(helloYAML(t), "instances: 3", "instances: 4", 1)
	require.NotEqual(t, helloYAML(t), changed)
	res := call[api.SubmitResponse](t, b, "POST", "/v1/jobs", changed, http.StatusCreated)
	require.Equal(t, 2, res.Version)
	return b, changed
}

func TestListJobVersions(t *testing.T) {
	t.Parallel()
	b, _ := versionsBundle(t)

	resp, body := b.do(t, "GET", "/v1/jobs/demo/dev/hello/versions", "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	var got []api.JobVersion
	require.NoError(t, json.Unmarshal(body, &got))
	require.Empty(t, cmp.Diff([]api.JobVersion{
		{Job: "demo/dev/hello", Version: 2, CreatedAt: t0.Add(time.Hour)},
		{Job: "demo/dev/hello", Version: 1, CreatedAt: t0},
	}, got), "newest first, without specs")
	require.NotContains(t, string(body), "req-1", "idempotency keys are not shown")
	require.NotContains(t, string(body), "idempotency")
}

func TestGetJobVersion(t *testing.T) {
	t.Parallel()
	b, changed := versionsBundle(t)

	for _, c := range []struct {
		version int
		doc     string
		at      time.Time
	}{
		{1, helloYAML(t), t0},
		{2, changed, t0.Add(time.Hour)},
	} {
		got := call[api.JobVersion](t, b, "GET", "/v1/jobs/demo/dev/hello/versions/"+strconv.Itoa(c.version), "", http.StatusOK)
		require.Equal(t, "demo/dev/hello", got.Job)
		require.Equal(t, c.version, got.Version)
		require.True(t, c.at.Equal(got.CreatedAt), "created at %s, want %s", got.CreatedAt, c.at)
		require.NotNil(t, got.Spec)

		// The spec is resolved: every default written out, so it reads
		// back as the very spec that was submitted.
		require.NotNil(t, got.Spec.Reschedule, "defaults are written out")
		require.NotEmpty(t, got.Spec.Task.KillGrace)
		want, err := jobspec.Parse([]byte(c.doc))
		require.NoError(t, err)
		asJSON, err := json.Marshal(got.Spec)
		require.NoError(t, err)
		back, err := jobspec.Parse(asJSON)
		require.NoError(t, err, "%s", asJSON)
		require.Empty(t, cmp.Diff(want, back), "version %d", c.version)
	}
}

func TestJobVersionMistakes(t *testing.T) {
	t.Parallel()
	b, _ := versionsBundle(t)
	tests := []struct {
		name  string
		path  string
		code  int
		field string
		msg   string
	}{
		{name: "version not there", path: "/v1/jobs/demo/dev/hello/versions/3", code: 404,
			msg: "job demo/dev/hello version 3 not found: the job has versions 1 to 2"},
		{name: "version 0", path: "/v1/jobs/demo/dev/hello/versions/0", code: 400, field: "version",
			msg: `version: must be a whole number from 1 up, not "0"`},
		{name: "negative", path: "/v1/jobs/demo/dev/hello/versions/-1", code: 400, field: "version"},
		{name: "not a number", path: "/v1/jobs/demo/dev/hello/versions/latest", code: 400, field: "version"},
		{name: "fraction", path: "/v1/jobs/demo/dev/hello/versions/1.5", code: 400, field: "version"},
		{name: "too big", path: "/v1/jobs/demo/dev/hello/versions/99999999999999999999", code: 400, field: "version"},
		{name: "versions of a missing job", path: "/v1/jobs/demo/dev/nope/versions", code: 404, msg: "job demo/dev/nope not found"},
		{name: "version of a missing job", path: "/v1/jobs/demo/dev/nope/versions/1", code: 404, msg: "job demo/dev/nope not found"},
		{name: "bad key", path: "/v1/jobs/Demo/dev/hello/versions", code: 400, field: "job"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := call[api.Error](t, b, "GET", tt.path, "", tt.code)
			require.Equal(t, tt.field, e.Field)
			if tt.msg != "" {
				require.Equal(t, tt.msg, e.Error)
			}
		})
	}

	// Only version 1: the message does not offer a range.
	one := setup(t)
	one.submitHello(t)
	e := call[api.Error](t, one, "GET", "/v1/jobs/demo/dev/hello/versions/2", "", http.StatusNotFound)
	require.Equal(t, "job demo/dev/hello version 2 not found: the job has only version 1", e.Error)
}

// TestOtherTeamsJobVersionsLookMissing: team A asking for team B's versions
// gets the answer about a job that does not exist, word for word but the
// name; team B and the viewer see them.
func TestOtherTeamsJobVersionsLookMissing(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	for _, suffix := range []string{"/versions", "/versions/1", "/versions/2", "/versions/x"} {
		codeB, bodyB := w.call(t, w.tok[whoTeamA], "GET", "/v1/jobs/"+jobB+suffix, "")
		codeX, bodyX := w.call(t, w.tok[whoTeamA], "GET", "/v1/jobs/team-b/prod/nope"+suffix, "")
		require.Equal(t, http.StatusNotFound, codeB, "%s: %s", suffix, bodyB)
		require.Equal(t, codeX, codeB, suffix)
		require.Equal(t, strings.ReplaceAll(string(bodyX), "nope", "etl"), string(bodyB), suffix)
	}
	for _, p := range []principal{whoTeamB, whoViewer, whoAdmin} {
		var vs []api.JobVersion
		require.NoError(t, json.Unmarshal(w.must(t, w.tok[p], "GET", "/v1/jobs/"+jobB+"/versions", "", http.StatusOK), &vs))
		require.Len(t, vs, 1, "%s", p)
		var v api.JobVersion
		require.NoError(t, json.Unmarshal(w.must(t, w.tok[p], "GET", "/v1/jobs/"+jobB+"/versions/1", "", http.StatusOK), &v))
		require.Equal(t, jobB, v.Spec.Job, "%s", p)
	}
}
