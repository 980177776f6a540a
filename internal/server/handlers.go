package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/auth"
	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/jobspec"
	"github.com/drover-dev/drover/internal/node"
	"github.com/drover-dev/drover/internal/scheduler"
	"github.com/drover-dev/drover/internal/store"
	"github.com/drover-dev/drover/internal/task"
	"github.com/drover-dev/drover/internal/tasklog"
)

// submitJob accepts one job document, as JSON or YAML (JSON is YAML), and
// answers 201 once the job is committed. An Idempotency-Key header makes a
// retried submission answer the first one's result (200).
func (s *Server) submitJob(w http.ResponseWriter, r *http.Request) (int, any, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxJobBody))
	if err != nil {
		return 0, nil, err
	}
	specs, err := jobspec.Parse(body)
	if err != nil {
		// Parse reads only the body, so all it refuses is the client's
		// mistake, a syntax error as much as a bad field.
		if len(fieldErrors(err)) == 0 {
			err = badRequestf("body", "%s", err)
		}
		return 0, nil, err
	}
	if len(specs) != 1 {
		return 0, nil, badRequestf("body", "holds %d jobs; submit one job per request", len(specs))
	}
	if p := principalOf(r); !p.Can(auth.VerbSubmit, auth.ResourceJob, specs[0].Key.Role) {
		return 0, nil, forbidden("you lack the permission job:submit:%s", specs[0].Key.Role)
	}
	idem := r.Header.Get("Idempotency-Key")
	if len(idem) > 200 {
		return 0, nil, badRequestf("Idempotency-Key", "must be at most 200 characters")
	}
	res, err := s.sched.Submit(r.Context(), specs[0], idem)
	if err != nil {
		return 0, nil, err
	}
	code := http.StatusOK
	if res.Created {
		code = http.StatusCreated
	}
	return code, toSubmitResponse(res), nil
}

func toSubmitResponse(res scheduler.SubmitResult) api.SubmitResponse {
	out := api.SubmitResponse{Job: res.Key.String(), Version: res.Version, Run: res.Run, Created: res.Created, Tasks: res.Tasks}
	if out.Tasks == nil {
		out.Tasks = []string{}
	}
	if res.Schedule != nil {
		sc := toAPISchedule(scheduler.CronStatus{Entry: *res.Schedule, Next: res.Next})
		out.Schedule = &sc
	}
	return out
}

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request) (int, any, error) {
	out := []api.Job{}
	err := s.store.View(r.Context(), func(rd store.Reader) error {
		js, err := rd.ListJobs(r.Context())
		if err != nil {
			return err
		}
		p := principalOf(r)
		for _, j := range js {
			if !p.Can(auth.VerbRead, auth.ResourceJob, j.Key.Role) {
				continue // other teams' jobs are not shown, not even counted
			}
			aj, err := s.loadJob(r.Context(), rd, j.Key, 0, false)
			if err != nil {
				return err
			}
			out = append(out, aj)
		}
		return nil
	})
	return http.StatusOK, out, err
}

func pathKey(r *http.Request) (job.Key, error) {
	k, err := job.ParseKey(r.PathValue("role") + "/" + r.PathValue("env") + "/" + r.PathValue("name"))
	if err != nil {
		return job.Key{}, badRequestf("job", "%v", err)
	}
	return k, nil
}

// loadJob reads a job with a run's tasks (its newest run for run 0) and
// that run's version's spec (the newest version's before any run).
func (s *Server) loadJob(ctx context.Context, rd store.Reader, key job.Key, run int, withSpec bool) (api.Job, error) {
	j, err := rd.GetJob(ctx, key)
	if err != nil {
		return api.Job{}, notFound("job "+key.String(), err)
	}
	if run == 0 {
		run = j.Run
	}
	var rn job.Run
	var ts []task.Task
	version := j.Version
	if run > 0 {
		if rn, err = rd.GetRun(ctx, key, run); err != nil {
			return api.Job{}, notFound(fmt.Sprintf("run %d of job %s", run, key), err)
		}
		version = rn.Version
		if ts, err = rd.ListTasks(ctx, store.TaskFilter{Job: &key, Run: run}); err != nil {
			return api.Job{}, err
		}
	}
	v, err := rd.GetJobVersion(ctx, key, version)
	if err != nil {
		return api.Job{}, err
	}
	idx, err := rd.LastEventID(ctx, key.String())
	if err != nil {
		return api.Job{}, err
	}
	aj := toAPIJob(j, rn, v.Spec, ts, idx)
	if withSpec {
		spec := jobspec.Format(v.Spec)
		aj.Spec = &spec
	}
	return aj, nil
}

// getJob answers a job with its newest run's tasks, or run N's with
// ?run=N. With ?index=N&wait=D it holds the call until the job has an
// event newer than N, or D passes; with &until=end as well, until the job
// (or the run asked for) has ended.
func (s *Server) getJob(w http.ResponseWriter, r *http.Request) (int, any, error) {
	key, err := pathKey(r)
	if err != nil {
		return 0, nil, err
	}
	index, wait, err := waitParams(r)
	if err != nil {
		return 0, nil, err
	}
	run := 0
	if v := r.URL.Query().Get("run"); v != "" {
		if run, err = strconv.Atoi(v); err != nil || run < 1 {
			return 0, nil, badRequestf("run", "must be a run number (1 or more), not %q", v)
		}
	}
	var untilEnd bool
	switch u := r.URL.Query().Get("until"); u {
	case "":
	case "end":
		untilEnd = true
	default:
		return 0, nil, badRequestf("until", "must be \"end\" or absent, not %q", u)
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for first := true; ; first = false {
		changed := s.sched.Changed()
		if !first {
			// Most changes are to other jobs: look at this job's newest
			// event before reading all of it.
			var last int64
			err := s.store.View(r.Context(), func(rd store.Reader) error {
				var err error
				last, err = rd.LastEventID(r.Context(), key.String())
				return err
			})
			if err != nil {
				return 0, nil, err
			}
			if last <= index || (untilEnd && !s.jobEnded(r, key, run)) {
				if done, code, v, err := s.holdJob(r, run, changed, deadline.C); done {
					return code, v, err
				}
				continue
			}
		}
		var aj api.Job
		err := s.store.View(r.Context(), func(rd store.Reader) error {
			var err error
			aj, err = s.loadJob(r.Context(), rd, key, run, true)
			return err
		})
		ended := job.State(aj.State).IsTerminal()
		if run > 0 {
			ended = job.State(aj.RunState).IsTerminal()
		}
		if err != nil || wait == 0 || (aj.EventIndex > index && (!untilEnd || ended)) {
			return http.StatusOK, aj, err
		}
		select {
		case <-changed:
		case <-deadline.C:
			return http.StatusOK, aj, nil
		case <-r.Context().Done():
			return 0, nil, r.Context().Err()
		case <-s.stopping:
			return http.StatusOK, aj, nil
		}
	}
}

// jobEnded reports whether a job (or its run, when run is not 0) is in an
// end state (false on errors: the full read that follows reports them).
func (s *Server) jobEnded(r *http.Request, key job.Key, run int) bool {
	var ended bool
	_ = s.store.View(r.Context(), func(rd store.Reader) error {
		if run > 0 {
			rn, err := rd.GetRun(r.Context(), key, run)
			ended = err == nil && !rn.Active()
			return err
		}
		j, err := rd.GetJob(r.Context(), key)
		ended = err == nil && j.State.IsTerminal()
		return err
	})
	return ended
}

// holdJob waits for a change; when the wait is over (deadline, shutdown,
// client gone) it answers with the job as it is now.
func (s *Server) holdJob(r *http.Request, run int, changed <-chan struct{}, deadline <-chan time.Time) (bool, int, any, error) {
	select {
	case <-changed:
		return false, 0, nil, nil
	case <-r.Context().Done():
		return true, 0, nil, r.Context().Err()
	case <-deadline:
	case <-s.stopping:
	}
	var aj api.Job
	err := s.store.View(r.Context(), func(rd store.Reader) error {
		var err error
		aj, err = s.loadJob(r.Context(), rd, r2key(r), run, true)
		return err
	})
	return true, http.StatusOK, aj, err
}

func r2key(r *http.Request) job.Key {
	k, _ := pathKey(r)
	return k
}

func waitParams(r *http.Request) (int64, time.Duration, error) {
	q := r.URL.Query()
	var index int64
	var wait time.Duration
	if v := q.Get("index"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, badRequestf("index", "must be a non-negative integer, not %q", v)
		}
		index = n
	}
	if v := q.Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > 5*time.Minute {
			return 0, 0, badRequestf("wait", "must be a duration between 0s and 5m, not %q", v)
		}
		wait = d
	}
	return index, wait, nil
}

func (s *Server) killJob(w http.ResponseWriter, r *http.Request) (int, any, error) {
	key, err := pathKey(r)
	if err != nil {
		return 0, nil, err
	}
	var req api.KillRequest
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &req); err != nil && !errors.Is(err, io.EOF) {
			return 0, nil, err
		}
	}
	ids, err := s.sched.Kill(r.Context(), key, req.Instances)
	if err != nil {
		return 0, nil, notFound("job "+key.String(), err)
	}
	if ids == nil {
		ids = []string{}
	}
	return http.StatusOK, api.KillResponse{Tasks: ids}, nil
}

func (s *Server) jobEvents(w http.ResponseWriter, r *http.Request) (int, any, error) {
	key, err := pathKey(r)
	if err != nil {
		return 0, nil, err
	}
	return s.events(r, store.EventFilter{Job: key.String()}, func(rd store.Reader) error {
		_, err := rd.GetJob(r.Context(), key)
		if err != nil {
			return notFound("job "+key.String(), err)
		}
		return nil
	})
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) (int, any, error) {
	q := r.URL.Query()
	return s.events(r, store.EventFilter{TaskID: q.Get("task"), Node: q.Get("node"), Reason: q.Get("reason")}, nil)
}

func (s *Server) events(r *http.Request, f store.EventFilter, check func(store.Reader) error) (int, any, error) {
	q := r.URL.Query()
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, nil, badRequestf("after", "must be a non-negative integer, not %q", v)
		}
		f.AfterID = n
	}
	f.Limit = 1000
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			return 0, nil, badRequestf("limit", "must be between 1 and 10000, not %q", v)
		}
		f.Limit = n
	}
	out := []api.Event{}
	err := s.store.View(r.Context(), func(rd store.Reader) error {
		if check != nil {
			if err := check(rd); err != nil {
				return err
			}
		}
		es, err := rd.ListEvents(r.Context(), f)
		for _, e := range es {
			out = append(out, toAPIEvent(e))
		}
		return err
	})
	return http.StatusOK, out, err
}

func (s *Server) lookupTask(ctx context.Context, id string) (task.Task, error) {
	if !validTaskID(id) {
		return task.Task{}, badRequestf("task", "%q is not a task ID", id)
	}
	var t task.Task
	err := s.store.View(ctx, func(rd store.Reader) error {
		var err error
		t, err = rd.GetTask(ctx, id)
		return err
	})
	if err != nil {
		return task.Task{}, notFound("task "+id, err)
	}
	if p := principalFrom(ctx); p.Kind != auth.AgentKind && !p.Can(auth.VerbRead, auth.ResourceJob, t.Job.Role) {
		return task.Task{}, &notFoundError{what: "task " + id}
	}
	return t, nil
}

func validTaskID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func (s *Server) getTask(w http.ResponseWriter, r *http.Request) (int, any, error) {
	t, err := s.lookupTask(r.Context(), r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, toAPITask(t), nil
}

// taskLogs answers a stream of a task's output from ?offset= (bytes; a
// negative offset counts back from the end). The X-Drover-Log-Start header
// says where the bytes begin, which is later than asked when older output
// was rotated away. With ?follow=true the answer streams until the task has
// ended and every byte it wrote has been sent.
func (s *Server) taskLogs(w http.ResponseWriter, r *http.Request) (int, any, error) {
	t, err := s.lookupTask(r.Context(), r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	stream := r.PathValue("stream")
	if stream != "stdout" && stream != "stderr" {
		return 0, nil, badRequestf("stream", "must be stdout or stderr, not %q", stream)
	}
	q := r.URL.Query()
	var off int64
	if v := q.Get("offset"); v != "" {
		if off, err = strconv.ParseInt(v, 10, 64); err != nil {
			return 0, nil, badRequestf("offset", "must be an integer, not %q", v)
		}
	}
	follow := q.Get("follow") == "true" || q.Get("follow") == "1"
	lg, err := s.logs.get(t.ID, stream)
	if err != nil {
		return 0, nil, err
	}
	if off < 0 {
		off = max(lg.End()+off, 0)
	}
	if off < lg.Start() {
		off = lg.Start()
	}
	buf := make([]byte, 64<<10)
	// Read the first chunk before answering, so the header can say where
	// the bytes really begin (later than asked after rotation or a gap).
	n, start, _ := lg.ReadAt(off, buf)
	if n > 0 {
		off = start
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Drover-Log-Start", strconv.FormatInt(off, 10))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	for {
		changed := lg.Changed()
		schedChanged := s.sched.Changed()
		for {
			if n == 0 {
				var err error
				n, start, err = lg.ReadAt(off, buf)
				if errors.Is(err, tasklog.ErrClosed) {
					// Closed to bound open files; open it again.
					if lg, err = s.logs.get(t.ID, stream); err != nil {
						return 0, nil, nil
					}
					continue
				}
				if n == 0 {
					break
				}
			}
			if _, werr := w.Write(buf[:n]); werr != nil {
				return 0, nil, nil
			}
			// start, not off: a gap in the log is skipped, not repeated.
			off = start + int64(n)
			n = 0
		}
		if !follow {
			return 0, nil, nil
		}
		if flusher != nil {
			flusher.Flush()
		}
		// The agent uploads a task's last output before it reports the
		// end, so an ended task's log is complete.
		cur, err := s.lookupTask(r.Context(), t.ID)
		if err != nil {
			return 0, nil, nil
		}
		if cur.State.IsTerminal() && off >= lg.End() {
			return 0, nil, nil
		}
		select {
		case <-changed:
		case <-schedChanged:
		case <-r.Context().Done():
			return 0, nil, nil
		case <-s.stopping:
			return 0, nil, nil
		}
	}
}

func (s *Server) listNodes(w http.ResponseWriter, r *http.Request) (int, any, error) {
	out := []api.Node{}
	inPool := r.URL.Query().Get("pool")
	if inPool != "" && !job.ValidName(inPool) {
		return 0, nil, badRequestf("pool", "%q %s", inPool, job.NameRule)
	}
	err := s.store.View(r.Context(), func(rd store.Reader) error {
		ns, err := rd.ListNodes(r.Context())
		if err != nil {
			return err
		}
		active, err := rd.ListTasks(r.Context(), store.TaskFilter{States: []task.State{task.Assigned, task.Starting, task.Running}})
		if err != nil {
			return err
		}
		used := map[string]job.Resources{}
		count := map[string]int{}
		for _, t := range active {
			used[t.Node] = used[t.Node].Add(t.Resources)
			count[t.Node]++
		}
		for _, n := range ns {
			if inPool != "" && n.Attributes["pool"] != inPool {
				continue
			}
			an := toAPINode(n, used[n.Name], count[n.Name])
			an.Packages = s.pkgs.reported(n.Name)
			out = append(out, an)
		}
		return nil
	})
	return http.StatusOK, out, err
}

// agentSync is the agent's one call: heartbeat, status report and order
// pickup. With nothing to say, the server holds the call up to the wait the
// agent asked for.
func (s *Server) agentSync(w http.ResponseWriter, r *http.Request) (int, any, error) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxSyncBody)
	var req api.SyncRequest
	if err := decodeJSON(r, &req); err != nil {
		return 0, nil, err
	}
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	rep, err := fromAPISync(req, host)
	if err != nil {
		return 0, nil, err
	}
	// The node is the token's: no other agent token may sync as it, so an
	// agent sees only its own assignments and changes only its own tasks.
	// Checked before the scheduler sees the report: it takes a report's
	// sequence number and the node's liveness before its transaction
	// refuses a stranger, and answers a report it deems old with the
	// node's orders without asking who sent it.
	rep.Node.TokenID = principalOf(r).TokenID
	if err := s.checkNodeToken(r.Context(), rep.Node.Name, rep.Node.TokenID); err != nil {
		return 0, nil, err
	}
	wait := min(max(time.Duration(req.Wait), 0), MaxSyncWait)
	changed := s.sched.NodeChanged(rep.Node.Name)
	orders, err := s.sched.Sync(r.Context(), rep)
	if err != nil {
		return 0, nil, err
	}
	if orders.Empty() && wait > 0 {
		deadline := time.NewTimer(wait)
		defer deadline.Stop()
	hold:
		for {
			select {
			case <-changed:
			case <-deadline.C:
				break hold
			case <-r.Context().Done():
				return 0, nil, nil
			case <-s.stopping:
				break hold
			}
			changed = s.sched.NodeChanged(rep.Node.Name)
			if orders, err = s.sched.PendingOrders(r.Context(), rep); err != nil {
				return 0, nil, err
			}
			if !orders.Empty() {
				break
			}
		}
	}
	if orders, err = s.revealSecrets(r.Context(), orders); err != nil {
		return 0, nil, err
	}
	resp := toAPIOrders(orders)
	resp.Interval = api.Duration(DefaultSyncInterval)
	if err := s.syncPackages(r.Context(), req, &resp); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, resp, nil
}

// checkNodeToken refuses a sync as a node another agent token registered.
// A node not yet registered is left to the scheduler, which binds it to
// the first token in the same transaction that creates it.
func (s *Server) checkNodeToken(ctx context.Context, name, tokenID string) error {
	var n node.Node
	err := s.store.View(ctx, func(rd store.Reader) error {
		var err error
		n, err = rd.GetNode(ctx, name)
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil
	case err != nil:
		return err
	case n.TokenID != "" && n.TokenID != tokenID:
		return forbidden("node %s was registered with another agent token", name)
	}
	return nil
}

// agentLogs stores a chunk of a task's output uploaded by its agent.
func (s *Server) agentLogs(w http.ResponseWriter, r *http.Request) (int, any, error) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxLogChunkBody)
	var c api.LogChunk
	if err := decodeJSON(r, &c); err != nil {
		return 0, nil, err
	}
	if c.Stream != "stdout" && c.Stream != "stderr" {
		return 0, nil, badRequestf("stream", "must be stdout or stderr, not %q", c.Stream)
	}
	if c.Offset < 0 {
		return 0, nil, badRequestf("offset", "must not be negative")
	}
	t, err := s.lookupTask(r.Context(), c.TaskID)
	if err != nil {
		return 0, nil, err
	}
	if err := s.ownsNode(r, t.Node); err != nil {
		// Worded as for a task that does not exist: an agent does not
		// learn which task IDs are real.
		return 0, nil, &notFoundError{what: "task " + c.TaskID}
	}
	lg, err := s.logs.get(c.TaskID, c.Stream)
	if err != nil {
		return 0, nil, err
	}
	if err := lg.Append(c.Offset, c.Data); err != nil {
		return 0, nil, fmt.Errorf("store log of task %s: %w", c.TaskID, err)
	}
	return http.StatusOK, map[string]int64{"end": lg.End()}, nil
}

// ownsNode checks that the calling agent's token registered the node: an
// agent writes only its own tasks' output.
func (s *Server) ownsNode(r *http.Request, name string) error {
	p := principalOf(r)
	var n node.Node
	err := s.store.View(r.Context(), func(rd store.Reader) error {
		var err error
		n, err = rd.GetNode(r.Context(), name)
		return err
	})
	if err != nil || n.TokenID != p.TokenID {
		return &notFoundError{what: "task"}
	}
	return nil
}

// drainNode drains (or undrains) a node and answers it.
func (s *Server) drainNode(drain bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		name := r.PathValue("name")
		if !job.ValidName(name) {
			return 0, nil, badRequestf("node", "%q %s", name, job.NameRule)
		}
		if _, err := s.sched.Drain(r.Context(), name, drain); err != nil {
			return 0, nil, notFound("node "+name, err)
		}
		var out api.Node
		err := s.store.View(r.Context(), func(rd store.Reader) error {
			n, err := rd.GetNode(r.Context(), name)
			if err != nil {
				return err
			}
			active, err := rd.ListTasks(r.Context(), store.TaskFilter{Node: name, States: []task.State{task.Assigned, task.Starting, task.Running}})
			if err != nil {
				return err
			}
			var used job.Resources
			for _, t := range active {
				used = used.Add(t.Resources)
			}
			out = toAPINode(n, used, len(active))
			return nil
		})
		return http.StatusOK, out, err
	}
}

// vars answers the server's counters as one JSON object, Aurora's /vars
// in JSON.
func (s *Server) vars(w http.ResponseWriter, r *http.Request) (int, any, error) {
	st := s.sched.Stats()
	return http.StatusOK, map[string]int64{
		"timed_out_tasks": st.TimedOutTasks,
		"nodes_down":      st.NodesDown,
	}, nil
}
