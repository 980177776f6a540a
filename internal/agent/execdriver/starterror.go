package execdriver

// StartError is returned by [Start] when the task's process could not be
// started: the command is not found or not executable, or exec failed. It
// is the task's fault (the job names a bad command), unlike the other
// errors of Start, which are the node's (a sandbox that cannot be made).
type StartError struct {
	// Err is an *exec.Error naming the command, such as
	// `exec: "nosuchcmd": executable file not found in $PATH`.
	Err error
}

// Error returns the message of Err, which names the command.
func (e *StartError) Error() string { return e.Err.Error() }

// Unwrap returns Err, so errors.Is(err, exec.ErrNotFound) works.
func (e *StartError) Unwrap() error { return e.Err }

var _ error = (*StartError)(nil)
