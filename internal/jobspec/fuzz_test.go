package jobspec

import (
	"errors"
	"os"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/job"
)

// FuzzParse checks that Parse never panics, that each field error it
// returns names a field, that every spec it returns is valid, and that
// Format writes a document that parses back to the same specs.
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile("../../examples/hello.yaml")
	require.NoError(f, err)
	for _, seed := range []string{
		string(example),
		`{"job":"a/b/c","task":{"command":["true"]}}`,
		`[{"job":"a\/b\/c","task":{"command":["\ud83d\ude00","\u0085"],"env":{"A":"\n"}},"retry":{"attempts":0}}]`,
		"job: a/b/c\ntask:\n  command: [x, ' y', \"\\n\"]\n  env:\n    A: |\n      multi\n      line\n  resources: {memory: 1.5GiB}\n",
		"- {job: a/b/c, task: {command: [x]}}\n- {job: a/b/d, task: {command: [y], timeout: 1m}}\n",
		"- &j {job: a/b/c, task: {command: [x], env: {A: b}}}\n- {<<: *j, job: a/b/d}\n",
		"job: a/b/c\ntask:\n  command: [x]\n  timeot: 30s\n",
		"job: a/b\ntask: {command: [], timeout: 30x, resources: {memory: 12QB, cpu: 0}}\ninstances: 0\n",
		"job: a/b/c\ntask: {command: [x]}\nconstraints: [{attribute: os, operator: '>', value: x}]\n",
		"job: a/b/c\ntask: {command: [x]\n",
		"job: a/b/c\ntask: {command: [x, !!binary /w==]}\n",
		"",
		"~",
		"[]",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		specs, err := Parse(data)
		if err != nil {
			require.Nil(t, specs)
			for _, e := range job.Unjoin(err) {
				var fe *job.FieldError
				if errors.As(e, &fe) {
					require.NotEmpty(t, fe.Field, "%v", fe)
					require.NotContains(t, fe.Msg, "(line 0)")
				}
			}
			return
		}
		require.NotEmpty(t, specs)
		for _, s := range specs {
			require.NoError(t, s.Validate())
		}
		requireRoundTrip(t, specs)
	})
}

// FuzzParseSize checks that every size ParseSize accepts is one that
// formatSize writes back to the same number of bytes.
func FuzzParseSize(f *testing.F) {
	for _, seed := range []string{"64MiB", "1.5G", "1048576", "0.5", "9223372036854775807", "-1", "1e9", ".K"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			return
		}
		require.GreaterOrEqual(t, n, int64(0))
		back, err := ParseSize(formatSize(n))
		require.NoError(t, err)
		require.Equal(t, n, back)
	})
}

// FuzzFormat checks the round trip from the other side: any valid spec,
// whatever its strings hold, formats to a document that parses back to it.
// FuzzParse rarely mutates its way to a valid document, so it cannot show
// this for strings that YAML must quote or escape.
func FuzzFormat(f *testing.F) {
	f.Add("sh", "-c echo $X", "GREETING", "hi", "os", "linux", int64(30e9), int64(64<<20), 2, int64(1e9))
	f.Add("~", "null", "<<", "multi\nline", "a: b", "# c", int64(0), int64(5e9), 0, int64(0))
	f.Add("\u2028", "\ufeffx", "k\u0085", " lead", "'", "\"", int64(1), int64(1<<20+1), 100, int64(1))
	f.Fuzz(func(t *testing.T, arg0, arg1, envKey, envVal, attr, val string, timeout, memory int64, attempts int, backoff int64) {
		spec := newSpec(func(s *job.Spec) {
			s.Task.Command = []string{arg0, arg1}
			s.Task.Env = map[string]string{envKey: envVal}
			s.Task.Timeout = time.Duration(timeout)
			s.Task.Resources.Memory = memory
			s.Constraints = []job.Constraint{{Attribute: attr, Operator: job.OpNotEqual, Value: val}}
			s.Retry = job.Retry{Attempts: attempts, Backoff: time.Duration(backoff)}
		})
		for _, s := range []string{arg0, arg1, envKey, envVal, attr, val} {
			if !utf8.ValidString(s) {
				return // Parse refuses these; see toSpec
			}
		}
		if spec.Validate() != nil {
			return
		}
		requireRoundTrip(t, []job.Spec{spec})
	})
}
