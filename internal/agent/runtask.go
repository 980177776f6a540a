package agent

import (
	"context"
	"time"

	"github.com/drover-dev/drover/internal/agent/execdriver"
	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/event"
	"github.com/drover-dev/drover/internal/task"
	"github.com/drover-dev/drover/internal/tasklog"
)

// Log shipping bounds.
const (
	shipEvery    = 500 * time.Millisecond
	maxChunk     = 1 << 20
	finalShipTry = 5
)

// runTask is one task the agent holds.
type runTask struct {
	agent  *Agent
	as     api.Assignment
	handle *execdriver.Handle // nil if it never started
	status api.TaskStatus     // guarded by agent.mu
	killed bool               // the task is being stopped; guarded by agent.mu
	why    string             // why it is stopped: killOrdered, or the agent's reason; guarded by agent.mu
	// unhealthy says the health check stopped it; guarded by agent.mu.
	unhealthy bool
	// env is the task's environment, for its health check command.
	env map[string]string
	// ports are the allocated ports, by name.
	ports map[string]int
	// shipped is how far each stream has been uploaded.
	shipped [2]int64
}

func (t *runTask) setStatus(f func(*api.TaskStatus)) {
	t.agent.mu.Lock()
	f(&t.status)
	t.agent.mu.Unlock()
	t.agent.changed()
}

// killOrdered is the why of a kill the server ordered.
const killOrdered = "ordered"

// kill stops the task. why is [killOrdered], or says why the agent stops
// it on its own ("" when the agent itself is stopping).
func (t *runTask) kill(why string) {
	t.agent.mu.Lock()
	t.killed = true
	if t.why != killOrdered {
		t.why = why
	}
	h := t.handle
	t.agent.mu.Unlock()
	if h != nil {
		h.Kill()
	}
}

// watch ships output while the task runs, and when it ends ships the rest
// and then reports the end: the server's copy of the log is complete by
// the time it hears the task ended.
func (t *runTask) watch(ctx context.Context) {
	h := t.handle
	if t.as.Health != nil {
		hctx, stop := context.WithCancel(ctx)
		defer stop()
		go t.checkHealth(hctx)
	}
	tick := time.NewTicker(shipEvery)
	defer tick.Stop()
	for running := true; running; {
		select {
		case <-h.Done():
			running = false
		case <-tick.C:
			t.ship(ctx)
		case <-ctx.Done():
			// Shutting down: the agent kills the task; wait for its end.
			<-h.Done()
			running = false
		}
	}
	for i := 0; i < finalShipTry; i++ {
		if t.ship(context.WithoutCancel(ctx)) {
			break
		}
		time.Sleep(time.Duration(i+1) * 200 * time.Millisecond)
	}
	// The output is on the server (or given up on); the agent keeps the
	// files in the sandbox but needs them open no longer.
	_ = h.Stdout().Close()
	_ = h.Stderr().Close()
	res := h.Result()
	t.agent.mu.Lock()
	killed := t.killed
	t.agent.mu.Unlock()
	fin := res.FinishedAt.UTC()
	diskFull := t.diskFullNote()
	t.setStatus(func(st *api.TaskStatus) {
		code := res.ExitCode
		st.ExitCode = &code
		st.FinishedAt = &fin
		st.Message = res.Message
		switch {
		case res.Reason == execdriver.ReasonTimeout:
			st.State, st.Reason = string(task.Failed), string(event.Timeout)
		case killed || res.Reason == execdriver.ReasonKilled:
			st.State, st.Reason = string(task.Killed), string(event.Killed)
			switch {
			case t.why == killOrdered:
			case t.why == "":
				st.Message = "killed: the agent on node " + t.agent.cfg.Name + " stopped"
			case t.unhealthy:
				st.State, st.Reason, st.Message = string(task.Failed), string(event.HealthFailed), t.why
			default:
				// Not the job's doing nor a user's: the fleet's, so LOST
				// (rescheduled within the job's budget).
				st.State, st.Reason, st.Message = string(task.Lost), string(event.AgentStopped), "killed: "+t.why
			}
		case res.ExitCode == 0 && res.Signal == "":
			st.State, st.Reason = string(task.Succeeded), string(event.Exited)
		default:
			st.State, st.Reason = string(task.Failed), string(event.Exited)
		}
		if st.State == string(task.Failed) {
			st.Message += diskFull
		}
	})
}

// ship uploads what each stream has that the server lacks. It reports
// whether everything was sent.
func (t *runTask) ship(ctx context.Context) bool {
	ok := true
	for i, lg := range []*tasklog.Log{t.handle.Stdout(), t.handle.Stderr()} {
		stream := [...]string{"stdout", "stderr"}[i]
		buf := make([]byte, 0)
		for t.shipped[i] < lg.End() {
			if cap(buf) == 0 {
				buf = make([]byte, maxChunk)
			}
			n, start, err := lg.ReadAt(t.shipped[i], buf)
			if n == 0 || (err != nil && n == 0) {
				break
			}
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err = t.agent.cfg.Client.UploadLog(cctx, api.LogChunk{TaskID: t.as.TaskID, Stream: stream, Offset: start, Data: buf[:n]})
			cancel()
			if err != nil {
				t.agent.log.Debug("log upload failed", "task", t.as.TaskID, "err", err)
				ok = false
				break
			}
			t.shipped[i] = start + int64(n)
		}
	}
	return ok
}
