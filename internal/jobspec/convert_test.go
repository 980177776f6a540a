package jobspec

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/job"
)

func TestFormat(t *testing.T) {
	t.Parallel()

	spec := newSpec(func(s *job.Spec) {
		s.Instances = 3
		s.Task.Timeout = 90 * time.Second
		s.Task.Resources.Memory = 1 << 30
		s.Constraints = []job.Constraint{{Attribute: "os", Operator: job.OpNotEqual, Value: "windows"}}
	})
	three, cpu, attempts, reschedules, restarts := 3, int64(job.DefaultCPU), job.DefaultRetryAttempts, job.DefaultRescheduleAttempts, job.DefaultRestartAttempts
	want := api.JobSpec{
		Job:       "a/b/c",
		Type:      "batch",
		Instances: &three,
		Task: api.TaskSpec{
			Command:   []string{"true"},
			Timeout:   "1m30s",
			KillGrace: "5s",
			Resources: &api.ResourcesSpec{CPU: &cpu, Memory: "1GiB"},
		},
		Constraints: []api.ConstraintSpec{{Attribute: "os", Operator: "!=", Value: "windows"}},
		Retry:       &api.RetrySpec{Attempts: &attempts, Backoff: "10s"},
		Reschedule:  &api.RescheduleSpec{Attempts: &reschedules, Delay: "5s"},
		Restart:     &api.RestartSpec{Delay: "1s", Attempts: &restarts, Interval: "5m0s"},
	}
	require.Empty(t, cmp.Diff(want, Format(spec)))
}

func TestFormatRoundTrip(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		spec job.Spec
	}{
		{name: "defaults", spec: newSpec()},
		{name: "every field", spec: job.Spec{
			Key:       job.Key{Role: "etl", Env: "prod", Name: "nightly.load-2"},
			Type:      job.Batch,
			Instances: 12,
			Priority:  900,
			Task: job.TaskSpec{
				Command:   []string{"sh", "-c", "echo 'a: b' # not a comment\n", "", "--flag=yes", "~", "null", "0x10"},
				Env:       map[string]string{"A": "", "B": "true", "C": "1.5", "ü": "multi\nline", "<<": "merge?"},
				Timeout:   time.Hour + time.Nanosecond,
				KillGrace: 0,
				Resources: job.Resources{CPU: 1, Memory: 1<<20 + 1},
			},
			Constraints: []job.Constraint{
				{Attribute: "os", Operator: job.OpEqual, Value: "linux"},
				{Attribute: "zone", Operator: job.OpNotEqual, Value: ""},
			},
			Retry:      job.Retry{Attempts: 0, Backoff: 0},
			Reschedule: job.Reschedule{Attempts: 7, Delay: 90 * time.Second},
			Restart:    job.Restart{Delay: 3 * time.Second, Attempts: 4, Interval: time.Hour},
		}},
		{name: "strings yaml writes as blocks", spec: newSpec(func(s *job.Spec) {
			s.Task.Command = []string{"\n0", " hello\nworld", "  a\nb\n", "\n\n x", "x\n", "\n", "a\u2028 b", "x\u0085y"}
			s.Task.Env = map[string]string{"A": "\n0", "B": " lead\ntrail "}
			s.Constraints = []job.Constraint{{Attribute: "a", Operator: job.OpEqual, Value: "\n0"}}
		})},
		{name: "decimal memory", spec: newSpec(func(s *job.Spec) { s.Task.Resources.Memory = 5e9 })},
		{name: "most memory", spec: newSpec(func(s *job.Spec) { s.Task.Resources.Memory = 1<<63 - 1 })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			require.NoError(t, tt.spec.Validate())
			requireRoundTrip(t, []job.Spec{tt.spec})
		})
	}
}

// requireRoundTrip checks that specs, formatted and written as YAML and as
// JSON, parse back to themselves.
func requireRoundTrip(t *testing.T, specs []job.Spec) {
	t.Helper()

	docs := make([]api.JobSpec, len(specs))
	for i, s := range specs {
		docs[i] = Format(s)
	}
	// yaml.Marshal indents by 4 and then writes block scalars inside lists
	// that it cannot read back, for strings that start with a space or a
	// newline (yaml/go-yaml#399). Indenting by 2 avoids that.
	var asYAML bytes.Buffer
	enc := yaml.NewEncoder(&asYAML)
	enc.SetIndent(2)
	require.NoError(t, enc.Encode(docs))
	require.NoError(t, enc.Close())
	asJSON, err := json.Marshal(docs)
	require.NoError(t, err)
	for _, data := range [][]byte{asYAML.Bytes(), asJSON} {
		got, err := Parse(data)
		require.NoError(t, err, "document:\n%s", data)
		require.Empty(t, cmp.Diff(specs, got), "document:\n%s", data)
	}
}
