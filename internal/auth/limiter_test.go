package auth_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/auth"
)

func TestLimiter(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	l := auth.NewLimiter(3, time.Minute)
	l.Now = func() time.Time { return now }
	at := func(d time.Duration) { now = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC).Add(d) }

	// Three failures within the window, spread out: the key is refused.
	for _, d := range []time.Duration{0, 10 * time.Second, 20 * time.Second} {
		at(d)
		require.True(t, l.Allowed("alice"))
		l.Failed("alice")
	}
	at(30 * time.Second)
	require.False(t, l.Allowed("alice"))
	require.True(t, l.Allowed("bob"), "keys are apart")

	// A minute after the first failure it leaves the window, and one more
	// try is allowed; failing it closes the door again.
	at(time.Minute - time.Nanosecond)
	require.False(t, l.Allowed("alice"))
	at(time.Minute)
	require.True(t, l.Allowed("alice"))
	l.Failed("alice")
	require.False(t, l.Allowed("alice"))

	// Once every failure has left the window, the key is clean.
	at(10 * time.Minute)
	require.True(t, l.Allowed("alice"))
	l.Failed("alice")
	l.Failed("alice")
	require.True(t, l.Allowed("alice"))

	// A success forgets the failures.
	l.Failed("alice")
	require.False(t, l.Allowed("alice"))
	l.Reset("alice")
	require.True(t, l.Allowed("alice"))
	l.Reset("nobody")
}

func TestLimiterConcurrent(t *testing.T) {
	t.Parallel()
	l := auth.NewLimiter(1000, time.Hour)
	done := make(chan struct{})
	for range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 100 {
				l.Failed("k")
				l.Allowed("k")
			}
		}()
	}
	for range 8 {
		<-done
	}
	require.True(t, l.Allowed("k"), "800 of 1000")
	for range 200 {
		l.Failed("k")
	}
	require.False(t, l.Allowed("k"))
}
