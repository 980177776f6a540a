package scheduler_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/event"
	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/param"
	"github.com/drover-dev/drover/internal/scheduler"
	"github.com/drover-dev/drover/internal/secret"
	"github.com/drover-dev/drover/internal/store"
	"github.com/drover-dev/drover/internal/task"
)

// scheduled returns newSpec with a schedule, changed by opts.
func scheduled(cron string, opts ...func(*job.Schedule)) func(*job.Spec) {
	return func(s *job.Spec) {
		s.Schedule = &job.Schedule{Cron: cron, Overlap: job.OverlapForbid, CatchUp: job.CatchUpSkip, CatchUpLimit: 10}
		for _, o := range opts {
			o(s.Schedule)
		}
	}
}

func (b *bundle) fireDue(t *testing.T) {
	t.Helper()
	require.NoError(t, b.sched.FireDue(b.ctx))
}

func (b *bundle) runs(t *testing.T, key job.Key) []job.Run {
	t.Helper()
	var out []job.Run
	require.NoError(t, b.store.View(b.ctx, func(r store.Reader) error {
		var err error
		out, err = r.ListRuns(b.ctx, store.RunFilter{Job: key})
		return err
	}))
	// oldest first reads better in tests
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

func (b *bundle) fires(t *testing.T, key job.Key) []job.Fire {
	t.Helper()
	var out []job.Fire
	require.NoError(t, b.store.View(b.ctx, func(r store.Reader) error {
		var err error
		out, err = r.ListFires(b.ctx, key, 0)
		return err
	}))
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

func (b *bundle) reasons(t *testing.T, key job.Key, r event.Reason) []string {
	t.Helper()
	var out []string
	for _, e := range b.events(t, store.EventFilter{Job: key.String(), Reason: string(r)}) {
		out = append(out, e.Message)
	}
	return out
}

// runTasks ends every unfinished task of the job with exit code code, as
// node n1 reports it.
func (b *bundle) finishAll(t *testing.T, key job.Key, code int) {
	t.Helper()
	b.sync(t, "n1")
	b.placeOnce(t)
	var sts []scheduler.Status
	for _, tk := range b.tasks(t, key) {
		if !tk.State.IsTerminal() {
			sts = append(sts, exited(tk.ID, code))
		}
	}
	b.sync(t, "n1", sts...)
}

func TestScheduleSetMakesNoRun(t *testing.T) {
	t.Parallel()
	b := setup(t)
	res := b.submit(t, newSpec(scheduled("0 2 * * *", func(s *job.Schedule) { s.TimeZone = "Europe/Amsterdam" })), "")

	require.True(t, res.Created)
	require.Zero(t, res.Run)
	require.Empty(t, res.Tasks)
	require.NotNil(t, res.Schedule)
	// t0 is 2030-03-04 05:06:07Z, 06:06 in Amsterdam: the next 02:00 there is
	// the next day, 01:00Z.
	require.Equal(t, time.Date(2030, 3, 5, 1, 0, 0, 0, time.UTC), res.Next.UTC())
	require.Equal(t, job.Scheduled, b.job(t, hello).State)
	require.Empty(t, b.tasks(t, hello))
	b.fireDue(t)
	require.Empty(t, b.runs(t, hello), "nothing is due yet")

	// Submitting it again changes nothing but the record of it.
	again := b.submit(t, newSpec(scheduled("0 2 * * *", func(s *job.Schedule) { s.TimeZone = "Europe/Amsterdam" })), "")
	require.Equal(t, 1, again.Version)
}

func TestScheduleFiresOnceAtItsTime(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.submit(t, newSpec(scheduled("0 6 * * *")), "")
	at := time.Date(2030, 3, 4, 6, 0, 0, 0, time.UTC)

	b.clock.Set(at.Add(-time.Millisecond))
	b.fireDue(t)
	require.Empty(t, b.runs(t, hello))

	b.clock.Set(at.Add(300 * time.Millisecond)) // the loop ticks a little late
	b.fireDue(t)
	b.fireDue(t)
	b.clock.Advance(time.Hour)
	b.fireDue(t)

	runs := b.runs(t, hello)
	require.Len(t, runs, 1)
	require.Equal(t, job.BySchedule, runs[0].Trigger)
	require.True(t, runs[0].ScheduledAt.Equal(at))
	require.Equal(t, job.Running, runs[0].State)
	require.Len(t, b.tasks(t, hello), 1)
	fires := b.fires(t, hello)
	require.Len(t, fires, 1)
	require.Equal(t, job.Fired, fires[0].Outcome)
	require.Equal(t, 1, fires[0].Run)
	require.Equal(t, job.Running, b.job(t, hello).State)

	// A restarted scheduler on the same store does not fire it again.
	s2 := newScheduler(t, b.store, b.clock, "again")
	require.NoError(t, s2.FireDue(b.ctx))
	require.Len(t, b.runs(t, hello), 1)

	// The run ends; the job's state follows it; the next day fires run 2.
	b.finishAll(t, hello, 0)
	require.Equal(t, job.Succeeded, b.job(t, hello).State)
	b.clock.Set(at.Add(24 * time.Hour))
	b.fireDue(t)
	require.Len(t, b.runs(t, hello), 2)
}

func TestOverlapPolicies(t *testing.T) {
	t.Parallel()
	t.Run("forbid skips while a run is active", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.submit(t, newSpec(scheduled("* * * * *")), "")
		b.clock.Set(time.Date(2030, 3, 4, 5, 7, 0, 0, time.UTC))
		b.fireDue(t)
		b.clock.Advance(time.Minute)
		b.fireDue(t)

		require.Len(t, b.runs(t, hello), 1)
		fires := b.fires(t, hello)
		require.Len(t, fires, 2)
		require.Equal(t, job.SkippedOverlap, fires[1].Outcome)
		require.Equal(t, []string{"the fire for 2030-03-04T05:08:00Z was skipped: run 1 is still RUNNING (overlap forbid)"},
			b.reasons(t, hello, event.ScheduleSkipped))

		// The forbid holds across a restart: it reads the runs, not memory.
		b.sched = newScheduler(t, b.store, b.clock, "second")
		b.clock.Advance(time.Minute)
		b.fireDue(t)
		require.Len(t, b.runs(t, hello), 1)

		b.finishAll(t, hello, 0)
		b.clock.Advance(time.Minute)
		b.fireDue(t)
		require.Len(t, b.runs(t, hello), 2, "fires again once the run ended")
	})
	t.Run("allow runs beside", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.submit(t, newSpec(scheduled("* * * * *", func(s *job.Schedule) { s.Overlap = job.OverlapAllow })), "")
		b.clock.Set(time.Date(2030, 3, 4, 5, 7, 0, 0, time.UTC))
		b.fireDue(t)
		b.clock.Advance(time.Minute)
		b.fireDue(t)
		runs := b.runs(t, hello)
		require.Len(t, runs, 2)
		require.True(t, runs[0].Active() && runs[1].Active())
		require.Len(t, b.tasks(t, hello), 2)
	})
	t.Run("replace kills first, across a restart", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.submit(t, newSpec(scheduled("* * * * *", func(s *job.Schedule) { s.Overlap = job.OverlapReplace })), "")
		b.clock.Set(time.Date(2030, 3, 4, 5, 7, 0, 0, time.UTC))
		b.fireDue(t)
		b.sync(t, "n1")
		b.placeOnce(t)
		first := b.tasks(t, hello)[0]
		b.sync(t, "n1", running(first.ID))

		b.clock.Advance(time.Minute)
		b.fireDue(t)
		runs := b.runs(t, hello)
		require.Len(t, runs, 2)
		require.Equal(t, job.Running, runs[0].State, "the old run ends when its task does")
		require.Equal(t, job.Waiting, runs[1].State)
		require.Len(t, b.tasks(t, hello), 1, "the new run has no task while the old one runs")
		require.True(t, b.task(t, first.ID).KillRequested)

		// The server restarts; the agent reports the kill done.
		b.sched = newScheduler(t, b.store, b.clock, "second")
		o := b.sync(t, "n1", running(first.ID))
		require.Len(t, o.Kill, 1)
		b.sync(t, "n1", status(first.ID, task.Killed))

		runs = b.runs(t, hello)
		require.Equal(t, job.Killed, runs[0].State)
		require.Equal(t, job.Running, runs[1].State)
		ts := b.tasks(t, hello)
		require.Len(t, ts, 2)
		require.Equal(t, 2, ts[1].Run)
		require.Equal(t, task.Pending, ts[1].State)
	})
}

func TestCatchUp(t *testing.T) {
	t.Parallel()
	// Hourly at :00 from 05:06; the server is down until 10:30: 06:00 to
	// 10:00 (five times) were missed.
	tests := []struct {
		policy job.CatchUp
		runs   []string // scheduled times of the runs made
		missed int
	}{
		{job.CatchUpSkip, nil, 5},
		{job.CatchUpLatest, []string{"10:00"}, 4},
		{job.CatchUpAll, []string{"09:00", "10:00"}, 3},
	}
	for _, tt := range tests {
		t.Run(string(tt.policy), func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.submit(t, newSpec(scheduled("0 * * * *", func(s *job.Schedule) {
				s.CatchUp, s.CatchUpLimit, s.Overlap = tt.policy, 2, job.OverlapAllow
			})), "")
			b.clock.Set(time.Date(2030, 3, 4, 10, 30, 0, 0, time.UTC))
			b.fireDue(t)
			b.fireDue(t)

			var got []string
			for _, r := range b.runs(t, hello) {
				got = append(got, r.ScheduledAt.Format("15:04"))
			}
			require.Equal(t, tt.runs, got)
			require.Len(t, b.reasons(t, hello, event.ScheduleMissed), tt.missed)
			require.Len(t, b.fires(t, hello), 5, "every time has one decision")
		})
	}
	t.Run("a long outage is summarized", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.submit(t, newSpec(scheduled("* * * * *")), "")
		b.clock.Advance(30 * 24 * time.Hour) // 43200 fire times, the newest 7s ago
		b.fireDue(t)
		missed := b.reasons(t, hello, event.ScheduleMissed)
		require.Len(t, missed, 100, "one summary, then the 99 newest missed times")
		require.Contains(t, missed[0], "43100 more fire times")
		require.Len(t, b.runs(t, hello), 1, "the newest time is on time: it runs")
		// And it goes on firing, unlike a CronJob that gives up after 100
		// misses.
		b.finishAll(t, hello, 0)
		b.clock.Set(b.clock.Now().Truncate(time.Minute).Add(time.Minute))
		b.fireDue(t)
		require.Len(t, b.runs(t, hello), 2)
	})
}

func TestFireResolvesParamsEachTime(t *testing.T) {
	t.Parallel()
	b := setup(t)
	setParam := func(v string) {
		require.NoError(t, b.store.Update(b.ctx, func(tx store.Tx) error {
			return tx.PutParam(b.ctx, param.Param{Role: "demo", Name: "bucket", Value: secret.New(v), UpdatedAt: b.clock.Now()})
		}))
	}
	setParam("b1")
	b.submit(t, newSpec(scheduled("0 * * * *", func(s *job.Schedule) { s.Overlap = job.OverlapAllow }),
		func(s *job.Spec) { s.Task.Command = []string{"etl", "{{ .Params.bucket }}"} }), "")
	b.clock.Set(time.Date(2030, 3, 4, 6, 0, 0, 0, time.UTC))
	b.fireDue(t)
	setParam("b2")
	b.clock.Set(time.Date(2030, 3, 4, 7, 0, 0, 0, time.UTC))
	b.fireDue(t)

	runs := b.runs(t, hello)
	require.Len(t, runs, 2)
	require.Equal(t, 1, runs[0].Version)
	require.Equal(t, 2, runs[1].Version, "a changed parameter is a new version")

	// A deleted parameter fails that fire alone, naming it.
	require.NoError(t, b.store.Update(b.ctx, func(tx store.Tx) error { return tx.DeleteParam(b.ctx, "demo", "bucket") }))
	b.clock.Set(time.Date(2030, 3, 4, 8, 0, 0, 0, time.UTC))
	b.fireDue(t)
	require.Len(t, b.runs(t, hello), 2)
	failed := b.reasons(t, hello, event.ScheduleFailed)
	require.Len(t, failed, 1)
	require.Contains(t, failed[0], "bucket")
	fires := b.fires(t, hello)
	require.Equal(t, job.FireFailed, fires[len(fires)-1].Outcome)
}

func TestFireNowAndPause(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.submit(t, newSpec(scheduled("0 * * * *")), "")

	res, err := b.sched.FireNow(b.ctx, hello)
	require.NoError(t, err)
	require.Equal(t, 1, res.Run)
	require.Len(t, res.Tasks, 1)
	runs := b.runs(t, hello)
	require.Equal(t, job.ByManualFire, runs[0].Trigger)

	_, err = b.sched.FireNow(b.ctx, hello)
	var ce *scheduler.ConflictError
	require.ErrorAs(t, err, &ce, "overlap forbid holds for a manual fire too")
	require.ErrorContains(t, err, "run 1 is still RUNNING")
	b.finishAll(t, hello, 0)

	_, err = b.sched.PauseCron(b.ctx, hello, true)
	require.NoError(t, err)
	b.clock.Set(time.Date(2030, 3, 4, 8, 30, 0, 0, time.UTC))
	b.fireDue(t)
	require.Len(t, b.runs(t, hello), 1, "a paused schedule does not fire")
	_, err = b.sched.PauseCron(b.ctx, hello, false)
	require.NoError(t, err)
	b.fireDue(t)
	require.Len(t, b.runs(t, hello), 1, "times passed while paused are not caught up")
	b.clock.Set(time.Date(2030, 3, 4, 9, 0, 0, 0, time.UTC))
	b.fireDue(t)
	require.Len(t, b.runs(t, hello), 2)

	_, err = b.sched.FireNow(b.ctx, job.Key{Role: "demo", Env: "dev", Name: "none"})
	require.ErrorIs(t, err, store.ErrNotFound)
}

func TestRerun(t *testing.T) {
	t.Parallel()
	b := setup(t)
	first := b.submit(t, newSpec(func(s *job.Spec) { s.Instances = 3; s.Retry.Attempts = 0 }), "")

	_, err := b.sched.Rerun(b.ctx, hello, scheduler.RerunRequest{})
	var ce *scheduler.ConflictError
	require.ErrorAs(t, err, &ce, "a running job is not rerun")

	b.sync(t, "n1")
	b.placeOnce(t)
	b.sync(t, "n1", exited(first.Tasks[0], 0), exited(first.Tasks[1], 3), exited(first.Tasks[2], 0))
	require.Equal(t, job.Failed, b.job(t, hello).State)

	_, err = b.sched.Rerun(b.ctx, hello, scheduler.RerunRequest{Instances: []int{5}})
	var fe *job.FieldError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, "instance", fe.Field)

	res, err := b.sched.Rerun(b.ctx, hello, scheduler.RerunRequest{Failed: true})
	require.NoError(t, err)
	require.Equal(t, 2, res.Run)
	require.Equal(t, 1, res.Version, "the same resolved version")
	require.Len(t, res.Tasks, 1)
	tk := b.task(t, res.Tasks[0])
	require.Equal(t, 1, tk.Instance, "only the failed instance")
	runs := b.runs(t, hello)
	require.Equal(t, job.ByRerun, runs[1].Trigger)
	require.Equal(t, 1, runs[1].Of)
	require.Equal(t, []int{1}, runs[1].Instances)

	b.sync(t, "n1")
	b.placeOnce(t)
	b.sync(t, "n1", exited(tk.ID, 0))
	require.Equal(t, job.Succeeded, b.runs(t, hello)[1].State)
	require.Equal(t, job.Succeeded, b.job(t, hello).State)

	_, err = b.sched.Rerun(b.ctx, hello, scheduler.RerunRequest{Failed: true})
	require.ErrorAs(t, err, &fe, "run 2 has nothing that failed")
	require.Equal(t, "failed", fe.Field)

	// Run 1 again, all of it.
	res, err = b.sched.Rerun(b.ctx, hello, scheduler.RerunRequest{Run: 1})
	require.NoError(t, err)
	require.Len(t, res.Tasks, 3)
	require.Nil(t, b.runs(t, hello)[2].Instances, "all instances")
	_, err = b.sched.Rerun(b.ctx, job.Key{Role: "demo", Env: "dev", Name: "none"}, scheduler.RerunRequest{})
	require.ErrorIs(t, err, store.ErrNotFound)
	_ = fmt.Sprint()
}

func TestPruneKeepsWhatRetentionSays(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// Five runs, ending a day apart.
	for range 5 {
		b.submit(t, newSpec(), "")
		b.finishAll(t, hello, 0)
		b.clock.Advance(24 * time.Hour)
	}
	require.Len(t, b.runs(t, hello), 5)
	tasksBefore := len(b.tasks(t, hello))

	n, ids, err := b.sched.Prune(b.ctx, scheduler.Retention{})
	require.NoError(t, err)
	require.Zero(t, n, "no retention, nothing removed")
	require.Empty(t, ids)

	// Older than 3 days: runs 1 and 2 ended 5 and 4 days ago.
	n, ids, err = b.sched.Prune(b.ctx, scheduler.Retention{KeepFor: 3*24*time.Hour + time.Hour})
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Len(t, ids, 2)
	var left []int
	for _, r := range b.runs(t, hello) {
		left = append(left, r.Number)
	}
	require.Equal(t, []int{3, 4, 5}, left)
	require.Len(t, b.tasks(t, hello), tasksBefore-2)
	for _, id := range ids {
		require.Empty(t, b.history(t, id), "the removed tasks' events are gone")
	}
	require.Len(t, b.reasons(t, hello, event.RunsRemoved), 1)

	// A count: the newest one only. The newest always stays, whatever its age.
	b.clock.Advance(365 * 24 * time.Hour)
	n, _, err = b.sched.Prune(b.ctx, scheduler.Retention{KeepFor: time.Hour, KeepRuns: 1})
	require.NoError(t, err)
	require.Equal(t, 2, n)
	runs := b.runs(t, hello)
	require.Len(t, runs, 1)
	require.Equal(t, 5, runs[0].Number)
	require.Equal(t, job.Succeeded, b.job(t, hello).State)

	// An active run is never removed.
	b.submit(t, newSpec(), "")
	n, _, err = b.sched.Prune(b.ctx, scheduler.Retention{KeepRuns: 1})
	require.NoError(t, err)
	require.Equal(t, 1, n, "run 5 goes; run 6 is the newest")
}
