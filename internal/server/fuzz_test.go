package server_test

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Request decoding under fuzzing: whatever the body, the real handler
// answers a client error or success, never a 5xx, and never panics.

// fuzzCallTimeout cuts a call the server would hold open (a sync asking
// to wait); a cut call answers nothing, which is no 5xx either.
const fuzzCallTimeout = 200 * time.Millisecond

func fuzzPost(t *testing.T, w *world, bearer, path string, body []byte, header map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), fuzzCallTimeout)
	defer cancel()
	req := httptest.NewRequestWithContext(ctx, "POST", path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+bearer)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := w.serve(req)
	if rec.Code >= 500 {
		t.Fatalf("POST %s answered %d to %q: %s", path, rec.Code, body, rec.Body)
	}
}

func FuzzDecodeSync(f *testing.F) {
	w := newWorld(f)
	for _, seed := range []string{
		`{"node": {"name": "n1", "attributes": {"os": "linux"}, "capacity": {"cpu": 4000, "memory": 8589934592}},
		  "tasks": [{"task_id": "task0001", "state": "RUNNING"}, {"task_id": "task0002", "state": "RUNNING"}], "seq": 7}`,
		`{"node": {"name": "n1"}, "tasks": [{"task_id": "task0001", "state": "FAILED", "exit_code": 3, "reason": "exit", "message": "boom",
		  "started_at": "2030-03-04T05:06:07Z", "finished_at": "2030-03-04T05:06:08Z"}]}`,
		`{"node": {"name": "n9", "capacity": {"cpu": -1, "memory": 9223372036854775807}}, "wait": "1s"}`,
		`{"node": {"name": "n9"}, "tasks": [{"task_id": "x", "state": "RUNNING"}, {"task_id": "x", "state": "RUNNING"}]}`,
		`{"node": {"name": "n9"}, "tasks": [{"task_id": "task0002", "state": "PENDING"}], "seq": 18446744073709551615}`,
		`{"node": {"name": "../n1"}}`,
		`{"node": {"name": "n9"}, "wait": "-5s", "extra": true}`,
		`{"node": {"name": "n9"}, "tasks": [{"task_id": "task0001", "state": "LOST", "started_at": "not a time"}]}`,
		`{}`, `null`, ``, `[]`, `{"node": null}`, `{"node": {"name": "n9"}} {}`,
		strings.Repeat("[", 5000),
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzPost(t, w, w.tok[whoAgent], "/v1/agent/sync", body, nil)
	})
}

func FuzzSubmitJob(f *testing.F) {
	w := newWorld(f)
	for _, seed := range []string{
		jobJSON("team-a/prod/f", 2),
		`{"job": "team-a/prod/svc", "type": "service", "instances": 1, "task": {"command": ["srv"], "ports": ["http"],
		  "health": {"http": "http://localhost:{{port.http}}/", "interval": "1s", "timeout": "1s", "failures": 2},
		  "resources": {"cpu": 100, "memory": "64MiB"}}, "restart": {"delay": "1s", "attempts": 2, "interval": "1m"}}`,
		"job: team-a/prod/y\ninstances: 3\ntask:\n  command: [sh, -c, 'echo $X']\n  env: {X: \"$(id)\"}\n  timeout: 30s\n  resources: {cpu: 100, memory: 64MiB}\nconstraints:\n  - {attribute: os, value: linux}\nretry: {attempts: 2, backoff: 1s}\n",
		"- job: team-a/prod/a\n- job: team-a/prod/b\n",
		"a: &a [*a, *a]\n",
		`{"job": "team-a/prod/x", "instances": 100000, "task": {"command": [""]}}`,
		`{"job": "team-b/prod/etl", "instances": 1, "task": {"command": ["echo"], "resources": {"cpu": 100, "memory": "1EiB"}}}`,
		`{"job": "team-a/prod/x", "task": {"command": ["a\u0000b"], "env": {"DROVER_X": "1", "=": "x"}, "timeout": "-1s"}}`,
		`{"job": "team-a/prod/x", "priority": 1e400}`,
		``, `null`, `{}`, `[]`, "\xff\xfe", strings.Repeat("{a: ", 3000),
	} {
		f.Add([]byte(seed), "")
	}
	f.Add([]byte(jobJSON("team-a/prod/idem", 1)), "key-1")
	f.Fuzz(func(t *testing.T, body []byte, idem string) {
		h := map[string]string{}
		if idem != "" && !strings.ContainsAny(idem, "\r\n\x00") {
			h["Idempotency-Key"] = idem
		}
		fuzzPost(t, w, w.tok[whoAdmin], "/v1/jobs", body, h)
	})
}
