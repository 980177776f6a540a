package task_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/event"
	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/task"
)

var (
	t0  = time.Date(2030, time.March, 4, 5, 6, 7, 0, time.UTC)
	t1  = t0.Add(time.Minute)
	key = job.Key{Role: "demo", Env: "dev", Name: "hello"}
)

// newTask returns a task in state, stamped at t0, changed by opts.
func newTask(state task.State, opts ...func(*task.Task)) task.Task {
	tk := task.Task{
		ID: "task0001", Job: key, JobVersion: 1, Instance: 2, Attempt: 1,
		State: state, Node: "node-1", Priority: 10,
		Resources: job.Resources{CPU: 100, Memory: 64 << 20},
		Reason:    event.Submitted, CreatedAt: t0, NotBefore: t0, UpdatedAt: t0,
	}
	if state == task.Pending {
		tk.Node = ""
	}
	for _, o := range opts {
		o(&tk)
	}
	return tk
}

func TestMove(t *testing.T) {
	t.Parallel()
	started := t0.Add(time.Second)
	exit1 := 1
	tests := []struct {
		name   string
		in     task.Task
		to     task.State
		reason event.Reason
		msg    string
		// want changes the input task into the task the change stores.
		want func(*task.Task)
	}{
		{
			name: "placed", in: newTask(task.Pending), to: task.Assigned, reason: event.Placed, msg: "on node node-1",
			want: func(tk *task.Task) {},
		},
		{
			name: "starting sets no time", in: newTask(task.Assigned), to: task.Starting, reason: event.AgentStart,
			want: func(tk *task.Task) {},
		},
		{
			name: "running stamps StartedAt", in: newTask(task.Starting), to: task.Running, reason: event.Started,
			want: func(tk *task.Task) { tk.StartedAt = &t1 },
		},
		{
			name: "running keeps the agent's StartedAt", in: newTask(task.Starting, func(tk *task.Task) { tk.StartedAt = &started }),
			to: task.Running, reason: event.Started,
			want: func(tk *task.Task) {},
		},
		{
			name: "succeeded stamps FinishedAt", in: newTask(task.Running, func(tk *task.Task) { tk.StartedAt = &started }),
			to: task.Succeeded, reason: event.Exited, msg: "exit code 0",
			want: func(tk *task.Task) { tk.FinishedAt = &t1 },
		},
		{
			name: "failed keeps exit code", in: newTask(task.Running, func(tk *task.Task) { tk.ExitCode = &exit1 }),
			to: task.Failed, reason: event.Exited, msg: "exit code 1",
			want: func(tk *task.Task) { tk.FinishedAt = &t1 },
		},
		{
			name: "killed while pending", in: newTask(task.Pending), to: task.Killed, reason: event.KillRequest, msg: "killed before it was placed",
			want: func(tk *task.Task) { tk.FinishedAt = &t1 },
		},
		{
			name: "lost keeps the agent's FinishedAt", in: newTask(task.Assigned, func(tk *task.Task) { tk.FinishedAt = &started }),
			to: task.Lost, reason: event.AgentLost,
			want: func(tk *task.Task) {},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := tt.in
			before := in
			ch, err := task.Move(in, tt.to, t1, tt.reason, tt.msg)
			require.NoError(t, err)
			require.Equal(t, before, in, "Move must not change its argument")

			want := tt.in
			want.State, want.UpdatedAt, want.Reason, want.Message = tt.to, t1, tt.reason, tt.msg
			tt.want(&want)
			require.Empty(t, cmp.Diff(want, ch.Task))
			require.Equal(t, tt.in.State, ch.Expect, "the store compares against the state the task was in")
			require.Empty(t, cmp.Diff(event.Event{
				At: t1, Job: "demo/dev/hello", TaskID: "task0001", Node: tt.in.Node,
				From: string(tt.in.State), To: string(tt.to), Reason: tt.reason, Message: tt.msg,
			}, ch.Event))
		})
	}
}

func TestMoveStampsCopies(t *testing.T) {
	t.Parallel()
	ch, err := task.Move(newTask(task.Starting), task.Running, t1, event.Started, "")
	require.NoError(t, err)
	require.NotNil(t, ch.Task.StartedAt)
	// The stamp is the task's own: moving the next task at another time
	// does not change this one.
	other, err := task.Move(newTask(task.Starting), task.Running, t1.Add(time.Hour), event.Started, "")
	require.NoError(t, err)
	require.NotSame(t, ch.Task.StartedAt, other.Task.StartedAt)
	require.True(t, ch.Task.StartedAt.Equal(t1))
}

func TestMoveRefusesIllegalMoves(t *testing.T) {
	t.Parallel()
	for _, from := range task.States {
		for _, to := range task.States {
			if legal[[2]task.State{from, to}] {
				continue
			}
			t.Run(fmt.Sprintf("%s→%s", from, to), func(t *testing.T) {
				t.Parallel()
				ch, err := task.Move(newTask(from), to, t1, event.Placed, "x")
				require.Error(t, err)
				require.ErrorContains(t, err, "task0001")
				require.ErrorContains(t, err, fmt.Sprintf("%s → %s", from, to))
				require.Empty(t, cmp.Diff(task.Change{}, ch))
			})
		}
	}
}

// TestMoveChain walks a task through a whole life by Move alone, as the
// scheduler does, and checks each step's event and the final times.
func TestMoveChain(t *testing.T) {
	t.Parallel()
	tk := newTask(task.Pending)
	steps := []struct {
		to     task.State
		reason event.Reason
	}{
		{task.Assigned, event.Placed},
		{task.Starting, event.AgentStart},
		{task.Running, event.Started},
		{task.Succeeded, event.Exited},
	}
	var events []string
	at := t0
	for _, s := range steps {
		at = at.Add(time.Second)
		ch, err := task.Move(tk, s.to, at, s.reason, "")
		require.NoError(t, err)
		events = append(events, ch.Event.From+"→"+ch.Event.To+" "+string(ch.Event.Reason))
		tk = ch.Task
	}
	require.Equal(t, []string{
		"PENDING→ASSIGNED placed",
		"ASSIGNED→STARTING agent_start",
		"STARTING→RUNNING started",
		"RUNNING→SUCCEEDED exited",
	}, events)
	require.True(t, tk.StartedAt.Equal(t0.Add(3*time.Second)))
	require.True(t, tk.FinishedAt.Equal(t0.Add(4*time.Second)))
	_, err := task.Move(tk, task.Failed, at, event.Exited, "")
	require.Error(t, err, "an ended task stays ended")
}
