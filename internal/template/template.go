// Package template owns job templates: a job spec with declared inputs,
// which a launch fills in to make a job. It holds the types and the rules
// for inputs; reading template files is package jobspec's business,
// rendering the references ({{ .Inputs.NAME }}, {{ .Params.NAME }}) is
// package param's, and storing templates is the store's.
package template

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/drover-dev/drover/internal/job"
)

// Template is a stored template: its key and the file that defines it,
// kept verbatim so that showing it gives back what was written. Parse
// Source (jobspec.ParseTemplate) for its [Spec].
type Template struct {
	// Key is the key of the jobs the template makes.
	Key       job.Key
	Source    string
	UpdatedAt time.Time
}

// Spec is a parsed template file.
type Spec struct {
	// Key is the key of the jobs the template makes; Job.Key is the same.
	Key    job.Key
	Inputs []Input
	// Job is the spec a launch renders, its references left as written.
	Job job.Spec
}

// Input is a value a launch supplies, which the job refers to as
// {{ .Inputs.NAME }}.
type Input struct {
	Name string
	// Default is the value when a launch gives none; only if HasDefault.
	Default    string
	HasDefault bool
	// Required inputs have no default: a launch must give them. An input
	// is either required or has a default.
	Required bool
}

// InputNameRule says what an input name may be: a name a template can
// refer to as .Inputs.NAME.
const InputNameRule = "must start with a letter or _ and hold only letters, digits and _"

var inputName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ValidInputName reports whether name obeys [InputNameRule].
func ValidInputName(name string) bool { return len(name) <= 64 && inputName.MatchString(name) }

// Validate reports every problem with the declared inputs at once, each a
// [job.FieldError] named by its path in the file ("inputs[1].name").
func (s Spec) Validate() error {
	var errs []error
	seen := map[string]int{}
	for i, in := range s.Inputs {
		path := fmt.Sprintf("inputs[%d]", i)
		switch {
		case in.Name == "":
			errs = append(errs, job.Fieldf(path+".name", "must be set"))
		case !ValidInputName(in.Name):
			errs = append(errs, job.Fieldf(path+".name", "%q %s", in.Name, InputNameRule))
		default:
			if j, ok := seen[in.Name]; ok {
				errs = append(errs, job.Fieldf(path+".name", "%q is also the name of inputs[%d]", in.Name, j))
			} else {
				seen[in.Name] = i
			}
		}
		switch {
		case in.Required && in.HasDefault:
			errs = append(errs, job.Fieldf(path+".default", "must not be set on a required input: a launch must give it"))
		case !in.Required && !in.HasDefault:
			// An input that could be left empty would render as "", which
			// is what the strictness about references is there to avoid.
			errs = append(errs, job.Fieldf(path, "needs a default, or required: true"))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errors.Join(errs...)
}

// Values returns the value of each declared input for a launch that sets
// set: the given value, else the default. A name the template does not
// declare is an error naming it, and so is a required input left unset;
// every such problem is reported at once.
func (s Spec) Values(set map[string]string) (map[string]string, error) {
	var errs []error
	declared := make(map[string]bool, len(s.Inputs))
	for _, in := range s.Inputs {
		declared[in.Name] = true
	}
	for _, name := range slices.Sorted(maps.Keys(set)) {
		if !declared[name] {
			errs = append(errs, job.Fieldf("inputs."+name, "template %s declares no input %q (it declares: %s)", s.Key, name, s.names()))
		}
	}
	out := make(map[string]string, len(s.Inputs))
	for _, in := range s.Inputs {
		v, ok := set[in.Name]
		switch {
		case ok:
			out[in.Name] = v
		case in.HasDefault:
			out[in.Name] = in.Default
		default: // required, by Validate
			errs = append(errs, job.Fieldf("inputs."+in.Name, "input %q is required by template %s: give it with --set %s=VALUE", in.Name, s.Key, in.Name))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func (s Spec) names() string {
	if len(s.Inputs) == 0 {
		return "none"
	}
	ns := make([]string, len(s.Inputs))
	for i, in := range s.Inputs {
		ns[i] = in.Name
	}
	return strings.Join(ns, ", ")
}
