package jobspec

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/job"
)

// newSpec returns the spec of a minimal job file ("job: a/b/c" and
// "task: {command: [true]}") with every default filled in, changed by each
// of opts.
func newSpec(opts ...func(*job.Spec)) job.Spec {
	s := job.Spec{
		Key:       job.Key{Role: "a", Env: "b", Name: "c"},
		Type:      job.Batch,
		Instances: job.DefaultInstances,
		Task: job.TaskSpec{
			Command:   []string{"true"},
			KillGrace: job.DefaultKillGrace,
			Resources: job.Resources{CPU: job.DefaultCPU, Memory: job.DefaultMemory},
		},
		Retry:      job.Retry{Attempts: job.DefaultRetryAttempts, Backoff: job.DefaultRetryBackoff},
		Reschedule: job.Reschedule{Attempts: job.DefaultRescheduleAttempts, Delay: job.DefaultRescheduleDelay},
		Restart:    job.Restart{Delay: job.DefaultRestartDelay, Attempts: job.DefaultRestartAttempts, Interval: job.DefaultRestartInterval},
	}
	for _, o := range opts {
		o(&s)
	}
	return s
}

// fieldErrors returns the field errors err joins, failing the test on any
// other error.
func fieldErrors(t *testing.T, err error) []*job.FieldError {
	t.Helper()
	require.Error(t, err)
	var out []*job.FieldError
	for _, e := range job.Unjoin(err) {
		var fe *job.FieldError
		require.True(t, errors.As(e, &fe), "not a *job.FieldError: %v", e)
		out = append(out, fe)
	}
	return out
}

func TestParseExample(t *testing.T) {
	t.Parallel()

	data, err := os.ReadFile("../../examples/hello.yaml")
	require.NoError(t, err)
	got, err := Parse(data)
	require.NoError(t, err)

	want := []job.Spec{{
		Key:       job.Key{Role: "demo", Env: "dev", Name: "hello"},
		Type:      job.Batch,
		Instances: 3,
		Priority:  0,
		Task: job.TaskSpec{
			Command:   []string{"sh", "-c", "echo hello from instance $DROVER_INSTANCE"},
			Env:       map[string]string{"GREETING": "hi"},
			Timeout:   30 * time.Second,
			KillGrace: job.DefaultKillGrace,
			Resources: job.Resources{CPU: 100, Memory: 64 << 20},
		},
		Constraints: []job.Constraint{{Attribute: "os", Operator: job.OpEqual, Value: "linux"}},
		Retry:       job.Retry{Attempts: 2, Backoff: time.Second},
		Reschedule:  job.Reschedule{Attempts: job.DefaultRescheduleAttempts, Delay: job.DefaultRescheduleDelay},
		Restart:     job.Restart{Delay: job.DefaultRestartDelay, Attempts: job.DefaultRestartAttempts, Interval: job.DefaultRestartInterval},
	}}
	require.Empty(t, cmp.Diff(want, got))
}

func TestParse(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		doc  string
		want []job.Spec
	}{
		{
			name: "defaults",
			doc:  "job: a/b/c\ntask:\n  command: [\"true\"]\n",
			want: []job.Spec{newSpec()},
		},
		{
			name: "json body",
			doc:  `{"job":"a/b/c","task":{"command":["true"]}}`,
			want: []job.Spec{newSpec()},
		},
		{
			name: "indented json body",
			doc: `{
  "job": "a/b/c",
  "instances": 2,
  "task": {"command": ["true"], "resources": {"cpu": 250, "memory": 134217728}},
  "retry": {"attempts": 0}
}`,
			want: []job.Spec{newSpec(func(s *job.Spec) {
				s.Instances = 2
				s.Task.Resources = job.Resources{CPU: 250, Memory: 128 << 20}
				s.Retry.Attempts = 0
			})},
		},
		{
			name: "json escapes yaml lacks",
			doc:  `{"job":"a\/b\/c","task":{"command":["true","\ud83d\ude00","\ud83d"]}}`,
			want: []job.Spec{newSpec(func(s *job.Spec) { s.Task.Command = []string{"true", "😀", "\uFFFD"} })},
		},
		{
			name: "json raw characters yaml reads otherwise",
			doc:  "{\"job\":\"a/b/c\",\"task\":{\"command\":[\"true\",\"x\u0085 \u2028 y\",\"\x7f\u0080\uffff\"]}}",
			want: []job.Spec{newSpec(func(s *job.Spec) { s.Task.Command = []string{"true", "x\u0085 \u2028 y", "\x7f\u0080\uffff"} })},
		},
		{
			name: "json indented with tabs",
			doc:  "\t{\n\t\t\"job\": \"a/b/c\",\n\t\t\"task\": {\"command\": [\"true\"]}\n\t}\n",
			want: []job.Spec{newSpec()},
		},
		{
			name: "list",
			doc: `
- job: a/b/c
  task: {command: ["true"]}
- job: a/b/d
  type: batch
  priority: 7
  task: {command: [sleep, "10"], kill_grace: 0s}
`,
			want: []job.Spec{newSpec(), newSpec(func(s *job.Spec) {
				s.Key.Name = "d"
				s.Priority = 7
				s.Task.Command = []string{"sleep", "10"}
				s.Task.KillGrace = 0
			})},
		},
		{
			name: "one job list",
			doc:  "- {job: a/b/c, task: {command: [\"true\"]}}",
			want: []job.Spec{newSpec()},
		},
		{
			name: "memory as bare bytes",
			doc:  "job: a/b/c\ntask:\n  command: [\"true\"]\n  resources: {memory: 2097152}\n",
			want: []job.Spec{newSpec(func(s *job.Spec) { s.Task.Resources.Memory = 2 << 20 })},
		},
		{
			name: "memory with decimal unit",
			doc:  "job: a/b/c\ntask:\n  command: [\"true\"]\n  resources: {memory: 1.5G}\n",
			want: []job.Spec{newSpec(func(s *job.Spec) { s.Task.Resources.Memory = 1_500_000_000 })},
		},
		{
			name: "retry block without fields keeps defaults",
			doc:  "job: a/b/c\ntask: {command: [\"true\"]}\nretry: {}\n",
			want: []job.Spec{newSpec()},
		},
		{
			name: "retry backoff only",
			doc:  "job: a/b/c\ntask: {command: [\"true\"]}\nretry: {backoff: 0s}\n",
			want: []job.Spec{newSpec(func(s *job.Spec) { s.Retry.Backoff = 0 })},
		},
		{
			name: "constraint operators",
			doc: `
job: a/b/c
task: {command: ["true"]}
constraints:
  - {attribute: os, value: linux}
  - {attribute: zone, operator: "!=", value: a}
`,
			want: []job.Spec{newSpec(func(s *job.Spec) {
				s.Constraints = []job.Constraint{
					{Attribute: "os", Operator: job.OpEqual, Value: "linux"},
					{Attribute: "zone", Operator: job.OpNotEqual, Value: "a"},
				}
			})},
		},
		{
			name: "anchors and merge keys",
			doc: `
- &base
  job: a/b/c
  task: {command: ["true"], env: {A: "1"}}
- <<: *base
  job: a/b/d
  instances: 2
`,
			want: []job.Spec{
				newSpec(func(s *job.Spec) { s.Task.Env = map[string]string{"A": "1"} }),
				newSpec(func(s *job.Spec) {
					s.Key.Name = "d"
					s.Instances = 2
					s.Task.Env = map[string]string{"A": "1"}
				}),
			},
		},
		{
			name: "empty second document is ignored",
			doc:  "job: a/b/c\ntask: {command: [\"true\"]}\n---\n",
			want: []job.Spec{newSpec()},
		},
		{
			name: "quoted and block strings",
			doc:  "job: a/b/c\ntask:\n  command: [x, ' y', \"\\n\"]\n  env:\n    A: |\n      multi\n      line\n",
			want: []job.Spec{newSpec(func(s *job.Spec) {
				s.Task.Command = []string{"x", " y", "\n"}
				s.Task.Env = map[string]string{"A": "multi\nline\n"}
			})},
		},
		{
			name: "scalars are strings where strings are expected",
			doc:  "job: a/b/c\ntask: {command: [\"true\", 1, yes], env: {N: 2}}\n",
			want: []job.Spec{newSpec(func(s *job.Spec) {
				s.Task.Command = []string{"true", "1", "yes"}
				s.Task.Env = map[string]string{"N": "2"}
			})},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			got, err := Parse([]byte(tt.doc))
			require.NoError(t, err)
			require.Empty(t, cmp.Diff(tt.want, got))
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()

	const ok = "job: a/b/c\ntask: {command: [\"true\"]}\n"
	tests := []struct {
		name string
		doc  string
		// want is each expected error, field and message, as Error prints it.
		// A doc that is not a job (bad YAML, no job) has one plain error.
		want     []string
		wantText string // for plain errors, a part of the message
	}{
		{name: "empty", doc: "", wantText: "job file is empty"},
		{name: "only comments", doc: "# nothing\n", wantText: "job file is empty"},
		{name: "null", doc: "~\n", wantText: "job file is empty"},
		{name: "empty list", doc: "[]", wantText: "job file lists no jobs"},
		{name: "scalar", doc: "hello\n", wantText: `must be a job mapping or a list of job mappings, not "hello" (line 1)`},
		{name: "malformed yaml", doc: "job: a/b/c\ntask: {command: [x]\n", wantText: "parse job file: yaml: line"},
		{name: "malformed json", doc: `{"job": "a/b/c",`, wantText: "parse job file: yaml: line 1"},
		{
			name: "json error names the line",
			doc:  "{\n  \"job\": \"a/b/c\",\n  \"task\": {\"command\": [\"true\"], \"timeout\": \"1 minute\"}\n}",
			want: []string{`task.timeout: "1 minute" is not a duration: write it like 30s, 5m or 1h30m (line 3)`},
		},
		{name: "tab indent", doc: "job: a/b/c\ntask:\n\tcommand: [x]\n", wantText: "parse job file: yaml: line 3"},
		{name: "second document", doc: ok + "---\n" + ok, wantText: "job file holds a second YAML document (line 4): write several jobs as one list"},
		{
			name: "unknown top-level field",
			doc:  ok + "retires: 3\n",
			want: []string{`retires: unknown field (line 3)`},
		},
		{
			name: "unknown nested field",
			doc:  "job: a/b/c\ntask:\n  command: [x]\n  timeot: 30s\n",
			want: []string{`task.timeot: unknown field, did you mean "timeout"? (line 4)`},
		},
		{
			name: "unknown field in list",
			doc:  "- job: a/b/c\n  task: {command: [x]}\n- {job: a/b/d, task: {command: [x]}, Type: batch}\n",
			want: []string{`[1].Type: unknown field, did you mean "type"? (line 3)`},
		},
		{
			name: "field twice",
			doc:  ok + "job: a/b/d\n",
			want: []string{`job: given twice, first on line 1 (line 3)`},
		},
		{
			name: "wrong shapes",
			doc:  "job: [a]\ntask:\n  command: echo hi\n  env: [A]\n  resources: 1\nconstraints: {attribute: os}\nretry: [1]\n",
			want: []string{
				`job: must be a string, not a list (line 1)`,
				`task.command: must be a list, not "echo hi" (line 3)`,
				`task.env: must be a mapping of names to values, not a list (line 4)`,
				`task.resources: must be a mapping of fields, not "1" (line 5)`,
				`constraints: must be a list, not a mapping (line 6)`,
				`retry: must be a mapping of fields, not a list (line 7)`,
			},
		},
		{
			name: "fractional number",
			doc:  ok + "instances: 2.5\n",
			want: []string{`instances: must be a whole number, not "2.5" (line 3)`},
		},
		{
			name: "number too large",
			doc:  ok + "instances: 99999999999999999999\n",
			want: []string{`instances: must be a whole number, not "99999999999999999999" (line 3)`},
		},
		{
			name: "empty list item",
			doc:  "- job: a/b/c\n  task: {command: [x]}\n-\n",
			want: []string{`[1]: is empty, expected a job mapping (line 3)`},
		},
		{
			name: "bad duration",
			doc:  "job: a/b/c\ntask:\n  command: [x]\n  timeout: 30x\n",
			want: []string{`task.timeout: "30x" is not a duration: write it like 30s, 5m or 1h30m (line 4)`},
		},
		{
			name: "duration without unit",
			doc:  ok + "retry: {backoff: 10}\n",
			want: []string{`retry.backoff: "10" is not a duration: write it like 30s, 5m or 1h30m (line 3)`},
		},
		{
			name: "bad memory",
			doc:  "job: a/b/c\ntask:\n  command: [x]\n  resources: {memory: 64XB}\n",
			want: []string{`task.resources.memory: size "64XB": unknown unit "XB": use B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024) (line 4)`},
		},
		{
			name: "memory too small",
			doc:  "job: a/b/c\ntask:\n  command: [x]\n  resources: {memory: 1000}\n",
			want: []string{`task.resources.memory: must be at least 1MiB, not 1000 bytes (line 4)`},
		},
		{
			name: "missing key",
			doc:  "task: {command: [x]}\n",
			want: []string{`job: must be set, as ROLE/ENV/NAME`},
		},
		{
			name: "short key",
			doc:  "job: a/b\ntask: {command: [x]}\n",
			want: []string{`job: "a/b": must be ROLE/ENV/NAME (line 1)`},
		},
		{
			name: "bad key part",
			doc:  "job: a/B/c\ntask: {command: [x]}\n",
			want: []string{`job: "a/B/c": env "B" ` + job.NameRule + ` (line 1)`},
		},
		{
			name: "zero instances",
			doc:  ok + "instances: 0\n",
			want: []string{`instances: must be between 1 and 10000, not 0 (line 3)`},
		},
		{
			name: "missing command",
			doc:  "job: a/b/c\n",
			want: []string{`task.command: must name a program to run`},
		},
		{
			name: "empty command",
			doc:  "job: a/b/c\ntask: {command: []}\n",
			want: []string{`task.command: must name a program to run (line 2)`},
		},
		{
			name: "bad operator",
			doc:  ok + "constraints:\n  - {attribute: os, operator: '>', value: linux}\n",
			want: []string{`constraints[0].operator: must be "=" or "!=", not ">" (line 4)`},
		},
		{
			name: "binary string that is not UTF-8",
			doc:  "job: a/b/c\ntask: {command: [x, !!binary /w==]}\n",
			want: []string{`task.command[1]: must be valid UTF-8 (line 2)`},
		},
		{
			name: "duplicate job keys",
			doc:  "- {job: a/b/c, task: {command: [x]}}\n- {job: a/b/d, task: {command: [x]}}\n- {job: a/b/c, task: {command: [x]}}\n",
			want: []string{`[2].job: "a/b/c" is also the key of job [0] (line 3)`},
		},
		{
			name: "several errors at once",
			doc: `job: a/b
type: cron
instances: 0
task:
  command: []
  timeout: 30x
  kill_grace: -1s
  env: {DROVER_X: "1"}
  resources: {cpu: 0, memory: lots}
constraints:
  - {attribute: os, operator: "~", value: linux}
retry: {attempts: 101, backoff: 1y}
`,
			want: []string{
				`job: "a/b": must be ROLE/ENV/NAME (line 1)`,
				`type: must be "batch" or "service", not "cron" (line 2)`,
				`instances: must be between 1 and 10000, not 0 (line 3)`,
				`task.command: must name a program to run (line 5)`,
				`task.timeout: "30x" is not a duration: write it like 30s, 5m or 1h30m (line 6)`,
				`task.kill_grace: must be between 0s and 10m (line 7)`,
				`task.env.DROVER_X: names starting with DROVER_ are set by drover (line 8)`,
				`task.resources.cpu: must be at least 1 millicore, not 0 (line 9)`,
				`task.resources.memory: size "lots": must be a number with an optional unit, like 64MiB or 1G (line 9)`,
				`constraints[0].operator: must be "=" or "!=", not "~" (line 11)`,
				`retry.attempts: must be between 0 and 100, not 101 (line 12)`,
				`retry.backoff: "1y" is not a duration: write it like 30s, 5m or 1h30m (line 12)`,
			},
		},
		{
			name: "errors of structure and of values in a list",
			doc: `
- job: a/b/c
  task: {command: [x], timeout: soon}
- job: a/b/d
  task: {command: [x], timeout: -1s}
  retrys: 2
- job: a/b/e
  task: {command: [x], resources: {memory: -1}}
`,
			want: []string{
				`[0].task.timeout: "soon" is not a duration: write it like 30s, 5m or 1h30m (line 3)`,
				`[1].task.timeout: must not be negative (line 5)`,
				`[1].retrys: unknown field, did you mean "retry"? (line 6)`,
				`[2].task.resources.memory: size "-1": must not be negative (line 8)`,
			},
		},
		{
			name: "errors of structure and of values",
			doc:  "job: a/b\ntask: {command: [x], timeot: 1s, timeout: 1x}\n",
			want: []string{
				`job: "a/b": must be ROLE/ENV/NAME (line 1)`,
				`task.timeot: unknown field, did you mean "timeout"? (line 2)`,
				`task.timeout: "1x" is not a duration: write it like 30s, 5m or 1h30m (line 2)`,
			},
		},
		{
			name: "nested field twice",
			doc:  "job: a/b/c\ntask:\n  command: [x]\n  command: [y]\ninstances: 0\n",
			want: []string{
				`task.command: given twice, first on line 3 (line 4)`,
				`instances: must be between 1 and 10000, not 0 (line 5)`,
			},
		},
		{
			name: "list item that is not a job",
			doc:  "- 5\n- {job: a/b/c, task: {command: [x]}, instances: 0}\n",
			want: []string{
				`[0]: must be a mapping of fields, not "5" (line 1)`,
				`[1].instances: must be between 1 and 10000, not 0 (line 2)`,
			},
		},
		{
			name: "long values are cut short",
			doc:  "job: a/b/c\ntask: {command: [x]}\ninstances: ééééééééééééééééééééééééééééééééééééééééééééééééé\n",
			want: []string{`instances: must be a whole number, not "ééééééééééééééééééééééééééééééééééééé..." (line 3)`},
		},
		{
			name: "several value errors in a list",
			doc: `
- job: a/b/c
  task: {command: [x], timeout: soon}
- job: a/b/d
  task: {command: [x], timeout: -1s}
- job: a/b/e
  task: {command: [x], resources: {memory: -1}}
`,
			want: []string{
				`[0].task.timeout: "soon" is not a duration: write it like 30s, 5m or 1h30m (line 3)`,
				`[1].task.timeout: must not be negative (line 5)`,
				`[2].task.resources.memory: size "-1": must not be negative (line 7)`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			got, err := Parse([]byte(tt.doc))
			require.Error(t, err)
			require.Nil(t, got)
			if tt.wantText != "" {
				require.ErrorContains(t, err, tt.wantText)
				return
			}
			var msgs []string
			for _, fe := range fieldErrors(t, err) {
				msgs = append(msgs, fe.Error())
			}
			require.Empty(t, cmp.Diff(tt.want, msgs))
		})
	}
}

// TestParseAliasBomb checks that a few lines of merged aliases that expand
// to billions of values are refused quickly.
func TestParseAliasBomb(t *testing.T) {
	t.Parallel()

	doc := `
a: &a {A: x}
b: &b {<<: [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]}
c: &c {<<: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]}
d: &d {<<: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]}
e: &e {<<: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]}
f: &f {<<: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]}
g: &g {<<: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]}
h: &h {<<: [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]}
job: a/b/c
task: {command: [x], env: *h}
`
	_, err := Parse([]byte(doc))
	require.EqualError(t, err, "parse job file: aliases expand to too many values")
}
