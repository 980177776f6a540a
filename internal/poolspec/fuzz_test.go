package poolspec_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/poolspec"
)

// FuzzParse checks that Parse never panics, that each field error it
// returns names a field, that every pool it returns is valid, and that
// Format writes a file, as YAML or JSON, that parses back to the same pool
// byte for byte in its node spec.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join(examplesDir, "*.yaml"))
	require.NoError(f, err)
	for _, name := range files {
		data, err := os.ReadFile(name)
		require.NoError(f, err)
		f.Add(data)
	}
	for _, seed := range []string{
		`{"pool":"a","provider":"local","max":1,"policy":{"fixed":{"size":1}}}`,
		`{"pool":"a","provider":"ec2","max":2,"policy":{"queue":{"high_water":1}},"node":{"u":"\u2028\/","n":1e3,"b":18446744073709551615}}`,
		"pool: a\nprovider: ssh\nmax: 2\npolicy: {schedule: {cron: '@daily', size: 1, duration: 1h}}\nnode: {hosts: [{address: h, port: 22}], x: !!binary /w==}\n",
		"pool: a\nprovider: local\nmax: 2\npolicy: {queue: {high_water: 1}}\nnode: &n {a: 1}\ncapabilities: {<<: *n}\n",
		"pool: a\nprovider: local\nmax: 2\npolicy: {queue: {high_water: 1}}\nnode: {a: 2001-12-14, b: 0x10, c: 1.0, d: ~, e: .inf}\n",
		"pool: a\nprovider: local\nmax: x\npolicy: {fixed: {}, queue: {}}\ncooldown: {up: 1, down: -1s}\n",
		"",
		"[]",
		"~",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := poolspec.Parse(data)
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
		require.NoError(t, p.Validate())
		spec := poolspec.Format(p)
		y, err := yaml.Marshal(spec)
		require.NoError(t, err)
		j, err := json.Marshal(spec)
		require.NoError(t, err)
		for _, doc := range [][]byte{y, j} {
			got, err := poolspec.Parse(doc)
			require.NoError(t, err, "%s", doc)
			require.Empty(t, cmp.Diff(p, got), "%s", doc)
		}
	})
}
