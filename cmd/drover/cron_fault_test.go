package main

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestFaultCronKill9AtMostOnce kills the server with SIGKILL again and
// again at random moments while a schedule fires every second, and checks
// the store: no scheduled time made two runs, and every scheduled time from
// the first to the last has exactly one decision (fired, or missed while
// the server was down), so none was lost either.
func TestFaultCronKill9AtMostOnce(t *testing.T) {
	fc := newFaultCluster(t, "127.0.0.1", 3*time.Second)
	fc.startServer()
	fc.startAgent("a1", agentOpts{})
	fc.submit(fmt.Sprintf(`job: fault/cron/tick
schedule: {cron: "@every 1s", overlap: allow}
task:
  command: [sh, -c, 'echo "$DROVER_SCHEDULED_AT" >> "$OUT/ticks"']
  env: {OUT: %q}
  resources: {cpu: 50, memory: 1MiB}
retry: {attempts: 0}
`, fc.out))

	db, err := sql.Open("sqlite", "file:"+filepath.Join(fc.dir, "server", "drover.db")+"?mode=ro")
	require.NoError(t, err)
	defer db.Close()
	count := func(q string, args ...any) int {
		t.Helper()
		var n int
		require.NoError(t, db.QueryRow(q, args...).Scan(&n))
		return n
	}
	fires := func() int { return count(`SELECT COUNT(*) FROM schedule_fires WHERE job_key = 'fault/cron/tick'`) }

	const rounds = 8
	for i := range rounds {
		before := fires()
		fc.waitFor(faultWait, "the schedule fires", func() (bool, string) {
			n := fires()
			return n > before, fmt.Sprintf("%d fires", n)
		})
		// A random moment within the next two seconds: before, during or
		// after a fire's transaction.
		time.Sleep(time.Duration(rand.IntN(2000)) * time.Millisecond)
		fc.server.kill9(t)
		t.Logf("round %d: killed the server after %d fire decisions", i+1, fires())
		fc.startServer()
	}
	before := fires()
	fc.waitFor(faultWait, "the schedule fires after the last restart", func() (bool, string) {
		n := fires()
		return n >= before+2, fmt.Sprintf("%d fires", n)
	})
	fc.server.kill9(t)

	dup := count(`SELECT COUNT(*) FROM (SELECT scheduled_at FROM runs WHERE job_key = 'fault/cron/tick'
		AND trigger = 'schedule' GROUP BY scheduled_at HAVING COUNT(*) > 1)`)
	require.Zero(t, dup, "a scheduled time made more than one run")
	var first, last int64
	require.NoError(t, db.QueryRow(`SELECT MIN(at), MAX(at) FROM schedule_fires WHERE job_key = 'fault/cron/tick'`).Scan(&first, &last))
	span := int((last-first)/int64(time.Second)) + 1
	require.Equal(t, span, fires(), "every second from the first fire to the last has exactly one decision")
	fired := count(`SELECT COUNT(*) FROM schedule_fires WHERE job_key = 'fault/cron/tick' AND outcome = 'fired'`)
	runs := count(`SELECT COUNT(*) FROM runs WHERE job_key = 'fault/cron/tick' AND trigger = 'schedule'`)
	require.Equal(t, fired, runs, "each fired decision made exactly one run")
	missed := count(`SELECT COUNT(*) FROM schedule_fires WHERE job_key = 'fault/cron/tick' AND outcome = 'missed'`)
	t.Logf("%d scheduled times over %d kills: %d fired, %d missed while the server was down", span, rounds, fired, missed)
}
