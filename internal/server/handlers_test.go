package server_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/api"
)

func TestSubmitJob(t *testing.T) {
	t.Parallel()
	b := setup(t)

	resp, body := b.do(t, "POST", "/v1/jobs", helloYAML(t), map[string]string{"Idempotency-Key": "req-1"})

	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body)
	var got api.SubmitResponse
	require.NoError(t, json.Unmarshal(body, &got))
	require.Empty(t, cmp.Diff(api.SubmitResponse{
		Job: "demo/dev/hello", Version: 1, Run: 1, Created: true, Tasks: []string{"task0001", "task0002", "task0003"},
	}, got))

	// The same request again: the first answer, with 200.
	resp, body = b.do(t, "POST", "/v1/jobs", helloYAML(t), map[string]string{"Idempotency-Key": "req-1"})
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	var again api.SubmitResponse
	require.NoError(t, json.Unmarshal(body, &again))
	got.Created = false
	require.Empty(t, cmp.Diff(got, again))

	// Another job under the same key is refused, not answered with the
	// first job's result.
	other := strings.Replace(helloYAML(t), "demo/dev/hello", "demo/dev/other", 1)
	resp, body = b.do(t, "POST", "/v1/jobs", other, map[string]string{"Idempotency-Key": "req-1"})
	require.Equal(t, http.StatusConflict, resp.StatusCode, "%s", body)
	resp, _ = b.do(t, "GET", "/v1/jobs/demo/dev/other", "", nil)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)

	// The job is there, with its spec and tasks.
	j := call[api.Job](t, b, "GET", "/v1/jobs/demo/dev/hello", "", http.StatusOK)
	require.Equal(t, "demo/dev/hello", j.Key)
	require.Equal(t, "RUNNING", j.State)
	require.Equal(t, 3, j.Instances)
	require.Equal(t, map[string]int{"PENDING": 3}, j.Counts)
	require.Len(t, j.Tasks, 3)
	require.NotNil(t, j.Spec)
	require.Equal(t, "demo/dev/hello", j.Spec.Job)
	require.Positive(t, j.EventIndex)

	jobs := call[[]api.Job](t, b, "GET", "/v1/jobs", "", http.StatusOK)
	require.Len(t, jobs, 1)
	require.Equal(t, "demo/dev/hello", jobs[0].Key)
}

func TestSubmitJobAsJSON(t *testing.T) {
	t.Parallel()
	b := setup(t)
	body := `{"job": "demo/dev/json", "task": {"command": ["true"]}}`
	got := call[api.SubmitResponse](t, b, "POST", "/v1/jobs", body, http.StatusCreated)
	require.Equal(t, "demo/dev/json", got.Job)
	require.Len(t, got.Tasks, 1)
}

func TestSubmitJobConflict(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.submitHello(t)
	changed := strings.Replace(helloYAML(t), "instances: 3", "instances: 4", 1)
	require.NotEqual(t, helloYAML(t), changed)

	e := call[api.Error](t, b, "POST", "/v1/jobs", changed, http.StatusConflict)
	require.Contains(t, e.Error, "still running")
}

func TestSubmitJobReportsEveryBadField(t *testing.T) {
	t.Parallel()
	b := setup(t)
	body := `job: demo/dev/hello
instances: 0
priority: -5
task:
  command: []
  resources: {cpu: 0}
`
	e := call[api.Error](t, b, "POST", "/v1/jobs", body, http.StatusBadRequest)

	var fields []string
	for _, fe := range e.Errors {
		require.NotEmpty(t, fe.Message, fe.Field)
		fields = append(fields, fe.Field)
	}
	for _, want := range []string{"instances", "priority", "task.command", "task.resources.cpu"} {
		require.Contains(t, fields, want)
	}
	require.Equal(t, e.Errors[0].Field, e.Field, "field names the first problem")
	require.NotEmpty(t, e.Error)
	require.Empty(t, call[[]api.Job](t, b, "GET", "/v1/jobs", "", http.StatusOK), "bad input changes nothing")
}

func TestGetJobWaitsForChange(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.submitHello(t)
	j := call[api.Job](t, b, "GET", "/v1/jobs/demo/dev/hello", "", http.StatusOK)

	// An older index answers at once, whatever the wait.
	old := call[api.Job](t, b, "GET", "/v1/jobs/demo/dev/hello?index=0&wait=5m", "", http.StatusOK)
	require.Equal(t, j.EventIndex, old.EventIndex)

	// A current index waits until the job changes. The spy says when the
	// handler has read the job; it took its wake-up channel before that
	// read, so a kill after it must wake it.
	type result struct {
		code int
		job  api.Job
		err  error
	}
	done := make(chan result, 1)
	viewed := b.store.once(&b.store.afterView)
	go func() {
		req, err := http.NewRequestWithContext(b.ctx, "GET", b.url+"/v1/jobs/demo/dev/hello?wait=1m&index="+strconv.FormatInt(j.EventIndex, 10), nil)
		if err != nil {
			done <- result{err: err}
			return
		}
		req.Header.Set("Authorization", "Bearer "+b.admin.Reveal())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		var out api.Job
		err = json.NewDecoder(resp.Body).Decode(&out)
		done <- result{resp.StatusCode, out, err}
	}()
	select {
	case <-viewed:
	case r := <-done:
		t.Fatalf("answered without waiting: %+v", r)
	}
	b.store.set(&b.store.afterView, nil)
	killed := call[api.KillResponse](t, b, "POST", "/v1/jobs/demo/dev/hello/kill", "", http.StatusOK)
	require.Len(t, killed.Tasks, 3)
	r := <-done
	require.NoError(t, r.err)
	require.Equal(t, http.StatusOK, r.code)
	require.Equal(t, "KILLED", r.job.State)
	require.Greater(t, r.job.EventIndex, j.EventIndex)
}

func TestKillJob(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.submitHello(t)

	got := call[api.KillResponse](t, b, "POST", "/v1/jobs/demo/dev/hello/kill", `{"instances": [2]}`, http.StatusOK)
	require.Equal(t, []string{"task0003"}, got.Tasks)
	got = call[api.KillResponse](t, b, "POST", "/v1/jobs/demo/dev/hello/kill", "", http.StatusOK)
	require.Equal(t, []string{"task0001", "task0002"}, got.Tasks)
	got = call[api.KillResponse](t, b, "POST", "/v1/jobs/demo/dev/hello/kill", "{}", http.StatusOK)
	require.Equal(t, []string{}, got.Tasks, "nothing left to kill")

	j := call[api.Job](t, b, "GET", "/v1/jobs/demo/dev/hello", "", http.StatusOK)
	require.Equal(t, "KILLED", j.State)
	events := call[[]api.Event](t, b, "GET", "/v1/jobs/demo/dev/hello/events", "", http.StatusOK)
	require.Equal(t, "job_finished", events[len(events)-1].Reason)
	limited := call[[]api.Event](t, b, "GET", "/v1/jobs/demo/dev/hello/events?limit=2&after="+strconv.FormatInt(events[0].ID, 10), "", http.StatusOK)
	require.Equal(t, events[1:3], limited)
}

func TestClientMistakes(t *testing.T) {
	t.Parallel()
	hello := "job: demo/dev/hello\ntask: {command: [\"true\"]}\n"
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		header map[string]string
		code   int
		field  string // the field the answer names, if any
	}{
		// Job submission.
		{name: "YAML syntax", method: "POST", path: "/v1/jobs", body: "job: [demo\n", code: 400, field: "body"},
		{name: "empty job file", method: "POST", path: "/v1/jobs", body: "", code: 400, field: "body"},
		{name: "JSON syntax", method: "POST", path: "/v1/jobs", body: `{"job": `, code: 400, field: "body"},
		{name: "not a mapping", method: "POST", path: "/v1/jobs", body: "42", code: 400, field: "body"},
		{name: "bad field", method: "POST", path: "/v1/jobs", body: hello + "instances: 0\n", code: 400, field: "instances"},
		{name: "bad key", method: "POST", path: "/v1/jobs", body: "job: Demo/dev/hello\ntask: {command: [\"true\"]}\n", code: 400, field: "job"},
		{name: "unknown field", method: "POST", path: "/v1/jobs", body: hello + "colour: red\n", code: 400, field: "colour"},
		{name: "bad duration", method: "POST", path: "/v1/jobs", body: "job: demo/dev/hello\ntask: {command: [\"true\"], timeout: soon}\n", code: 400, field: "task.timeout"},
		{name: "two jobs", method: "POST", path: "/v1/jobs", body: "- job: demo/dev/a\n  task: {command: [\"true\"]}\n- job: demo/dev/b\n  task: {command: [\"true\"]}\n", code: 400, field: "body"},
		{name: "idempotency key too long", method: "POST", path: "/v1/jobs", body: hello, header: map[string]string{"Idempotency-Key": strings.Repeat("k", 201)}, code: 400, field: "Idempotency-Key"},
		{name: "job body over 1 MiB", method: "POST", path: "/v1/jobs", body: hello + "# " + strings.Repeat("x", 1<<20) + "\n", code: 413},

		// Jobs.
		{name: "unknown job", method: "GET", path: "/v1/jobs/no/such/job", code: 404},
		{name: "bad role in path", method: "GET", path: "/v1/jobs/NO/such/job", code: 400, field: "job"},
		{name: "bad name in path", method: "GET", path: "/v1/jobs/no/such/-job", code: 400, field: "job"},
		{name: "bad wait", method: "GET", path: "/v1/jobs/demo/dev/hello?wait=forever", code: 400, field: "wait"},
		{name: "wait too long", method: "GET", path: "/v1/jobs/demo/dev/hello?wait=6m", code: 400, field: "wait"},
		{name: "negative index", method: "GET", path: "/v1/jobs/demo/dev/hello?index=-1", code: 400, field: "index"},
		{name: "kill unknown job", method: "POST", path: "/v1/jobs/no/such/job/kill", code: 404},
		{name: "kill bad key", method: "POST", path: "/v1/jobs/no/SUCH/job/kill", code: 400, field: "job"},
		{name: "kill malformed body", method: "POST", path: "/v1/jobs/demo/dev/hello/kill", body: "{", code: 400, field: "body"},
		{name: "kill unknown field", method: "POST", path: "/v1/jobs/demo/dev/hello/kill", body: `{"instance": [1]}`, code: 400, field: "body"},
		{name: "kill unknown instance", method: "POST", path: "/v1/jobs/demo/dev/hello/kill", body: `{"instances": [1]}`, code: 400, field: "instances"},
		{name: "events of unknown job", method: "GET", path: "/v1/jobs/no/such/job/events", code: 404},
		{name: "bad after", method: "GET", path: "/v1/jobs/demo/dev/hello/events?after=x", code: 400, field: "after"},
		{name: "bad limit", method: "GET", path: "/v1/events?limit=0", code: 400, field: "limit"},
		{name: "limit too big", method: "GET", path: "/v1/events?limit=10001", code: 400, field: "limit"},

		// Tasks and logs.
		{name: "bad task id", method: "GET", path: "/v1/tasks/NOPE", code: 400, field: "task"},
		{name: "unknown task", method: "GET", path: "/v1/tasks/nosuch", code: 404},
		{name: "bad stream", method: "GET", path: "/v1/tasks/task0001/logs/bogus", code: 400, field: "stream"},
		{name: "bad log offset", method: "GET", path: "/v1/tasks/task0001/logs/stdout?offset=x", code: 400, field: "offset"},
		{name: "logs of unknown task", method: "GET", path: "/v1/tasks/nosuch/logs/stdout", code: 404},

		// Agent sync.
		{name: "sync malformed JSON", method: "POST", path: "/v1/agent/sync", body: `{"node": `, code: 400, field: "body"},
		{name: "sync unknown field", method: "POST", path: "/v1/agent/sync", body: `{"node": {"name": "n1"}, "colour": "red"}`, code: 400, field: "body"},
		{name: "sync trailing data", method: "POST", path: "/v1/agent/sync", body: `{"node": {"name": "n1"}} {}`, code: 400, field: "body"},
		{name: "sync empty body", method: "POST", path: "/v1/agent/sync", code: 400, field: "body"},
		{name: "sync bad node name", method: "POST", path: "/v1/agent/sync", body: `{"node": {"name": "Bad Name"}}`, code: 400, field: "node.name"},
		{name: "sync no node name", method: "POST", path: "/v1/agent/sync", body: `{"node": {}}`, code: 400, field: "node.name"},
		{name: "sync negative capacity", method: "POST", path: "/v1/agent/sync", body: `{"node": {"name": "n1", "capacity": {"cpu": -1}}}`, code: 400, field: "node.capacity"},
		{name: "sync reports PENDING", method: "POST", path: "/v1/agent/sync", body: `{"node": {"name": "n1"}, "tasks": [{"task_id": "task0001", "state": "PENDING"}]}`, code: 400, field: "tasks[0].state"},
		{name: "sync unknown state", method: "POST", path: "/v1/agent/sync", body: `{"node": {"name": "n1"}, "tasks": [{"task_id": "a", "state": "RUNNING"}, {"task_id": "b", "state": "DONE"}]}`, code: 400, field: "tasks[1].state"},
		{name: "sync reports a task twice", method: "POST", path: "/v1/agent/sync", body: `{"node": {"name": "n1"}, "tasks": [{"task_id": "task0001", "state": "RUNNING"}, {"task_id": "task0001", "state": "SUCCEEDED"}]}`, code: 400, field: "tasks[1].task_id"},
		{name: "sync wait as a number", method: "POST", path: "/v1/agent/sync", body: `{"node": {"name": "n1"}, "wait": 5}`, code: 400, field: "body"},
		{name: "sync body over 4 MiB", method: "POST", path: "/v1/agent/sync", body: `{"node": {"name": "n1", "version": "` + strings.Repeat("x", 4<<20) + `"}}`, code: 413},

		// Log upload.
		{name: "log bad stream", method: "POST", path: "/v1/agent/logs", body: `{"task_id": "task0001", "stream": "stdin", "data": ""}`, code: 400, field: "stream"},
		{name: "log negative offset", method: "POST", path: "/v1/agent/logs", body: `{"task_id": "task0001", "stream": "stdout", "offset": -1}`, code: 400, field: "offset"},
		{name: "log bad task id", method: "POST", path: "/v1/agent/logs", body: `{"task_id": "../x", "stream": "stdout"}`, code: 400, field: "task"},
		{name: "log unknown task", method: "POST", path: "/v1/agent/logs", body: `{"task_id": "nosuch", "stream": "stdout"}`, code: 404},
		{name: "log data not base64", method: "POST", path: "/v1/agent/logs", body: `{"task_id": "task0001", "stream": "stdout", "data": "!!"}`, code: 400, field: "body"},

		// Routes and pages.
		{name: "unknown route", method: "GET", path: "/nope", code: 404},
		{name: "unknown API route", method: "GET", path: "/v1/jobs/a/b", code: 404},
		{name: "wrong method", method: "DELETE", path: "/v1/jobs", code: 404},
		{name: "page of unknown job", method: "GET", path: "/ui/jobs/no/such/job", code: 404},
		{name: "page of bad key", method: "GET", path: "/ui/jobs/no/such/JOB", code: 400, field: "job"},
		{name: "page of unknown task", method: "GET", path: "/ui/tasks/nosuch", code: 404},
		{name: "page of bad task id", method: "GET", path: "/ui/tasks/NOPE", code: 400, field: "task"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			// demo/dev/hello exists, with one instance and task task0001.
			call[api.SubmitResponse](t, b, "POST", "/v1/jobs", hello, http.StatusCreated)
			jobs := call[[]api.Job](t, b, "GET", "/v1/jobs", "", http.StatusOK)

			resp, body := b.do(t, tt.method, tt.path, tt.body, tt.header)

			require.Less(t, resp.StatusCode, 500, "a client mistake is never the server's fault: %s", body)
			require.Equal(t, tt.code, resp.StatusCode, "%s", body)
			if strings.HasPrefix(tt.path, "/ui/") {
				// Pages answer their errors with a page (web_security_test.go).
				require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
				require.Contains(t, string(body), http.StatusText(tt.code))
				return
			}
			require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			var e api.Error
			require.NoError(t, json.Unmarshal(body, &e), "%s", body)
			require.NotEmpty(t, e.Error)
			require.Equal(t, tt.field, e.Field, "%s", body)
			require.Empty(t, cmp.Diff(jobs, call[[]api.Job](t, b, "GET", "/v1/jobs", "", http.StatusOK)), "a mistake changes nothing")
		})
	}
}
