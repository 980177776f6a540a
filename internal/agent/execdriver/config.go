package execdriver

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/drover-dev/drover/internal/tasklog"
)

// DefaultKillGrace is how long a stopped task's processes get between
// SIGTERM and SIGKILL when [Config.KillGrace] is zero.
const DefaultKillGrace = 5 * time.Second

// defaultPath is the task's PATH when the agent has none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Config describes one task's process.
type Config struct {
	// Dir is the task's sandbox directory, created (0700) if missing. The
	// process runs in Dir/work, which is also its HOME; its TMPDIR is
	// Dir/tmp; its output goes to Dir/logs.
	Dir string
	// Command is the argv of the process. Command[0] is looked up in the
	// PATH of the task's environment unless it holds a '/'; a relative
	// path is taken from Dir/work. It is never run through a shell.
	Command []string
	// Env is added to the task's base environment (PATH, LANG, TZ, HOME,
	// TMPDIR) and wins over it. The caller puts DROVER_* and the job's own
	// variables here. The agent's other variables never reach the task.
	Env map[string]string
	// Timeout stops the task when it runs longer. Zero means no limit.
	Timeout time.Duration
	// KillGrace is how long the processes get between SIGTERM and SIGKILL
	// when the task is stopped. Zero means [DefaultKillGrace].
	KillGrace time.Duration
	// Log caps the disk used by Dir/logs/stdout.* and stderr.*.
	Log tasklog.Config
	// Credential runs the task as another user (the agent must be root).
	// Nil runs it as the agent's user. Dir/work and Dir/tmp then belong
	// to that user; Dir/logs and the pid file stay the agent's.
	Credential *Credential
}

// Credential is a user and group to run a task as, with no supplementary
// groups. A task run so by a root agent has no capabilities.
type Credential struct {
	UID, GID uint32
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.KillGrace == 0 {
		c.KillGrace = DefaultKillGrace
	}
	return c
}

// validate reports every bad field of c at once.
func (c Config) validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("Dir: must not be empty"))
	}
	switch {
	case len(c.Command) == 0:
		errs = append(errs, errors.New("Command: must not be empty"))
	case c.Command[0] == "":
		errs = append(errs, errors.New("Command[0]: must not be empty"))
	}
	for i, arg := range c.Command {
		if strings.ContainsRune(arg, 0) {
			errs = append(errs, fmt.Errorf("Command[%d]: must not hold a NUL byte", i))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(c.Env)) {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			errs = append(errs, fmt.Errorf("Env[%q]: name must be non-empty and hold no '=' or NUL", k))
		}
		if strings.ContainsRune(c.Env[k], 0) {
			errs = append(errs, fmt.Errorf("Env[%q]: value must not hold a NUL byte", k))
		}
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("Timeout: must not be negative, got %s", c.Timeout))
	}
	if c.KillGrace < 0 {
		errs = append(errs, fmt.Errorf("KillGrace: must not be negative, got %s", c.KillGrace))
	}
	return errors.Join(errs...)
}

// environ returns the task's environment as "KEY=value" lines, sorted by
// key. Only a few of the agent's variables pass: anything else the agent
// was started with (credentials, its own settings) stays out of tasks.
func (c Config) environ(home, tmp string) []string {
	env := map[string]string{
		"PATH":   defaultPath,
		"HOME":   home,
		"TMPDIR": tmp,
	}
	if p := os.Getenv("PATH"); p != "" {
		env["PATH"] = p
	}
	for _, k := range []string{"LANG", "TZ"} {
		if v, ok := os.LookupEnv(k); ok {
			env[k] = v
		}
	}
	maps.Copy(env, c.Env)
	lines := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		lines = append(lines, k+"="+env[k])
	}
	return lines
}
