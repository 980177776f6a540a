package execdriver

import (
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Reason says why a task's process ended.
type Reason string

// Reasons. The handle's supervisor sets exactly one per task: the first of
// timeout and Kill to happen wins, and a process that ended before either is
// ReasonExited.
const (
	// ReasonExited: the process ended by itself, with an exit code or by a
	// signal nobody in drover sent.
	ReasonExited Reason = "exited"
	// ReasonTimeout: the process outlived [Config.Timeout] and was stopped.
	ReasonTimeout Reason = "timeout"
	// ReasonKilled: [Handle.Kill] stopped the process.
	ReasonKilled Reason = "killed"
)

// Result is how a task's process ended.
type Result struct {
	// ExitCode is the process's exit status, or -1 when a signal ended it.
	ExitCode int
	// Signal names the signal that ended the process ("SIGKILL"), or is
	// empty when it exited.
	Signal string
	// Reason says why the process ended.
	Reason Reason
	// Message says what happened in words, for people: "exit code 3",
	// "killed by signal SIGKILL", "timed out after 30s", "killed on
	// request". Output that could not be stored is mentioned after it.
	Message string
	// StartedAt is when the process started.
	StartedAt time.Time
	// FinishedAt is when the process ended.
	FinishedAt time.Time
}

// newResult builds the Result of a process that was stopped for reason
// (ReasonExited when nobody stopped it) and ended with state.
func newResult(reason Reason, timeout time.Duration, state *os.ProcessState, waitErr, logErr error) Result {
	r := Result{ExitCode: -1, Reason: reason}
	switch ws, ok := sysStatus(state); {
	case waitErr != nil:
		r.Message = fmt.Sprintf("wait for process: %v", waitErr)
	case ok && ws.Signaled():
		r.Signal = unix.SignalName(ws.Signal())
		r.Message = "killed by signal " + r.Signal
	default:
		r.ExitCode = state.ExitCode()
		r.Message = fmt.Sprintf("exit code %d", r.ExitCode)
	}
	switch reason {
	case ReasonTimeout:
		r.Message = fmt.Sprintf("timed out after %s", timeout)
	case ReasonKilled:
		r.Message = "killed on request"
	}
	if logErr != nil {
		r.Message += fmt.Sprintf("; output lost: %v", logErr)
	}
	return r
}

// sysStatus returns the wait status of state, if it has one.
func sysStatus(state *os.ProcessState) (syscall.WaitStatus, bool) {
	if state == nil {
		return 0, false
	}
	ws, ok := state.Sys().(syscall.WaitStatus)
	return ws, ok
}
