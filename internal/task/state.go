// Package task holds the life of a task — one attempt to run one instance of
// a job on one node: its states, the one table of legal transitions, and the
// reasons recorded with each transition. Persistence lives in store; who
// moves tasks lives in scheduler.
package task

import "fmt"

// State is where a task is in its life. See DESIGN.md, "Task life".
type State string

const (
	// Pending: created by the scheduler (new job, retry, reschedule); waits
	// for placement and, after a failure, for its backoff.
	Pending State = "PENDING"
	// Assigned: the scheduler placed it on a node; the agent has not yet
	// said it is starting.
	Assigned State = "ASSIGNED"
	// Starting: the agent is preparing the sandbox and starting the process.
	Starting State = "STARTING"
	// Running: the agent reports the process is alive.
	Running State = "RUNNING"
	// Succeeded: the process exited 0. Terminal.
	Succeeded State = "SUCCEEDED"
	// Failed: the job's own fault — exit code ≠ 0, timeout, or a command
	// that could not start. Counts against the job's retry budget. Terminal.
	Failed State = "FAILED"
	// Killed: stopped because someone asked. Terminal.
	Killed State = "KILLED"
	// Lost: the fleet's fault — node down, agent gone, startup too slow.
	// Counts against the reschedule budget. Terminal.
	Lost State = "LOST"
)

// States lists every state in life order.
var States = []State{Pending, Assigned, Starting, Running, Succeeded, Failed, Killed, Lost}

// IsTerminal reports whether s is an end state.
func (s State) IsTerminal() bool {
	switch s {
	case Succeeded, Failed, Killed, Lost:
		return true
	}
	return false
}

// IsActive reports whether a task in s holds resources on a node.
func (s State) IsActive() bool {
	switch s {
	case Assigned, Starting, Running:
		return true
	}
	return false
}

// transitions is the one table of legal moves. Any pair not listed here is
// illegal; the store refuses it.
var transitions = map[State][]State{
	Pending:  {Assigned, Killed},
	Assigned: {Starting, Killed, Lost},
	Starting: {Running, Failed, Killed, Lost},
	Running:  {Succeeded, Failed, Killed, Lost},
}

// CanTransition reports whether from → to is legal.
func CanTransition(from, to State) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Path returns the legal states a task moves through to get from `from` to
// `to`, excluding from and including to, walking the normal life order
// (PENDING → ASSIGNED → STARTING → RUNNING → end). An agent that saw a task
// start and end between two syncs reports only the end; the server records
// every step it passed. It returns an error when no such path exists.
func Path(from, to State) ([]State, error) {
	order := []State{Pending, Assigned, Starting, Running}
	var path []State
	cur := from
	for i := 0; i < len(order)+1; i++ {
		if CanTransition(cur, to) {
			return append(path, to), nil
		}
		next := State("")
		for j, s := range order {
			if s == cur && j+1 < len(order) {
				next = order[j+1]
			}
		}
		if next == "" {
			break
		}
		path = append(path, next)
		cur = next
	}
	return nil, fmt.Errorf("no legal path from %s to %s", from, to)
}

// ParseState parses a state name.
func ParseState(s string) (State, error) {
	for _, st := range States {
		if string(st) == s {
			return st, nil
		}
	}
	return "", fmt.Errorf("unknown task state %q", s)
}
