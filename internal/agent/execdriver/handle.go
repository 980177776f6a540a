// Package execdriver runs one task's command as a plain process on the node:
// it prepares the task's sandbox directory, starts the process with a clean
// environment in its own process group, copies its output into capped logs
// (see [tasklog]), enforces the task's timeout, and stops the whole process
// tree when asked.
//
// A task's sandbox looks like this:
//
//	Dir/work   the process's working directory and HOME
//	Dir/tmp    its TMPDIR
//	Dir/logs   stdout.<offset>.log and stderr.<offset>.log segments
//
// The package leaves to its caller (the agent) everything around the
// process: which tasks to run, reporting their state, shipping their logs,
// and deleting sandboxes. It sets no resource limits.
package execdriver

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/drover-dev/drover/internal/tasklog"
)

// drainTimeout bounds how long, after the main process ended, Done waits
// for the copies of its output to reach the end of the pipes. Processes the
// task left behind can keep a pipe open forever; when the bound passes they
// are killed, and the pipes are cut off after one more bound.
const drainTimeout = 2 * time.Second

// copyBufferSize is the size of one read from an output pipe.
const copyBufferSize = 32 << 10

// Handle is a started task process. Its methods are safe for concurrent
// use.
type Handle struct {
	proc           *os.Process
	stdout, stderr *tasklog.Log
	timeout        time.Duration
	killGrace      time.Duration
	startedAt      time.Time
	dir            string // the sandbox

	kill     chan struct{}
	killOnce sync.Once
	done     chan struct{}

	// result is written once by the supervisor before done is closed.
	result Result
}

// Start prepares the sandbox in cfg.Dir and starts the task's process. It
// returns a *[StartError] when the process itself could not be started (the
// sandbox exists by then); any other error means the config is invalid or
// the sandbox or its logs could not be made.
//
// The process runs until it ends, [Config.Timeout] passes, or
// [Handle.Kill] is called; [Handle.Done] tells when it is over.
func Start(cfg Config) (*Handle, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("exec config: %w", err)
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("sandbox dir: %w", err)
	}
	workDir, tmpDir, logDir := filepath.Join(dir, "work"), filepath.Join(dir, "tmp"), filepath.Join(dir, "logs")
	for _, d := range []string{dir, workDir, tmpDir, logDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create sandbox: %w", err)
		}
	}
	var sysCred *syscall.Credential
	if c := cfg.Credential; c != nil {
		// The task's user must reach its work and tmp directories (and
		// only those): the sandbox can be crossed but not listed.
		if err := os.Chmod(dir, 0o711); err != nil {
			return nil, fmt.Errorf("sandbox dir: %w", err)
		}
		for _, d := range []string{workDir, tmpDir} {
			if err := os.Chown(d, int(c.UID), int(c.GID)); err != nil {
				return nil, fmt.Errorf("sandbox dir for uid %d: %w", c.UID, err)
			}
		}
		sysCred = &syscall.Credential{Uid: c.UID, Gid: c.GID, Groups: []uint32{}}
	}
	env := cfg.environ(workDir, tmpDir)
	path, err := lookPath(cfg.Command[0], envValue(env, "PATH"), workDir)
	if err != nil {
		return nil, &StartError{Err: err}
	}

	// Everything opened from here on is closed again if the process does
	// not start; on success the logs go to the handle and the pipes' read
	// ends to the supervisor.
	var closers []func() error
	fail := func(err error) (*Handle, error) {
		for _, c := range closers {
			_ = c() // the error that made us give up is the one to report
		}
		return nil, err
	}
	stdout, err := tasklog.Open(logDir, "stdout", cfg.Log)
	if err != nil {
		return fail(fmt.Errorf("open stdout log: %w", err))
	}
	closers = append(closers, stdout.Close)
	stderr, err := tasklog.Open(logDir, "stderr", cfg.Log)
	if err != nil {
		return fail(fmt.Errorf("open stderr log: %w", err))
	}
	closers = append(closers, stderr.Close)
	outR, outW, err := os.Pipe()
	if err != nil {
		return fail(fmt.Errorf("stdout pipe: %w", err))
	}
	closers = append(closers, outR.Close)
	errR, errW, err := os.Pipe()
	if err != nil {
		_ = outW.Close()
		return fail(fmt.Errorf("stderr pipe: %w", err))
	}
	closers = append(closers, errR.Close)
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		_ = outW.Close()
		_ = errW.Close()
		return fail(fmt.Errorf("open %s: %w", os.DevNull, err))
	}

	proc, err := os.StartProcess(path, cfg.Command, &os.ProcAttr{
		Dir:   workDir,
		Env:   env,
		Files: []*os.File{devNull, outW, errW},
		// Setpgid puts the task in a group of its own, so it can be
		// signalled as a whole. Pdeathsig is deliberately not set: the
		// kernel fires it when the *thread* that forked the child exits,
		// and Go retires threads at will, which would kill healthy tasks.
		Sys: &syscall.SysProcAttr{Setpgid: true, Credential: sysCred},
	})
	startedAt := time.Now()
	// Only the task may hold the write ends: the copies see EOF when the
	// last process holding them is gone.
	_ = outW.Close()
	_ = errW.Close()
	_ = devNull.Close()
	if err != nil {
		return fail(&StartError{Err: &exec.Error{Name: cfg.Command[0], Err: unwrapPathError(err)}})
	}

	h := &Handle{
		proc:      proc,
		stdout:    stdout,
		stderr:    stderr,
		timeout:   cfg.Timeout,
		killGrace: cfg.KillGrace,
		startedAt: startedAt,
		dir:       dir,
		kill:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	// Best effort: without it a restarted agent cannot find this task's
	// processes, but the task runs all the same.
	_ = writePidFile(dir, proc.Pid)
	go h.supervise(outR, errR)
	return h, nil
}

// Pid returns the process id of the task's main process, which is also the
// id of its process group.
func (h *Handle) Pid() int { return h.proc.Pid }

// Stdout returns the log of the process's standard output. It stays open
// after [Handle.Done] so the caller can finish reading it; the caller closes
// it when done with it.
func (h *Handle) Stdout() *tasklog.Log { return h.stdout }

// Stderr returns the log of the process's standard error. Like
// [Handle.Stdout], the caller closes it.
func (h *Handle) Stderr() *tasklog.Log { return h.stderr }

// Done returns a channel that is closed when the process has ended, what
// it left behind has been killed, and its output has been copied into the
// logs.
func (h *Handle) Done() <-chan struct{} { return h.done }

// Result returns how the process ended. It is the zero Result until
// [Handle.Done] is closed.
func (h *Handle) Result() Result {
	select {
	case <-h.done:
		return h.result
	default:
		return Result{}
	}
}

// Kill stops the task's whole process tree: SIGTERM to its process group
// and to every descendant, even those that left the group, then SIGKILL to
// whatever is left after [Config.KillGrace]. It returns at once; wait on
// [Handle.Done]. Kill may be called any number of times, also after the
// process ended, when it does nothing.
func (h *Handle) Kill() {
	h.killOnce.Do(func() { close(h.kill) })
}

// supervise owns the task from start to Done. It waits for the main process
// to end while applying the timeout and Kill, then cleans up in this order:
//
//  1. wait (bounded) for the output copies to reach the end of the pipes;
//  2. SIGKILL whatever is left of the tree, and, if the copies are still
//     running, whatever still holds the pipes;
//  3. wait (bounded) for the copies once more, then cut them off;
//  4. reap the main process, which until then keeps the group id reserved;
//  5. record the result and close Done.
func (h *Handle) supervise(outR, errR *os.File) {
	defer close(h.done)

	inodes := pipeInodes(outR, errR)
	var logErrs [2]error
	var copies sync.WaitGroup
	copies.Go(func() { logErrs[0] = copyOutput(h.stdout, outR) })
	copies.Go(func() { logErrs[1] = copyOutput(h.stderr, errR) })
	copied := make(chan struct{})
	go func() {
		copies.Wait()
		close(copied)
	}()

	// Wait without reaping (WNOWAIT): the zombie holds on to the pid and
	// so to the group id until step 4.
	exited := make(chan time.Time, 1)
	go func() {
		var info unix.Siginfo
		for {
			err := unix.Waitid(unix.P_PID, h.proc.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
			if !errors.Is(err, unix.EINTR) {
				break // an error other than EINTR cannot be retried; Wait reports it
			}
		}
		exited <- time.Now()
	}()

	fam := newFamily(h.proc.Pid)
	defer fam.close()

	reason := ReasonExited
	kill := (<-chan struct{})(h.kill)
	var timeout, grace <-chan time.Time
	if h.timeout > 0 {
		t := time.NewTimer(h.timeout)
		defer t.Stop()
		timeout = t.C
	}
	stop := func(r Reason) {
		reason = r
		kill, timeout = nil, nil
		_ = fam.grow() // a failed walk still leaves the group to signal
		fam.signal(unix.SIGTERM)
		grace = time.After(h.killGrace)
	}
	var finishedAt time.Time
wait:
	for {
		select {
		case <-kill:
			stop(ReasonKilled)
		case <-timeout:
			stop(ReasonTimeout)
		case <-grace:
			grace = nil
			_ = fam.grow()
			fam.signal(unix.SIGKILL)
		case finishedAt = <-exited:
			break wait
		}
	}

	// Once the main process is over, the task is over: nothing it started
	// is allowed to outlive it, grace period or not.
	drain := time.NewTimer(drainTimeout)
	defer drain.Stop()
	select {
	case <-copied:
		if !fam.isAlone() {
			_ = fam.grow()
		}
		fam.signal(unix.SIGKILL)
	case <-drain.C:
		_ = fam.grow()
		_ = fam.adoptPipeWriters(inodes...)
		fam.signal(unix.SIGKILL)
		drain.Reset(drainTimeout)
		select {
		case <-copied:
		case <-drain.C:
			// Something still holds a pipe (a process stuck in the
			// kernel, or one out of reach); stop reading.
			_ = outR.SetReadDeadline(time.Now())
			_ = errR.SetReadDeadline(time.Now())
			<-copied
		}
	}
	_ = outR.Close()
	_ = errR.Close()

	state, waitErr := h.proc.Wait()
	removePidFile(h.dir)
	h.result = newResult(reason, h.timeout, state, waitErr, errors.Join(logErrs[:]...))
	h.result.StartedAt = h.startedAt
	h.result.FinishedAt = finishedAt
}

// copyOutput copies r into log until r ends or is cut off. It keeps reading
// after the log fails, so the task never blocks on a full pipe, and returns
// the first error of the log.
func copyOutput(log *tasklog.Log, r *os.File) error {
	buf := make([]byte, copyBufferSize)
	var logErr error
	for {
		n, err := r.Read(buf)
		if n > 0 && logErr == nil {
			if _, werr := log.Write(buf[:n]); werr != nil {
				logErr = werr
			}
		}
		if err != nil {
			return logErr // io.EOF, or the deadline that cut us off
		}
	}
}

// pipeInodes returns the inodes of the given pipes, skipping any that
// cannot be read. (File.Stat, not File.Fd: Fd would put the pipe in
// blocking mode, and read deadlines would stop working.)
func pipeInodes(files ...*os.File) []uint64 {
	var inodes []uint64
	for _, f := range files {
		fi, err := f.Stat()
		if err != nil {
			continue
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			inodes = append(inodes, st.Ino)
		}
	}
	return inodes
}

// envValue returns the value of key in env lines "KEY=value".
func envValue(env []string, key string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

// unwrapPathError returns the cause inside the *fs.PathError that
// os.StartProcess returns, so the message names the command only once.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
