package scheduler

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/drover-dev/drover/internal/event"
	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/store"
)

// Retention defaults.
const (
	DefaultKeepRunsFor = 30 * 24 * time.Hour
	DefaultKeepRuns    = 0 // no count limit
)

// Retention says how long ended runs are kept: those that ended more than
// KeepFor ago (0: no age limit) and those beyond the newest KeepRuns of
// their job (0: no count limit) are removed, with their tasks, their
// events and (by the caller) their logs. Each job's newest run is always
// kept, so its status still says how it last ended.
type Retention struct {
	KeepFor  time.Duration
	KeepRuns int
}

func (r Retention) String() string {
	var parts []string
	if r.KeepFor > 0 {
		parts = append(parts, fmt.Sprintf("older than %s", r.KeepFor))
	}
	if r.KeepRuns > 0 {
		parts = append(parts, fmt.Sprintf("beyond the newest %d", r.KeepRuns))
	}
	return strings.Join(parts, " or ")
}

// Prune removes the ended runs retention no longer keeps, one job per
// transaction. It returns how many runs it removed and the IDs of their
// tasks, whose logs the caller removes.
func (s *Scheduler) Prune(ctx context.Context, r Retention) (int, []string, error) {
	if r.KeepFor <= 0 && r.KeepRuns <= 0 {
		return 0, nil, nil
	}
	var keys []job.Key
	err := s.store.View(ctx, func(rd store.Reader) error {
		js, err := rd.ListJobs(ctx)
		for _, j := range js {
			keys = append(keys, j.Key)
		}
		return err
	})
	if err != nil {
		return 0, nil, err
	}
	removed := 0
	var tasks []string
	for _, k := range keys {
		var n int
		var ids []string
		err := s.store.Update(ctx, func(tx store.Tx) error {
			n, ids = 0, nil
			runs, err := tx.ListRuns(ctx, store.RunFilter{Job: k})
			if err != nil {
				return err
			}
			now := s.clock.Now()
			var gone []int
			for i, run := range runs {
				if i == 0 || run.Active() {
					continue // newest first: the newest stays
				}
				old := r.KeepFor > 0 && !run.FinishedAt.IsZero() && now.Sub(run.FinishedAt) > r.KeepFor
				many := r.KeepRuns > 0 && i >= r.KeepRuns
				if !old && !many {
					continue
				}
				t, err := tx.DeleteRun(ctx, k, run.Number)
				if err != nil {
					return err
				}
				ids = append(ids, t...)
				gone = append(gone, run.Number)
			}
			if len(gone) == 0 {
				return nil
			}
			n = len(gone)
			return tx.InsertEvents(ctx, event.Event{At: now, Job: k.String(), Reason: event.RunsRemoved,
				Message: fmt.Sprintf("retention removed %d ended runs (%s): %s", n, r, runList(gone))})
		})
		if err != nil {
			return removed, tasks, fmt.Errorf("prune runs of %s: %w", k, err)
		}
		removed += n
		tasks = append(tasks, ids...)
	}
	return removed, tasks, nil
}

// runList writes run numbers, newest first, as "9, 8, 7".
func runList(ns []int) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = fmt.Sprint(n)
	}
	return strings.Join(parts, ", ")
}
