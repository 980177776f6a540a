package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/auth"
	"github.com/drover-dev/drover/internal/event"
	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/scheduler"
	"github.com/drover-dev/drover/internal/store"
	"github.com/drover-dev/drover/internal/task"
)

// Runs and schedules. Every route sits behind mayJob: someone who may not
// read the job is told it does not exist; changing a run or a schedule
// takes job:submit.

// MaxRunsListed bounds GET /v1/jobs/{key}/runs.
const MaxRunsListed = 1000

func (s *Server) runRoutes() {
	s.handle("GET /v1/jobs/{role}/{env}/{name}/runs", mayJob(auth.VerbRead), s.wrap(s.listRuns))
	s.handle("GET /v1/jobs/{role}/{env}/{name}/runs/{run}", mayJob(auth.VerbRead), s.wrap(s.getRun))
	s.handle("POST /v1/jobs/{role}/{env}/{name}/rerun", mayJob(auth.VerbSubmit), s.wrap(s.rerun))
	s.handle("GET /v1/schedules", signedIn, s.wrap(s.listSchedules))
	s.handle("GET /v1/jobs/{role}/{env}/{name}/schedule", mayJob(auth.VerbRead), s.wrap(s.getSchedule))
	s.handle("POST /v1/jobs/{role}/{env}/{name}/schedule/run", mayJob(auth.VerbSubmit), s.wrap(s.fireSchedule))
	s.handle("POST /v1/jobs/{role}/{env}/{name}/schedule/pause", mayJob(auth.VerbSubmit), s.wrap(s.pauseSchedule(true)))
	s.handle("POST /v1/jobs/{role}/{env}/{name}/schedule/resume", mayJob(auth.VerbSubmit), s.wrap(s.pauseSchedule(false)))
	s.handle("DELETE /v1/jobs/{role}/{env}/{name}/schedule", mayJob(auth.VerbSubmit), s.wrap(s.deleteSchedule))
}

// listRuns answers a job's runs, newest first (?limit=N, default 20), each
// with its retries and their reasons.
func (s *Server) listRuns(w http.ResponseWriter, r *http.Request) (int, any, error) {
	key, err := pathKey(r)
	if err != nil {
		return 0, nil, err
	}
	limit := 20
	if v := r.URL.Query().Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > MaxRunsListed {
			return 0, nil, badRequestf("limit", "must be a whole number from 1 to %d, not %q", MaxRunsListed, v)
		}
	}
	out := []api.Run{}
	err = s.store.View(r.Context(), func(rd store.Reader) error {
		if _, err := rd.GetJob(r.Context(), key); err != nil {
			return notFound("job "+key.String(), err)
		}
		runs, err := rd.ListRuns(r.Context(), store.RunFilter{Job: key, Limit: limit})
		if err != nil {
			return err
		}
		for _, rn := range runs {
			ar, err := loadRun(r.Context(), rd, rn, false)
			if err != nil {
				return err
			}
			out = append(out, ar)
		}
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, out, nil
}

// getRun answers one run with its tasks.
func (s *Server) getRun(w http.ResponseWriter, r *http.Request) (int, any, error) {
	key, err := pathKey(r)
	if err != nil {
		return 0, nil, err
	}
	raw := r.PathValue("run")
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 {
		return 0, nil, badRequestf("run", "must be a whole number from 1 up, not %q", raw)
	}
	var out api.Run
	err = s.store.View(r.Context(), func(rd store.Reader) error {
		rn, err := rd.GetRun(r.Context(), key, n)
		if err != nil {
			return notFound(fmt.Sprintf("run %d of job %s", n, key), err)
		}
		out, err = loadRun(r.Context(), rd, rn, true)
		return err
	})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, out, nil
}

// loadRun reads a run's tasks into its API form: when it started, how
// many attempts it took and why each retry, reschedule and restart
// happened.
func loadRun(ctx context.Context, rd store.Reader, rn job.Run, withTasks bool) (api.Run, error) {
	ts, err := rd.ListTasks(ctx, store.TaskFilter{Job: &rn.Job, Run: rn.Number})
	if err != nil {
		return api.Run{}, err
	}
	out := api.Run{Job: rn.Job.String(), Run: rn.Number, Version: rn.Version, State: string(rn.State), Trigger: string(rn.Trigger),
		Of: rn.Of, Instances: rn.Instances, CreatedAt: rn.CreatedAt, Message: rn.Message, Attempts: len(ts)}
	if out.Instances == nil {
		out.Instances = []int{}
	}
	if !rn.ScheduledAt.IsZero() {
		at := rn.ScheduledAt
		out.ScheduledAt = &at
	}
	if !rn.FinishedAt.IsZero() {
		at := rn.FinishedAt
		out.FinishedAt = &at
	}
	v, err := rd.GetJobVersion(ctx, rn.Job, rn.Version)
	if err != nil {
		return api.Run{}, err
	}
	byAttempt := map[[2]int]task.Task{}
	for _, t := range ts {
		byAttempt[[2]int{t.Instance, t.Attempt}] = t
		if t.StartedAt != nil && (out.StartedAt == nil || t.StartedAt.Before(*out.StartedAt)) {
			at := *t.StartedAt
			out.StartedAt = &at
		}
		if withTasks {
			out.Tasks = append(out.Tasks, toAPITask(t))
		}
	}
	insts := map[int]bool{}
	for _, t := range ts {
		insts[t.Instance] = true
		if t.Attempt < 2 {
			continue
		}
		prev, ok := byAttempt[[2]int{t.Instance, t.Attempt - 1}]
		if !ok {
			continue
		}
		why := string(prev.State)
		if prev.Message != "" {
			why += ": " + prev.Message
		} else if prev.ExitCode != nil {
			why += fmt.Sprintf(": exit code %d", *prev.ExitCode)
		}
		if prev.Node != "" {
			why += " (node " + prev.Node + ")"
		}
		kind := string(event.Retry)
		switch {
		case v.Spec.Type == job.Service:
			kind = string(event.Restart)
		case prev.State == task.Lost:
			kind = string(event.Reschedule)
		}
		out.Retries = append(out.Retries, api.RunRetry{Instance: t.Instance, Attempt: t.Attempt, Kind: kind, After: prev.ID, Reason: why})
	}
	if len(out.Instances) == 0 {
		for i := range insts {
			out.Instances = append(out.Instances, i)
		}
		sort.Ints(out.Instances)
	}
	sort.Slice(out.Retries, func(i, j int) bool {
		a, b := out.Retries[i], out.Retries[j]
		return a.Instance < b.Instance || (a.Instance == b.Instance && a.Attempt < b.Attempt)
	})
	return out, nil
}

// rerun runs an ended run of a job again as a new run.
func (s *Server) rerun(w http.ResponseWriter, r *http.Request) (int, any, error) {
	key, err := pathKey(r)
	if err != nil {
		return 0, nil, err
	}
	var req api.RerunRequest
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &req); err != nil && !errors.Is(err, io.EOF) {
			return 0, nil, err
		}
	}
	if req.Run < 0 {
		return 0, nil, badRequestf("run", "must be a run number (1 or more), or 0 for the newest, not %d", req.Run)
	}
	res, err := s.sched.Rerun(r.Context(), key, scheduler.RerunRequest{Run: req.Run, Instances: req.Instances, Failed: req.Failed})
	if err != nil {
		return 0, nil, notFound("job "+key.String(), err)
	}
	return http.StatusCreated, toSubmitResponse(res), nil
}

func toAPISchedule(c scheduler.CronStatus) api.Schedule {
	e := c.Entry
	tz := e.Schedule.TimeZone
	if tz == "" {
		tz = "UTC"
	}
	out := api.Schedule{Job: e.Job.String(), Cron: e.Schedule.Cron, TimeZone: tz, Overlap: string(e.Schedule.Overlap),
		CatchUp: string(e.Schedule.CatchUp), CatchUpLimit: e.Schedule.CatchUpLimit, Paused: e.Paused, Template: e.Template}
	if !c.Next.IsZero() && !e.Paused {
		next := c.Next
		if loc, err := time.LoadLocation(tz); err == nil {
			next = next.In(loc)
		}
		out.Next = &next
	}
	if f := c.LastFire; f != nil {
		out.LastFire = &api.Fire{At: f.At, Outcome: string(f.Outcome), Run: f.Run, Message: f.Message}
	}
	return out
}

// listSchedules answers the schedules of the jobs the caller may read.
func (s *Server) listSchedules(w http.ResponseWriter, r *http.Request) (int, any, error) {
	cs, err := s.sched.Crons(r.Context())
	if err != nil {
		return 0, nil, err
	}
	p := principalOf(r)
	out := []api.Schedule{}
	for _, c := range cs {
		if p.Can(auth.VerbRead, auth.ResourceJob, c.Entry.Job.Role) {
			out = append(out, toAPISchedule(c))
		}
	}
	return http.StatusOK, out, nil
}

// schedule returns one job's schedule status.
func (s *Server) schedule(ctx context.Context, key job.Key) (api.Schedule, error) {
	cs, err := s.sched.Crons(ctx)
	if err != nil {
		return api.Schedule{}, err
	}
	for _, c := range cs {
		if c.Entry.Job == key {
			return toAPISchedule(c), nil
		}
	}
	return api.Schedule{}, notFound("schedule of job "+key.String(), store.ErrNotFound)
}

func (s *Server) getSchedule(w http.ResponseWriter, r *http.Request) (int, any, error) {
	key, err := pathKey(r)
	if err != nil {
		return 0, nil, err
	}
	out, err := s.schedule(r.Context(), key)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, out, nil
}

// fireSchedule fires a job's schedule now (cron run), as its overlap
// policy allows: 409 when overlap: forbid skips it.
func (s *Server) fireSchedule(w http.ResponseWriter, r *http.Request) (int, any, error) {
	key, err := pathKey(r)
	if err != nil {
		return 0, nil, err
	}
	res, err := s.sched.FireNow(r.Context(), key)
	if err != nil {
		return 0, nil, notFound("schedule of job "+key.String(), err)
	}
	return http.StatusCreated, toSubmitResponse(res), nil
}

func (s *Server) pauseSchedule(paused bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		key, err := pathKey(r)
		if err != nil {
			return 0, nil, err
		}
		if _, err := s.sched.PauseCron(r.Context(), key, paused); err != nil {
			return 0, nil, notFound("schedule of job "+key.String(), err)
		}
		out, err := s.schedule(r.Context(), key)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, out, nil
	}
}

func (s *Server) deleteSchedule(w http.ResponseWriter, r *http.Request) (int, any, error) {
	key, err := pathKey(r)
	if err != nil {
		return 0, nil, err
	}
	if err := s.sched.DeleteCron(r.Context(), key); err != nil {
		return 0, nil, notFound("schedule of job "+key.String(), err)
	}
	return http.StatusOK, struct{}{}, nil
}
