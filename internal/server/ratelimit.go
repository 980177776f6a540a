package server

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/drover-dev/drover/internal/auth"
)

// Defaults of the per-caller limit on calls that change something.
const (
	// DefaultWriteRate is the sustained rate of changing calls one caller
	// (a token, or a user's web session) may make, per second.
	DefaultWriteRate = 50
	// DefaultWriteBurst is how many it may make at once.
	DefaultWriteBurst = 200
	// maxLimiters bounds the callers remembered; past it the oldest half
	// are forgotten (they start again with a full burst).
	maxLimiters = 10000
)

// writeLimiter holds one token bucket per caller for the calls that
// change something (not GET or HEAD), so one token cannot flood the
// server (and the other tenants with it): past its burst it gets 429 with
// Retry-After. Agents are not limited: their one call is the sync, paced
// by the server itself.
type writeLimiter struct {
	rate  rate.Limit
	burst int

	mu   sync.Mutex
	by   map[string]*limiterEntry
	tick uint64
}

type limiterEntry struct {
	lim  *rate.Limiter
	used uint64
}

func newWriteLimiter(perSecond float64, burst int) *writeLimiter {
	if perSecond <= 0 {
		perSecond = DefaultWriteRate
	}
	if burst <= 0 {
		burst = DefaultWriteBurst
	}
	return &writeLimiter{rate: rate.Limit(perSecond), burst: burst, by: map[string]*limiterEntry{}}
}

// allow reports whether the caller may make a changing call now, and if
// not, how long until it may.
func (l *writeLimiter) allow(p *auth.Principal, r *http.Request, now time.Time) (bool, time.Duration) {
	if r.Method == http.MethodGet || r.Method == http.MethodHead || p.Kind != auth.UserKind {
		return true, 0
	}
	key := "user:" + p.Name
	if p.TokenID != "" {
		key = "token:" + p.TokenID
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tick++
	e, ok := l.by[key]
	if !ok {
		if len(l.by) >= maxLimiters {
			l.forgetOldest()
		}
		e = &limiterEntry{lim: rate.NewLimiter(l.rate, l.burst)}
		l.by[key] = e
	}
	e.used = l.tick
	res := e.lim.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

// limit answers 429 (and true) when the caller is past its limit.
func (s *Server) limit(w http.ResponseWriter, r *http.Request) bool {
	ok, d := s.writes.allow(principalOf(r), r, time.Now())
	if ok {
		return false
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(d.Seconds()))))
	s.writeError(w, r, &tooManyError{retry: d})
	return true
}

// forgetOldest drops the least recently used half of the buckets.
func (l *writeLimiter) forgetOldest() {
	used := make([]uint64, 0, len(l.by))
	for _, e := range l.by {
		used = append(used, e.used)
	}
	slices.Sort(used)
	cut := used[len(used)/2]
	for k, e := range l.by {
		if e.used < cut {
			delete(l.by, k)
		}
	}
}

// tooManyError answers a caller past its limit: 429, and when to retry.
type tooManyError struct{ retry time.Duration }

func (e *tooManyError) Error() string {
	return fmt.Sprintf("too many changing calls from this token: at most %d a second (bursts of %d); retry in %s",
		DefaultWriteRate, DefaultWriteBurst, e.retry.Round(time.Millisecond))
}
