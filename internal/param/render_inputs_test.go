package param_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/param"
)

func TestRenderInputs(t *testing.T) {
	t.Parallel()
	inputs := map[string]string{"date": "2026-11-21", "table": "{{ .Params.pw }}", "evil": "$(id); echo"}
	for _, c := range []struct {
		name    string
		command []string
		env     map[string]string
		inputs  map[string]string
		want    []string
		wantEnv map[string]string
		err     string
	}{
		{name: "inputs and params in one pass", command: []string{"load", "{{ .Inputs.date }}@{{ .Params.db_host }}", "{{.Params.pw}}"},
			env: map[string]string{"D": "{{ .Inputs.date }}"}, inputs: inputs,
			want: []string{"load", "2026-11-21@db.internal", "⟦secret:pw⟧"}, wantEnv: map[string]string{"D": "2026-11-21"}},
		{name: "a value is never read as a reference", command: []string{"echo", "{{ .Inputs.table }}"}, inputs: inputs,
			want: []string{"echo", "{{ .Params.pw }}"}},
		{name: "injection stays one element", command: []string{"echo", "{{ .Inputs.evil }}"}, inputs: inputs, want: []string{"echo", "$(id); echo"}},
		{name: "index", command: []string{`{{ index .Inputs "date" }}`}, inputs: inputs, want: []string{"2026-11-21"}},
		{name: "undeclared input", command: []string{"echo", "{{ .Inputs.tabel }}"}, inputs: inputs,
			err: `task.command[1]: input "tabel" is not declared by the template`},
		{name: "undeclared input by index", env: map[string]string{"X": `{{ index .Inputs "nope" }}`}, command: []string{"x"}, inputs: inputs,
			err: `task.env.X: input "nope" is not declared by the template`},
		{name: "missing parameter", command: []string{"{{ .Inputs.date }}", "{{ .Params.nope }}"}, inputs: inputs,
			err: `task.command[1]: parameter "nope" is not set for role analytics`},
		{name: "unknown name", command: []string{"{{ .Input.date }}"}, inputs: inputs,
			err: `task.command[0]: refers to .Input: only .Params.NAME and .Inputs.NAME are known`},
		{name: "a marker in an input", command: []string{"{{ .Inputs.m }}"}, inputs: map[string]string{"m": "⟦secret:pw⟧"},
			err: `inputs.m: must not contain "⟦secret:"`},
		{name: "no inputs", command: []string{"{{ .Inputs.date }}"}, inputs: nil,
			err: `task.command[0]: input "date" is not declared by the template`},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := param.RenderInputs(spec(c.command, c.env), params(), c.inputs)
			if c.err != "" {
				require.ErrorContains(t, err, c.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.want, got.Task.Command)
			require.Equal(t, c.wantEnv, got.Task.Env)
		})
	}
}

// TestRenderRefusesInputs: a job that is not a template's cannot refer to
// inputs.
func TestRenderRefusesInputs(t *testing.T) {
	t.Parallel()
	_, err := param.Render(spec([]string{"{{ .Inputs.date }}"}, nil), params())
	require.ErrorContains(t, err, "task.command[0]: refers to .Inputs: only a template's job can")
}
