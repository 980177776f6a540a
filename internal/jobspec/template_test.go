package jobspec

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/template"
)

func TestParseTemplateExample(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../examples/nightly-template.yaml")
	require.NoError(t, err)
	got, err := ParseTemplate(data)
	require.NoError(t, err)
	key := job.Key{Role: "etl", Env: "prod", Name: "nightly"}
	want := template.Spec{
		Key:    key,
		Inputs: []template.Input{{Name: "date", Required: true}, {Name: "table", Default: "events", HasDefault: true}},
		Job: job.Spec{
			Key: key, Type: job.Batch, Instances: 1,
			Task: job.TaskSpec{
				Command:   []string{"sh", "-c", "echo loading $TABLE for $DAY"},
				Env:       map[string]string{"DAY": "{{ .Inputs.date }}", "TABLE": "{{ .Inputs.table }}"},
				Timeout:   time.Minute,
				KillGrace: job.DefaultKillGrace,
				Resources: job.Resources{CPU: job.DefaultCPU, Memory: job.DefaultMemory},
			},
			Retry:      job.Retry{Attempts: job.DefaultRetryAttempts, Backoff: job.DefaultRetryBackoff},
			Reschedule: job.Reschedule{Attempts: job.DefaultRescheduleAttempts, Delay: job.DefaultRescheduleDelay},
			Restart:    job.Restart{Delay: job.DefaultRestartDelay, Attempts: job.DefaultRestartAttempts, Interval: job.DefaultRestartInterval},
		},
	}
	require.Empty(t, cmp.Diff(want, got))
}

func TestParseTemplate(t *testing.T) {
	t.Parallel()
	got, err := ParseTemplate([]byte("template: a/b/c\njob: {task: {command: [\"echo\", \"{{ .Params.x }}\"]}}\n"))
	require.NoError(t, err)
	require.Empty(t, got.Inputs)
	require.Equal(t, job.Key{Role: "a", Env: "b", Name: "c"}, got.Job.Key)
	require.Equal(t, []string{"echo", "{{ .Params.x }}"}, got.Job.Task.Command)
	require.Equal(t, job.DefaultInstances, got.Job.Instances)

	got, err = ParseTemplate([]byte(`{"template": "a/b/c", "inputs": [{"name": "d", "default": ""}], "job": {"task": {"command": ["x"]}}}`))
	require.NoError(t, err, "JSON is YAML, and an empty default is a default")
	require.Equal(t, []template.Input{{Name: "d", HasDefault: true}}, got.Inputs)
}

// TestParseTemplateErrors: every problem at once, each named by its path
// in the file, with its line where the field is written.
func TestParseTemplateErrors(t *testing.T) {
	t.Parallel()
	const job1 = "job:\n  task: {command: [x]}\n"
	for _, c := range []struct {
		name     string
		doc      string
		want     []string
		wantText string
	}{
		{name: "empty", doc: "", wantText: "template file: job file is empty"},
		{name: "list", doc: "- template: a/b/c\n", wantText: "template file must be a mapping"},
		{name: "malformed", doc: "template: [a\n", wantText: "parse job file: yaml: line"},
		{name: "no key", doc: job1, want: []string{"template: must be set, as ROLE/ENV/NAME: the key of the jobs it makes"}},
		{name: "bad key", doc: "template: a/b\n" + job1, want: []string{`template: "a/b": must be ROLE/ENV/NAME (line 1)`}},
		{name: "unknown top-level field", doc: "template: a/b/c\ninput: []\n" + job1, want: []string{`input: unknown field, did you mean "inputs"? (line 2)`}},
		{name: "job key in the job", doc: "template: a/b/c\njob:\n  job: a/b/d\n  task: {command: [x]}\n",
			want: []string{"job.job: must be left out: the template's key (template:) names the jobs it makes (line 3)"}},
		{name: "bad job fields", doc: "template: a/b/c\njob:\n  instances: 0\n  task: {command: [x], timeot: 1s}\n",
			want: []string{`job.task.timeot: unknown field, did you mean "timeout"? (line 4)`, "job.instances: must be between 1 and 10000, not 0 (line 3)"}},
		{name: "bad inputs", doc: "template: a/b/c\ninputs:\n  - {name: 1x, required: true}\n  - {name: y, required: true, default: z}\n  - {name: y, default: z}\n  - {name: w}\n  - {nmae: v, default: x}\n" + job1,
			want: []string{
				`inputs[0].name: "1x" ` + template.InputNameRule + " (line 3)",
				"inputs[1].default: must not be set on a required input: a launch must give it (line 4)",
				`inputs[2].name: "y" is also the name of inputs[1] (line 5)`,
				"inputs[3]: needs a default, or required: true (line 6)",
				"inputs[4].nmae: unknown field (line 7)",
				"inputs[4].name: must be set",
			}},
		{name: "wrong shapes", doc: "template: a/b/c\ninputs: {name: x}\njob: [1]\n",
			want: []string{"inputs: must be a list, not a mapping (line 2)", "job: must be a mapping of fields, not a list (line 3)"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseTemplate([]byte(c.doc))
			require.Error(t, err)
			if c.wantText != "" {
				require.Contains(t, err.Error(), c.wantText)
				return
			}
			var got []string
			for _, fe := range fieldErrors(t, err) {
				got = append(got, fe.Error())
			}
			require.ElementsMatch(t, c.want, got)
		})
	}
}

// FuzzParseTemplate checks that ParseTemplate never panics, that each
// field error it returns names a field, and that every template it
// returns has valid inputs and a valid job under its own key.
func FuzzParseTemplate(f *testing.F) {
	example, err := os.ReadFile("../../examples/nightly-template.yaml")
	require.NoError(f, err)
	for _, seed := range []string{
		string(example),
		`{"template": "a/b/c", "inputs": [{"name": "d", "default": ""}], "job": {"task": {"command": ["x"]}}}`,
		"template: a/b/c\njob:\n  job: a/b/d\n  task: {command: [x]}\n",
		"template: a/b\ninputs: [{name: 1x}, {nmae: y}]\njob: [1]\n",
		"- template: a/b/c\n",
		"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseTemplate(data)
		if err != nil {
			for _, e := range job.Unjoin(err) {
				var fe *job.FieldError
				if errors.As(e, &fe) {
					require.NotEmpty(t, fe.Field, "%v", fe)
					require.NotContains(t, fe.Msg, "(line 0)")
				}
			}
			return
		}
		require.NoError(t, s.Validate())
		require.NoError(t, s.Job.Validate())
		require.Equal(t, s.Key, s.Job.Key)
	})
}
