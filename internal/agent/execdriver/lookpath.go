package execdriver

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// lookPath finds the executable for name the way a shell would, but in the
// PATH of the task's environment rather than the agent's (which is what
// os/exec.LookPath uses). A name holding a '/' is a path, taken relative to
// workDir. Errors are *exec.Error values, so they read like os/exec's:
// `exec: "nosuchcmd": executable file not found in $PATH`.
func lookPath(name, path, workDir string) (string, error) {
	if strings.Contains(name, "/") {
		file := name
		if !filepath.IsAbs(file) {
			file = filepath.Join(workDir, file)
		}
		if err := checkExecutable(file); err != nil {
			return "", &exec.Error{Name: name, Err: err}
		}
		return file, nil
	}
	for _, dir := range filepath.SplitList(path) {
		// Empty and relative entries would resolve against the sandbox,
		// which the task's author rarely means; os/exec refuses them too
		// (exec.ErrDot).
		if !filepath.IsAbs(dir) {
			continue
		}
		file := filepath.Join(dir, name)
		if checkExecutable(file) == nil {
			return file, nil
		}
	}
	return "", &exec.Error{Name: name, Err: exec.ErrNotFound}
}

// checkExecutable reports why file cannot be executed, or nil.
func checkExecutable(file string) error {
	fi, err := os.Stat(file)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return pe.Err // the name is already in the exec.Error
		}
		return err
	}
	switch {
	case fi.IsDir():
		return syscall.EISDIR
	case fi.Mode()&0o111 == 0:
		return fs.ErrPermission
	}
	return nil
}
