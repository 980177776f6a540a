package template_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/template"
)

func TestValues(t *testing.T) {
	t.Parallel()
	s := template.Spec{Key: job.Key{Role: "etl", Env: "prod", Name: "nightly"}, Inputs: []template.Input{
		{Name: "date", Required: true}, {Name: "table", Default: "events", HasDefault: true},
	}}
	for _, c := range []struct {
		name string
		set  map[string]string
		want map[string]string
		errs []string
	}{
		{name: "defaults", set: map[string]string{"date": "d"}, want: map[string]string{"date": "d", "table": "events"}},
		{name: "override", set: map[string]string{"date": "d", "table": ""}, want: map[string]string{"date": "d", "table": ""}},
		{name: "missing required", set: nil, errs: []string{
			`inputs.date: input "date" is required by template etl/prod/nightly: give it with --set date=VALUE`}},
		{name: "unknown and missing, all at once", set: map[string]string{"tabel": "x", "zz": "y"}, errs: []string{
			`inputs.tabel: template etl/prod/nightly declares no input "tabel" (it declares: date, table)`,
			`inputs.zz: template etl/prod/nightly declares no input "zz" (it declares: date, table)`,
			`inputs.date: input "date" is required by template etl/prod/nightly: give it with --set date=VALUE`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := s.Values(c.set)
			if c.errs != nil {
				require.Error(t, err)
				var fe *job.FieldError
				require.ErrorAs(t, err, &fe)
				for _, e := range c.errs {
					require.ErrorContains(t, err, e)
				}
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.want, got)
		})
	}
}

func TestValidInputName(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{"date": true, "_x1": true, "Date_2": true, "": false, "1x": false, "a-b": false, "a.b": false} {
		require.Equal(t, want, template.ValidInputName(name), name)
	}
}
