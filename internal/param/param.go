// Package param holds a role's (tenant's) named parameters and the rules
// for using them in jobs: where a job may refer to them ({{ .Params.NAME }}
// in task.command and task.env values, nowhere else), how a reference is
// resolved at submit, and how a secret one stays out of the stored spec
// (a [Marker] takes its place until the server hands the task to an
// agent). Persistence lives in store; HTTP lives in server.
package param

import (
	"errors"
	"regexp"
	"strings"
	"time"

	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/secret"
)

// MaxValue is the largest value a parameter holds, in bytes.
const MaxValue = 64 << 10

// Param is one named value of a role. A secret one is held as a
// [secret.String], so it redacts itself wherever it is printed.
type Param struct {
	Role, Name string
	Value      secret.String
	// Secret says the value is shown only on an explicit, permissioned
	// read, and is kept out of stored job specs.
	Secret    bool
	UpdatedAt time.Time
}

// Validate checks the role and name (job.ValidName) and the value.
func (p Param) Validate() error {
	var errs []error
	if !job.ValidName(p.Role) {
		errs = append(errs, job.Fieldf("role", "%q %s", p.Role, job.NameRule))
	}
	if !job.ValidName(p.Name) {
		errs = append(errs, job.Fieldf("name", "%q %s", p.Name, job.NameRule))
	}
	v := p.Value.Reveal()
	switch {
	case len(v) > MaxValue:
		errs = append(errs, job.Fieldf("value", "must be at most %d bytes, not %d", MaxValue, len(v)))
	case strings.ContainsRune(v, 0):
		errs = append(errs, job.Fieldf("value", "must not contain a NUL byte"))
	case strings.Contains(v, markerOpen):
		// A value holding a marker would be replaced by a secret when
		// the task is handed out.
		errs = append(errs, job.Fieldf("value", "must not contain %q, which marks a secret parameter in a job", markerOpen))
	}
	return errors.Join(errs...)
}

// Shown is the value as a listing shows it: the value, or
// [secret.Redacted] for a secret.
func (p Param) Shown() string {
	if p.Secret {
		return secret.Redacted
	}
	return p.Value.Reveal()
}

const (
	markerOpen  = "⟦secret:"
	markerClose = "⟧"
)

// Marker is what a stored job spec holds in place of the secret parameter
// name: it names the parameter, never its value.
func Marker(name string) string { return markerOpen + name + markerClose }

var markerPattern = regexp.MustCompile(`⟦secret:([a-z0-9][a-z0-9_.-]{0,62})⟧`)
