package param

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"text/template"

	"github.com/drover-dev/drover/internal/job"
)

// Uses reports whether a spec refers to parameters: whether any string
// [Render] would render holds "{{".
func Uses(s job.Spec) bool {
	return slices.ContainsFunc(s.Task.Command, isTemplate) ||
		slices.ContainsFunc(slices.Collect(maps.Values(s.Task.Env)), isTemplate)
}

func isTemplate(v string) bool { return strings.Contains(v, "{{") }

// Render resolves the parameter references in a spec's task.command
// elements and task.env values against the parameters of its role (ps,
// by name). A non-secret value is written into the spec; a secret one
// becomes its [Marker]. Every substituted value stays inside the one
// argument or variable it was referred from. A reference to a parameter
// that is not set is an error naming the field and the parameter, never
// an empty string; so is a template that does not parse. A marker written
// into the spec by hand is refused: markers come only from Render.
func Render(s job.Spec, ps map[string]Param) (job.Spec, error) {
	return render(s, ps, nil)
}

// RenderInputs is [Render] for a spec made from a template: in the same
// pass it also resolves {{ .Inputs.NAME }} against inputs, the value of
// each input the template declares. A reference to an input not in inputs
// is an error naming the field and the input. An input's value is taken
// as it is: the output of a reference is never read as a reference again.
func RenderInputs(s job.Spec, ps map[string]Param, inputs map[string]string) (job.Spec, error) {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(inputs)) {
		if strings.Contains(inputs[name], markerOpen) {
			errs = append(errs, job.Fieldf("inputs."+name, "must not contain %q: refer to a secret parameter as {{ .Params.NAME }}", markerOpen))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return job.Spec{}, err
	}
	if inputs == nil {
		inputs = map[string]string{}
	}
	return render(s, ps, inputs)
}

// inputValues is what a template sees as .Inputs; its own type tells the
// strict index which kind of name is missing.
type inputValues map[string]string

func render(s job.Spec, ps map[string]Param, inputs map[string]string) (job.Spec, error) {
	data := map[string]any{"Params": values(ps)}
	if inputs != nil {
		data["Inputs"] = inputValues(inputs)
	}
	var errs []error
	render := func(field, v string) string {
		if strings.Contains(v, markerOpen) {
			errs = append(errs, job.Fieldf(field, "must not contain %q: refer to a secret parameter as {{ .Params.NAME }}", markerOpen))
			return v
		}
		if !isTemplate(v) {
			return v
		}
		out, err := execute(field, v, data, s.Key.Role)
		if err != nil {
			errs = append(errs, err)
			return v
		}
		return out
	}
	out := s
	out.Task.Command = slices.Clone(s.Task.Command)
	for i, a := range out.Task.Command {
		out.Task.Command[i] = render(fmt.Sprintf("task.command[%d]", i), a)
	}
	if s.Task.Env != nil {
		out.Task.Env = make(map[string]string, len(s.Task.Env))
		for _, k := range slices.Sorted(maps.Keys(s.Task.Env)) {
			out.Task.Env[k] = render("task.env."+k, s.Task.Env[k])
		}
	}
	if err := errors.Join(errs...); err != nil {
		return job.Spec{}, err
	}
	return out, nil
}

// values is what a template sees as .Params: each value, or a secret's
// marker.
func values(ps map[string]Param) map[string]string {
	out := make(map[string]string, len(ps))
	for name, p := range ps {
		if p.Secret {
			out[name] = Marker(name)
		} else {
			out[name] = p.Value.Reveal()
		}
	}
	return out
}

var missingKey = regexp.MustCompile(`map has no entry for key "([^"]*)"`)

func execute(field, text string, data map[string]any, role string) (string, error) {
	// index is replaced by a strict one: the built-in answers "" for a
	// missing key, and a missing parameter must never be an empty string.
	strict := template.FuncMap{"index": func(m any, key string) (string, error) {
		switch m := m.(type) {
		case map[string]string:
			if v, ok := m[key]; ok {
				return v, nil
			}
			return "", &missingError{name: key}
		case inputValues:
			if v, ok := m[key]; ok {
				return v, nil
			}
			return "", &missingError{name: key, isInput: true}
		}
		return "", fmt.Errorf("index of %T: only .Params and .Inputs can be indexed", m)
	}}
	t, err := template.New(field).Option("missingkey=error").Funcs(strict).Parse(text)
	if err != nil {
		return "", job.Fieldf(field, "bad parameter reference: %s", strings.TrimPrefix(err.Error(), "template: "))
	}
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		msg := err.Error()
		var me *missingError
		switch {
		case errors.As(err, &me) && me.isInput:
			return "", job.Fieldf(field, "input %q is not declared by the template", me.name)
		case errors.As(err, &me):
			return "", job.Fieldf(field, "parameter %q is not set for role %s", me.name, role)
		}
		if m := missingKey.FindStringSubmatch(msg); m != nil {
			switch {
			case m[1] == "Inputs" && !strings.Contains(msg, "<.Params."): // data holds no .Inputs: not a template's job
				return "", job.Fieldf(field, "refers to .Inputs: only a template's job can; here only .Params.NAME is known")
			case strings.Contains(msg, "<.Params."):
				return "", job.Fieldf(field, "parameter %q is not set for role %s", m[1], role)
			case strings.Contains(msg, "<.Inputs."):
				return "", job.Fieldf(field, "input %q is not declared by the template", m[1])
			}
			known := ".Params.NAME is"
			if _, ok := data["Inputs"]; ok {
				known = ".Params.NAME and .Inputs.NAME are"
			}
			return "", job.Fieldf(field, "refers to .%s: only %s known", m[1], known)
		}
		return "", job.Fieldf(field, "bad parameter reference: %s", strings.TrimPrefix(msg, "template: "))
	}
	return b.String(), nil
}

type missingError struct {
	name    string
	isInput bool
}

func (e *missingError) Error() string {
	if e.isInput {
		return fmt.Sprintf("input %q is not declared", e.name)
	}
	return fmt.Sprintf("parameter %q is not set", e.name)
}

// Reveal puts the values of the secret parameters back in place of their
// markers, in the task an agent is about to run. lookup returns a
// parameter of the task's role. It returns the names it found no secret
// for; their markers stay as they are.
func Reveal(t job.TaskSpec, lookup func(name string) (Param, bool)) (job.TaskSpec, []string) {
	var missing []string
	reveal := func(v string) string {
		if !strings.Contains(v, markerOpen) {
			return v
		}
		return markerPattern.ReplaceAllStringFunc(v, func(m string) string {
			name := markerPattern.FindStringSubmatch(m)[1]
			p, ok := lookup(name)
			if !ok || !p.Secret {
				if !slices.Contains(missing, name) {
					missing = append(missing, name)
				}
				return m
			}
			return p.Value.Reveal()
		})
	}
	out := t
	out.Command = slices.Clone(t.Command)
	for i, a := range out.Command {
		out.Command[i] = reveal(a)
	}
	if t.Env != nil {
		out.Env = make(map[string]string, len(t.Env))
		for k, v := range t.Env {
			out.Env[k] = reveal(v)
		}
	}
	return out, missing
}

// HasMarker reports whether a task spec holds a secret parameter's marker.
func HasMarker(t job.TaskSpec) bool {
	has := func(v string) bool { return strings.Contains(v, markerOpen) }
	return slices.ContainsFunc(t.Command, has) || slices.ContainsFunc(slices.Collect(maps.Values(t.Env)), has)
}
