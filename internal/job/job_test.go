package job_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/drover-dev/drover/internal/job"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// validSpec returns a spec that passes Validate, changed by each of opts.
func validSpec(opts ...func(*job.Spec)) job.Spec {
	s := job.Spec{
		Key:       job.Key{Role: "demo", Env: "dev", Name: "hello"},
		Type:      job.Batch,
		Instances: 3,
		Priority:  10,
		Task: job.TaskSpec{
			Command:   []string{"sh", "-c", "echo hi"},
			Env:       map[string]string{"GREETING": "hi"},
			Timeout:   30 * time.Second,
			KillGrace: job.DefaultKillGrace,
			Resources: job.Resources{CPU: job.DefaultCPU, Memory: job.DefaultMemory},
		},
		Constraints: []job.Constraint{{Attribute: "os", Operator: job.OpEqual, Value: "linux"}},
		Retry:       job.Retry{Attempts: 2, Backoff: time.Second},
	}
	for _, o := range opts {
		o(&s)
	}
	return s
}

// fields lists the Field of every FieldError in err, in order, and fails if
// err holds anything that is not a FieldError.
func fields(t *testing.T, err error) []string {
	t.Helper()
	joined, ok := err.(interface{ Unwrap() []error })
	require.True(t, ok, "Validate returns an errors.Join, got %T", err)
	var out []string
	for _, e := range joined.Unwrap() {
		var fe *job.FieldError
		require.True(t, errors.As(e, &fe), "not a FieldError: %v", e)
		require.Equal(t, fe.Field+": "+fe.Msg, e.Error())
		out = append(out, fe.Field)
	}
	return out
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(*job.Spec)
		want   []string // fields at fault, in report order; nil: valid
		msg    string   // part of the first message
	}{
		{name: "valid", change: func(*job.Spec) {}},
		{name: "service", change: func(s *job.Spec) { s.Type = job.Service }},
		{name: "limits at their bounds", change: func(s *job.Spec) {
			s.Instances, s.Priority = job.MaxInstances, 1000
			s.Task.Timeout, s.Task.KillGrace = 0, 10*time.Minute
			s.Task.Resources = job.Resources{CPU: 1, Memory: 1 << 20}
			s.Retry = job.Retry{Attempts: job.MaxRetryAttempts, Backoff: job.MaxBackoff}
		}},
		{name: "no retry, no constraints, no env", change: func(s *job.Spec) {
			s.Retry, s.Constraints, s.Task.Env = job.Retry{}, nil, nil
		}},
		{name: "bad role", change: func(s *job.Spec) { s.Key.Role = "Demo" }, want: []string{"job"}, msg: `role "Demo"`},
		{name: "empty env", change: func(s *job.Spec) { s.Key.Env = "" }, want: []string{"job"}, msg: `env ""`},
		{name: "name with slash", change: func(s *job.Spec) { s.Key.Name = "a/b" }, want: []string{"job"}, msg: `name "a/b"`},
		{name: "type", change: func(s *job.Spec) { s.Type = "cron" }, want: []string{"type"}, msg: `not "cron"`},
		{name: "zero instances", change: func(s *job.Spec) { s.Instances = 0 }, want: []string{"instances"}, msg: "not 0"},
		{name: "too many instances", change: func(s *job.Spec) { s.Instances = job.MaxInstances + 1 }, want: []string{"instances"}},
		{name: "negative priority", change: func(s *job.Spec) { s.Priority = -1 }, want: []string{"priority"}},
		{name: "priority too high", change: func(s *job.Spec) { s.Priority = 1001 }, want: []string{"priority"}},
		{name: "no command", change: func(s *job.Spec) { s.Task.Command = nil }, want: []string{"task.command"}},
		{name: "empty program", change: func(s *job.Spec) { s.Task.Command = []string{"", "x"} }, want: []string{"task.command"}},
		{name: "NUL in an argument", change: func(s *job.Spec) { s.Task.Command = []string{"sh", "a\x00b"} }, want: []string{"task.command[1]"}},
		{name: "env name with =", change: func(s *job.Spec) { s.Task.Env = map[string]string{"A=B": "x"} }, want: []string{"task.env"}},
		{name: "empty env name", change: func(s *job.Spec) { s.Task.Env = map[string]string{"": "x"} }, want: []string{"task.env"}},
		{name: "reserved env name", change: func(s *job.Spec) { s.Task.Env = map[string]string{"DROVER_INSTANCE": "1"} }, want: []string{"task.env.DROVER_INSTANCE"}},
		{name: "NUL in env value", change: func(s *job.Spec) { s.Task.Env = map[string]string{"K": "a\x00"} }, want: []string{"task.env.K"}},
		{name: "negative timeout", change: func(s *job.Spec) { s.Task.Timeout = -time.Second }, want: []string{"task.timeout"}},
		{name: "negative kill grace", change: func(s *job.Spec) { s.Task.KillGrace = -1 }, want: []string{"task.kill_grace"}},
		{name: "kill grace too long", change: func(s *job.Spec) { s.Task.KillGrace = 10*time.Minute + 1 }, want: []string{"task.kill_grace"}},
		{name: "zero cpu", change: func(s *job.Spec) { s.Task.Resources.CPU = 0 }, want: []string{"task.resources.cpu"}},
		{name: "memory under 1MiB", change: func(s *job.Spec) { s.Task.Resources.Memory = 1<<20 - 1 }, want: []string{"task.resources.memory"}},
		{name: "empty constraint attribute", change: func(s *job.Spec) {
			s.Constraints = append(s.Constraints, job.Constraint{Operator: job.OpEqual, Value: "x"})
		}, want: []string{"constraints[1].attribute"}},
		{name: "bad operator", change: func(s *job.Spec) { s.Constraints[0].Operator = "~" }, want: []string{"constraints[0].operator"}, msg: `not "~"`},
		{name: "negative retry attempts", change: func(s *job.Spec) { s.Retry.Attempts = -1 }, want: []string{"retry.attempts"}},
		{name: "too many retry attempts", change: func(s *job.Spec) { s.Retry.Attempts = job.MaxRetryAttempts + 1 }, want: []string{"retry.attempts"}},
		{name: "negative backoff", change: func(s *job.Spec) { s.Retry.Backoff = -1 }, want: []string{"retry.backoff"}},
		{name: "backoff too long", change: func(s *job.Spec) { s.Retry.Backoff = job.MaxBackoff + 1 }, want: []string{"retry.backoff"}},
		{
			name: "several at once, in file order",
			change: func(s *job.Spec) {
				s.Key.Role, s.Key.Name = "", "X"
				s.Type = ""
				s.Instances = -1
				s.Task.Command = nil
				s.Task.Resources = job.Resources{}
				s.Constraints = []job.Constraint{{Operator: "=="}}
				s.Retry.Backoff = time.Hour
			},
			want: []string{
				"job", "job", "type", "instances", "task.command",
				"task.resources.cpu", "task.resources.memory",
				"constraints[0].attribute", "constraints[0].operator", "retry.backoff",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := validSpec(tt.change)
			err := s.Validate()
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Empty(t, cmp.Diff(tt.want, fields(t, err)))
			if tt.msg != "" {
				var fe *job.FieldError
				require.True(t, errors.As(err, &fe))
				require.Contains(t, fe.Msg, tt.msg)
			}
		})
	}
}

func TestValidateDoesNotChangeSpec(t *testing.T) {
	t.Parallel()
	s := validSpec(func(s *job.Spec) { s.Instances = 0 })
	before := validSpec(func(s *job.Spec) { s.Instances = 0 })
	require.Error(t, s.Validate())
	require.Empty(t, cmp.Diff(before, s))
}

func TestParseKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want job.Key
		err  string // part of the error; "" means valid
	}{
		{in: "demo/dev/hello", want: job.Key{Role: "demo", Env: "dev", Name: "hello"}},
		{in: "a/b/c", want: job.Key{Role: "a", Env: "b", Name: "c"}},
		{in: "web-1/prod.eu/etl_nightly", want: job.Key{Role: "web-1", Env: "prod.eu", Name: "etl_nightly"}},
		{in: "0/0/0", want: job.Key{Role: "0", Env: "0", Name: "0"}},
		{in: strings.Repeat("a", 63) + "/b/c", want: job.Key{Role: strings.Repeat("a", 63), Env: "b", Name: "c"}},
		{in: "", err: "must be ROLE/ENV/NAME"},
		{in: "demo/dev", err: "must be ROLE/ENV/NAME"},
		{in: "demo/dev/hello/x", err: "must be ROLE/ENV/NAME"},
		{in: "Demo/dev/hello", err: `role "Demo"`},
		{in: "demo//hello", err: `env ""`},
		{in: "demo/dev/-hello", err: `name "-hello"`},
		{in: "demo/dev/hel lo", err: `name "hel lo"`},
		{in: "demo/dev/" + strings.Repeat("a", 64), err: "name"},
		{in: "../dev/hello", err: "role"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := job.ParseKey(tt.in)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				require.Equal(t, job.Key{}, got)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			require.Equal(t, tt.in, got.String())
		})
	}
}

func TestRetryDelay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		backoff time.Duration
		n       int
		want    time.Duration
	}{
		{"first retry waits the backoff", time.Second, 1, time.Second},
		{"second doubles", time.Second, 2, 2 * time.Second},
		{"third doubles again", time.Second, 3, 4 * time.Second},
		{"tenth", time.Second, 10, 512 * time.Second},
		{"eleventh hits the cap", time.Second, 11, job.MaxBackoff},
		{"far past the cap does not overflow", time.Second, 1000, job.MaxBackoff},
		{"doubling past the cap is capped", 7 * time.Minute, 2, job.MaxBackoff},
		{"backoff at the cap", job.MaxBackoff, 1, job.MaxBackoff},
		{"zero backoff stays zero", 0, 5, 0},
		{"n zero is the backoff", 3 * time.Second, 0, 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, job.Retry{Attempts: 3, Backoff: tt.backoff}.Delay(tt.n))
		})
	}
}

func TestConstraintMatches(t *testing.T) {
	t.Parallel()
	attrs := map[string]string{"os": "linux", "zone": "", "arch": "amd64"}
	tests := []struct {
		name string
		c    job.Constraint
		want bool
	}{
		{"equal, same value", job.Constraint{Attribute: "os", Operator: job.OpEqual, Value: "linux"}, true},
		{"equal, other value", job.Constraint{Attribute: "os", Operator: job.OpEqual, Value: "darwin"}, false},
		{"equal, missing attribute", job.Constraint{Attribute: "gpu", Operator: job.OpEqual, Value: "true"}, false},
		{"equal empty, missing attribute", job.Constraint{Attribute: "gpu", Operator: job.OpEqual, Value: ""}, false},
		{"equal empty, empty attribute", job.Constraint{Attribute: "zone", Operator: job.OpEqual, Value: ""}, true},
		{"equal is case sensitive", job.Constraint{Attribute: "os", Operator: job.OpEqual, Value: "Linux"}, false},
		{"not equal, same value", job.Constraint{Attribute: "os", Operator: job.OpNotEqual, Value: "linux"}, false},
		{"not equal, other value", job.Constraint{Attribute: "os", Operator: job.OpNotEqual, Value: "darwin"}, true},
		{"not equal, missing attribute", job.Constraint{Attribute: "gpu", Operator: job.OpNotEqual, Value: "true"}, true},
		{"not equal empty, empty attribute", job.Constraint{Attribute: "zone", Operator: job.OpNotEqual, Value: ""}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, tt.c.Matches(attrs))
		})
	}
	t.Run("nil attributes", func(t *testing.T) {
		t.Parallel()
		require.False(t, job.Constraint{Attribute: "os", Operator: job.OpEqual, Value: "linux"}.Matches(nil))
		require.True(t, job.Constraint{Attribute: "os", Operator: job.OpNotEqual, Value: "linux"}.Matches(nil))
	})
}

func TestResources(t *testing.T) {
	t.Parallel()
	free := job.Resources{CPU: 1000, Memory: 1 << 30}
	tests := []struct {
		name string
		r    job.Resources
		fits bool
	}{
		{"smaller", job.Resources{CPU: 100, Memory: 64 << 20}, true},
		{"exactly", free, true},
		{"cpu over", job.Resources{CPU: 1001, Memory: 1}, false},
		{"memory over", job.Resources{CPU: 1, Memory: 1<<30 + 1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.fits, tt.r.Fits(free))
		})
	}
	r := job.Resources{CPU: 250, Memory: 64 << 20}
	require.Equal(t, job.Resources{CPU: 1250, Memory: 1<<30 + 64<<20}, free.Add(r))
	require.Equal(t, free, free.Add(r).Sub(r))
	require.Equal(t, job.Resources{CPU: -250, Memory: -64 << 20}, job.Resources{}.Sub(r))
}

func TestJobStateIsTerminal(t *testing.T) {
	t.Parallel()
	require.False(t, job.Running.IsTerminal())
	for _, s := range []job.State{job.Succeeded, job.Failed, job.Killed} {
		require.True(t, s.IsTerminal(), s)
	}
}

func TestValidName(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"a", "0", "node-1", "n.o_d-e", strings.Repeat("x", 63)} {
		require.True(t, job.ValidName(ok), "%q", ok)
	}
	for _, bad := range []string{"", "-a", ".a", "_a", "A", "a b", "a/b", "é", strings.Repeat("x", 64), "a\n"} {
		require.False(t, job.ValidName(bad), "%q", bad)
	}
}
