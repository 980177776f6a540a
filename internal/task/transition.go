package task

import (
	"fmt"
	"time"

	"github.com/drover-dev/drover/internal/event"
)

// Change is one transition of one task: the task as it will be stored, the
// state the store must still hold (compare-and-set), and its event. The
// store commits both together.
type Change struct {
	Task   Task
	Expect State
	Event  event.Event
}

// Move builds the transition of t to state `to`, or an error if the move is
// not in the table. It is the only place that sets a task's State: it stamps
// the time fields the new state implies and the reason, and builds the event.
func Move(t Task, to State, now time.Time, reason event.Reason, msg string) (Change, error) {
	if !CanTransition(t.State, to) {
		return Change{}, fmt.Errorf("task %s: illegal transition %s → %s", t.ID, t.State, to)
	}
	from := t.State
	t.State = to
	t.UpdatedAt = now
	t.Reason = reason
	t.Message = msg
	if to == Running && t.StartedAt == nil {
		at := now
		t.StartedAt = &at
	}
	if to.IsTerminal() && t.FinishedAt == nil {
		at := now
		t.FinishedAt = &at
	}
	return Change{
		Task:   t,
		Expect: from,
		Event: event.Event{
			At: now, Job: t.Job.String(), TaskID: t.ID, Node: t.Node,
			From: string(from), To: string(to), Reason: reason, Message: msg,
		},
	}, nil
}
