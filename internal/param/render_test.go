package param_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/param"
	"github.com/drover-dev/drover/internal/secret"
)

func spec(command []string, env map[string]string) job.Spec {
	return job.Spec{Key: job.Key{Role: "analytics", Env: "prod", Name: "etl"}, Task: job.TaskSpec{Command: command, Env: env}}
}

func params() map[string]param.Param {
	return map[string]param.Param{
		"db_host":     {Role: "analytics", Name: "db_host", Value: secret.New("db.internal")},
		"pw":          {Role: "analytics", Name: "pw", Value: secret.New("hunter2"), Secret: true},
		"evil":        {Role: "analytics", Name: "evil", Value: secret.New("; rm -rf / $(id)")},
		"dashed-name": {Role: "analytics", Name: "dashed-name", Value: secret.New("ok")},
	}
}

func TestRender(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		command []string
		env     map[string]string
		want    []string
		wantEnv map[string]string
		err     string
	}{
		{name: "plain", command: []string{"echo", "hi"}, want: []string{"echo", "hi"}},
		{name: "value", command: []string{"psql", "-h", "{{ .Params.db_host }}"}, want: []string{"psql", "-h", "db.internal"}},
		{name: "secret is a marker", command: []string{"login", "{{.Params.pw}}"}, env: map[string]string{"PW": "x{{ .Params.pw }}"},
			want: []string{"login", "⟦secret:pw⟧"}, wantEnv: map[string]string{"PW": "x⟦secret:pw⟧"}},
		{name: "injection stays one element", command: []string{"echo", "{{ .Params.evil }}"}, want: []string{"echo", "; rm -rf / $(id)"}},
		{name: "index", command: []string{"echo", `{{ index .Params "dashed-name" }}`}, want: []string{"echo", "ok"}},
		{name: "missing", command: []string{"a", "b", "{{ .Params.nope }}"}, err: `task.command[2]: parameter "nope" is not set for role analytics`},
		{name: "missing by index", command: []string{"a", `{{ index .Params "nope" }}`}, err: `task.command[1]: parameter "nope" is not set for role analytics`},
		{name: "missing in env", command: []string{"a"}, env: map[string]string{"X": "{{ .Params.nope }}"}, err: `task.env.X: parameter "nope" is not set for role analytics`},
		{name: "syntax", command: []string{"a", "{{ .Params.x "}, err: `task.command[1]: bad parameter reference`},
		{name: "other data", command: []string{"a", "{{ .Foo }}"}, err: `task.command[1]: refers to .Foo`},
		{name: "hand-written marker", command: []string{"a", "⟦secret:pw⟧"}, err: `task.command[1]: must not contain`},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := param.Render(spec(c.command, c.env), params())
			if c.err != "" {
				require.ErrorContains(t, err, c.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.want, got.Task.Command)
			if c.wantEnv != nil {
				require.Equal(t, c.wantEnv, got.Task.Env)
			}
		})
	}
}

func TestReveal(t *testing.T) {
	t.Parallel()
	ps := params()
	s, err := param.Render(spec([]string{"login", "{{ .Params.pw }}", "{{ .Params.db_host }}"}, map[string]string{"PW": "{{ .Params.pw }}"}), ps)
	require.NoError(t, err)
	require.True(t, param.HasMarker(s.Task))
	got, missing := param.Reveal(s.Task, func(n string) (param.Param, bool) { p, ok := ps[n]; return p, ok })
	require.Empty(t, missing)
	require.Equal(t, []string{"login", "hunter2", "db.internal"}, got.Command)
	require.Equal(t, "hunter2", got.Env["PW"])
	require.Equal(t, "⟦secret:pw⟧", s.Task.Command[1], "the spec itself is not changed")

	_, missing = param.Reveal(s.Task, func(string) (param.Param, bool) { return param.Param{}, false })
	require.Equal(t, []string{"pw"}, missing)
}

func TestValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, param.Param{Role: "a", Name: "b", Value: secret.New("v")}.Validate())
	require.Error(t, param.Param{Role: "A", Name: "b"}.Validate())
	require.Error(t, param.Param{Role: "a", Name: "-b"}.Validate())
	require.Error(t, param.Param{Role: "a", Name: "b", Value: secret.New("x⟦secret:y⟧")}.Validate())
}
