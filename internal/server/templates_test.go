package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/store"
)

// templateYAML is a template of key with a required input date and an
// input table that defaults to events; its job refers to both and to the
// parameter host.
func templateYAML(key string) string {
	return `# nightly load
template: ` + key + `
inputs:
  - {name: date, required: true}
  - {name: table, default: events}
job:
  instances: 1
  task:
    command: ["sh", "-c", "echo loading $TABLE for $DAY", "{{ .Params.host }}"]
    env: {DAY: "{{ .Inputs.date }}", TABLE: "{{ .Inputs.table }}"}
    resources: {cpu: 100, memory: 64MiB}
`
}

// withTemplates gives each team a template of its own, teamX/prod/tpl,
// and each team the parameter host.
func withTemplates(t *testing.T, w *world) {
	t.Helper()
	for _, team := range []string{"team-a", "team-b"} {
		w.must(t, w.tok[whoAdmin], "PUT", "/v1/params/"+team+"/host", `{"value": "db.`+team+`"}`, http.StatusOK)
		w.must(t, w.tok[whoAdmin], "PUT", "/v1/templates/"+team+"/prod/tpl", templateYAML(team+"/prod/tpl"), http.StatusCreated)
	}
}

// hasTemplate reports whether a template exists.
func (w *world) hasTemplate(t testing.TB, key string) bool {
	t.Helper()
	k, err := job.ParseKey(key)
	require.NoError(t, err)
	err = w.store.View(t.Context(), func(rd store.Reader) error {
		_, err := rd.GetTemplate(t.Context(), k)
		return err
	})
	if err != nil {
		require.ErrorIs(t, err, store.ErrNotFound)
		return false
	}
	return true
}

func templateKeys(t *testing.T, body []byte) []string {
	t.Helper()
	var ts []api.Template
	require.NoError(t, json.Unmarshal(body, &ts))
	keys := []string{}
	for _, tp := range ts {
		keys = append(keys, tp.Key)
	}
	return keys
}

func init() {
	matrix["GET /v1/templates"] = []matrixCase{{
		name: "list", method: "GET", path: "/v1/templates", prepare: withTemplates, want: anyUser,
		check: func(t *testing.T, _ *world, p principal, body []byte) {
			want := map[principal][]string{
				whoAdmin: {"team-a/prod/tpl", "team-b/prod/tpl"}, whoViewer: {"team-a/prod/tpl", "team-b/prod/tpl"},
				whoTeamA: {"team-a/prod/tpl"}, whoTeamB: {"team-b/prod/tpl"},
			}
			require.Equal(t, want[p], templateKeys(t, body))
		},
	}}
	matrix["GET /v1/templates/{role}/{env}/{name}"] = []matrixCase{
		{name: "team A's", method: "GET", path: "/v1/templates/team-a/prod/tpl", prepare: withTemplates, want: guarded(is2xx, is2xx, 404, is2xx, 403)},
		{name: "team B's", method: "GET", path: "/v1/templates/team-b/prod/tpl", prepare: withTemplates, want: guarded(is2xx, 404, is2xx, is2xx, 403)},
		{name: "missing", method: "GET", path: "/v1/templates/team-b/prod/nope", prepare: withTemplates, want: guarded(404, 404, 404, 404, 403)},
	}
	matrix["PUT /v1/templates/{role}/{env}/{name}"] = []matrixCase{{
		name: "team B's", method: "PUT", path: "/v1/templates/team-b/prod/new", body: templateYAML("team-b/prod/new"), prepare: withTemplates,
		want:      guarded(is2xx, 404, is2xx, 403, 403),
		unchanged: func(t *testing.T, w *world) { require.False(t, w.hasTemplate(t, "team-b/prod/new")) },
		changed:   func(t *testing.T, w *world, _ principal) { require.True(t, w.hasTemplate(t, "team-b/prod/new")) },
	}}
	matrix["DELETE /v1/templates/{role}/{env}/{name}"] = []matrixCase{{
		name: "team A's", method: "DELETE", path: "/v1/templates/team-a/prod/tpl", prepare: withTemplates,
		want:      guarded(is2xx, is2xx, 404, 403, 403),
		unchanged: func(t *testing.T, w *world) { require.True(t, w.hasTemplate(t, "team-a/prod/tpl")) },
		changed:   func(t *testing.T, w *world, _ principal) { require.False(t, w.hasTemplate(t, "team-a/prod/tpl")) },
	}}
	matrix["POST /v1/templates/{role}/{env}/{name}/launch"] = []matrixCase{{
		name: "team B's", method: "POST", path: "/v1/templates/team-b/prod/tpl/launch", body: `{"inputs": {"date": "2026-11-21"}}`,
		prepare:   withTemplates,
		want:      guarded(is2xx, 404, is2xx, 403, 403),
		unchanged: func(t *testing.T, w *world) { require.False(t, w.hasJob(t, "team-b/prod/tpl")) },
		changed:   func(t *testing.T, w *world, _ principal) { require.True(t, w.hasJob(t, "team-b/prod/tpl")) },
	}}
}

// TestTemplateCRUD: a template is created (201), shown verbatim with its
// inputs, replaced (200), listed and deleted; create-only and update-only
// puts refuse what exists and what does not; a bad file is a 400 naming
// its field, and a key that is not the path's is refused.
func TestTemplateCRUD(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	a := w.tok[whoTeamA]
	src := templateYAML("team-a/prod/tpl")
	code, body := w.callWith(t, a, "PUT", "/v1/templates/team-a/prod/tpl", src, map[string]string{"If-Match": "*"})
	require.Equal(t, http.StatusNotFound, code, "%s", body)
	code, body = w.callWith(t, a, "PUT", "/v1/templates/team-a/prod/tpl", src, map[string]string{"If-None-Match": "*"})
	require.Equal(t, http.StatusCreated, code, "%s", body)
	code, body = w.callWith(t, a, "PUT", "/v1/templates/team-a/prod/tpl", src, map[string]string{"If-None-Match": "*"})
	require.Equal(t, http.StatusConflict, code, "%s", body)

	var got api.Template
	require.NoError(t, json.Unmarshal(w.must(t, a, "GET", "/v1/templates/team-a/prod/tpl", "", http.StatusOK), &got))
	require.Equal(t, src, got.Source)
	events := "events"
	require.Equal(t, []api.TemplateInput{{Name: "date", Required: true}, {Name: "table", Default: &events}}, got.Inputs)

	changed := strings.Replace(src, "default: events", "default: orders", 1)
	code, body = w.callWith(t, a, "PUT", "/v1/templates/team-a/prod/tpl", changed, map[string]string{"If-Match": "*"})
	require.Equal(t, http.StatusOK, code, "%s", body)
	require.NoError(t, json.Unmarshal(w.must(t, a, "GET", "/v1/templates/team-a/prod/tpl", "", http.StatusOK), &got))
	require.Equal(t, changed, got.Source)
	require.Equal(t, []string{"team-a/prod/tpl"}, templateKeys(t, w.must(t, a, "GET", "/v1/templates", "", http.StatusOK)))

	var e api.Error
	bad := strings.Replace(src, "instances: 1", "instances: 0\n  instanses: 2", 1)
	require.NoError(t, json.Unmarshal(w.must(t, a, "PUT", "/v1/templates/team-a/prod/tpl", bad, http.StatusBadRequest), &e))
	var fields []string
	for _, fe := range e.Errors {
		fields = append(fields, fe.Field)
	}
	require.ElementsMatch(t, []string{"job.instanses", "job.instances"}, fields, "%s", e.Error)
	require.NoError(t, json.Unmarshal(w.must(t, a, "PUT", "/v1/templates/team-a/prod/other", src, http.StatusBadRequest), &e))
	require.Equal(t, "template", e.Field)

	w.must(t, a, "DELETE", "/v1/templates/team-a/prod/tpl", "", http.StatusOK)
	w.must(t, a, "DELETE", "/v1/templates/team-a/prod/tpl", "", http.StatusNotFound)
	w.must(t, a, "GET", "/v1/templates/team-a/prod/tpl", "", http.StatusNotFound)
}

// TestTemplateLaunch: a launch renders inputs (given, else defaults) and
// parameters, and submits like POST /v1/jobs: 201 and version 1, whose
// stored spec is the resolved one; the same launch while the job runs is
// the same job (200); after the job ended, a launch makes version 2. A
// missing required input, an unknown input and an undeclared reference
// are 400s naming them, and create nothing; other teams' templates are
// 404.
func TestTemplateLaunch(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	withTemplates(t, w)
	a := w.tok[whoTeamA]
	launch := "/v1/templates/team-a/prod/tpl/launch"

	var e api.Error
	require.NoError(t, json.Unmarshal(w.must(t, a, "POST", launch, `{}`, http.StatusBadRequest), &e))
	require.Equal(t, "inputs.date", e.Field)
	require.Contains(t, e.Error, `input "date" is required`)
	require.NoError(t, json.Unmarshal(w.must(t, a, "POST", launch, `{"inputs": {"date": "d", "tabel": "x"}}`, http.StatusBadRequest), &e))
	require.Equal(t, "inputs.tabel", e.Field)
	require.Contains(t, e.Error, `declares no input "tabel"`)
	require.False(t, w.hasJob(t, "team-a/prod/tpl"))

	var res api.SubmitResponse
	require.NoError(t, json.Unmarshal(w.must(t, a, "POST", launch, `{"inputs": {"date": "2026-11-21"}}`, http.StatusCreated), &res))
	require.Equal(t, api.SubmitResponse{Job: "team-a/prod/tpl", Version: 1, Run: 1, Created: true, Tasks: res.Tasks}, res)
	require.Len(t, res.Tasks, 1)
	var v api.JobVersion
	require.NoError(t, json.Unmarshal(w.must(t, a, "GET", "/v1/jobs/team-a/prod/tpl/versions/1", "", http.StatusOK), &v))
	require.Equal(t, []string{"sh", "-c", "echo loading $TABLE for $DAY", "db.team-a"}, v.Spec.Task.Command)
	require.Equal(t, map[string]string{"DAY": "2026-11-21", "TABLE": "events"}, v.Spec.Task.Env)

	require.NoError(t, json.Unmarshal(w.must(t, a, "POST", launch, `{"inputs": {"date": "2026-11-21"}}`, http.StatusOK), &res))
	require.Equal(t, 1, res.Version)
	require.False(t, res.Created)

	w.must(t, a, "POST", "/v1/jobs/team-a/prod/tpl/kill", "", http.StatusOK)
	// An input's value is taken as it is, never read as a reference.
	require.NoError(t, json.Unmarshal(w.must(t, a, "POST", launch, `{"inputs": {"date": "{{ .Params.host }}", "table": "orders"}}`, http.StatusCreated), &res))
	require.Equal(t, 2, res.Version)
	require.NoError(t, json.Unmarshal(w.must(t, a, "GET", "/v1/jobs/team-a/prod/tpl/versions/2", "", http.StatusOK), &v))
	require.Equal(t, map[string]string{"DAY": "{{ .Params.host }}", "TABLE": "orders"}, v.Spec.Task.Env)

	// A reference to an undeclared input, or a missing parameter.
	undeclared := strings.Replace(templateYAML("team-a/prod/u"), "{{ .Inputs.table }}", "{{ .Inputs.tabel }}", 1)
	w.must(t, a, "PUT", "/v1/templates/team-a/prod/u", undeclared, http.StatusCreated)
	require.NoError(t, json.Unmarshal(w.must(t, a, "POST", "/v1/templates/team-a/prod/u/launch", `{"inputs": {"date": "d"}}`, http.StatusBadRequest), &e))
	require.Equal(t, "task.env.TABLE", e.Field)
	require.Contains(t, e.Error, `input "tabel" is not declared`)
	w.must(t, w.tok[whoAdmin], "DELETE", "/v1/params/team-a/host", "", http.StatusOK)
	require.NoError(t, json.Unmarshal(w.must(t, a, "POST", "/v1/templates/team-a/prod/u/launch", `{"inputs": {"date": "d"}}`, http.StatusBadRequest), &e))
	require.Contains(t, e.Error, `parameter "host" is not set`)
	require.False(t, w.hasJob(t, "team-a/prod/u"))

	w.must(t, a, "POST", "/v1/templates/team-b/prod/tpl/launch", `{"inputs": {"date": "d"}}`, http.StatusNotFound)
	w.must(t, a, "GET", "/v1/templates/team-b/prod/tpl", "", http.StatusNotFound)
	w.must(t, a, "POST", "/v1/templates/team-a/prod/nope/launch", `{}`, http.StatusNotFound)
}
