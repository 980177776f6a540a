package server_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/api"
)

// TestS15OneTokenCannotFlood: past its burst, a token's changing calls get
// 429 with Retry-After and change nothing, while its reads and other
// tenants' calls go on.
func TestS15OneTokenCannotFlood(t *testing.T) {
	t.Parallel()
	w := newWorld(t, func(c *worldConfig) { c.writeRate, c.writeBurst = 0.001, 5 })
	a, b := w.tok[whoTeamA], w.tok[whoTeamB]
	ok, limited := 0, 0
	for range 8 {
		req := w.request(t, a, "POST", "/v1/jobs/"+jobA+"/kill", "")
		rec := w.serve(req)
		switch rec.Code {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
			limited++
			require.NotEmpty(t, rec.Header().Get("Retry-After"))
			var e api.Error
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &e))
			require.Contains(t, e.Error, "too many changing calls from this token")
		default:
			t.Fatalf("kill: %d %s", rec.Code, rec.Body.String())
		}
	}
	require.Equal(t, 5, ok, "the burst goes through")
	require.Equal(t, 3, limited, "then 429")

	// A refused submission stores nothing.
	w.must(t, a, "POST", "/v1/jobs", jobJSON("team-a/prod/late", 1), http.StatusTooManyRequests)
	require.False(t, w.hasJob(t, "team-a/prod/late"))
	// Reads go on; so do other tenants.
	w.must(t, a, "GET", "/v1/jobs/"+jobA, "", http.StatusOK)
	w.must(t, b, "POST", "/v1/jobs/"+jobB+"/kill", "", http.StatusOK)
}
