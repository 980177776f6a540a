package secret_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/secret"
)

// TestNeverShown prints a secret every way Go prints values, and greps
// for it.
func TestNeverShown(t *testing.T) {
	t.Parallel()
	const value = "hunter2-very-secret"
	s := secret.New(value)
	type holder struct {
		Token secret.String `json:"token"`
		Name  string
	}
	h := holder{Token: s, Name: "x"}
	var out []string
	for _, f := range []string{"%s", "%v", "%+v", "%#v", "%q", "%x", "%d"} {
		out = append(out, fmt.Sprintf(f, s), fmt.Sprintf(f, h), fmt.Sprintf(f, &h))
	}
	j, err := json.Marshal(h)
	require.NoError(t, err)
	out = append(out, string(j))
	out = append(out, fmt.Errorf("wrap: %v", s).Error(), errors.New(s.String()).Error())
	var logs bytes.Buffer
	lg := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	lg.Debug("x", "token", s, "holder", h)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("y", "token", s)
	out = append(out, logs.String())
	for _, o := range out {
		require.NotContains(t, o, value)
	}
	require.Contains(t, strings.Join(out, ""), secret.Redacted)
	require.Equal(t, value, s.Reveal())
}
