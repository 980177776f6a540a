package jobspec

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/template"
)

// templateFileType is what a template document decodes into.
var templateFileType = reflect.TypeFor[api.TemplateFile]()

// ParseTemplate reads a template file: its key (template:), its inputs
// and its job, a job document without the `job:` key, which the
// template's key fills in. It is as strict as [Parse]: every bad field is
// reported at once, as a [*job.FieldError] named by its path in the file
// ("job.task.timeout", "inputs[1].name") and, where the field is written,
// ending with its line.
//
// References ({{ .Inputs.NAME }}, {{ .Params.NAME }}) are left as they are
// written: a launch renders them.
func ParseTemplate(data []byte) (template.Spec, error) {
	body, err := parseDocument(data)
	if err != nil {
		return template.Spec{}, fmt.Errorf("template file: %w", err)
	}
	if body.Kind != yaml.MappingNode {
		return template.Spec{}, fmt.Errorf("template file must be a mapping with template, inputs and job, not a list (line %d)", body.Line)
	}
	c := newChecker(body)
	c.check(body, templateFileType, "")
	if c.isExhausted() {
		return template.Spec{}, errors.New("parse template file: aliases expand to too many values")
	}
	var doc api.TemplateFile
	isDecoded := true
	if c.isClean() {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&doc); err != nil {
			return template.Spec{}, fmt.Errorf("decode template file: %w", err)
		}
	} else {
		var te *yaml.TypeError
		err := body.Decode(&doc)
		isDecoded = err == nil || errors.As(err, &te)
	}
	var out template.Spec
	if isDecoded {
		out = toTemplate(c, doc)
	}
	if err := c.err(); err != nil {
		return template.Spec{}, err
	}
	return out, nil
}

// toTemplate converts a decoded template document, recording its problems
// in c.
func toTemplate(c *checker, doc api.TemplateFile) template.Spec {
	var out template.Spec
	keyOK := false
	switch k, err := job.ParseKey(doc.Template); {
	case doc.Template == "":
		c.add("template", "must be set, as ROLE/ENV/NAME: the key of the jobs it makes")
	case err != nil:
		c.add("template", strings.TrimPrefix(err.Error(), "job key "))
	default:
		out.Key, keyOK = k, true
	}
	for _, in := range doc.Inputs {
		ti := template.Input{Name: in.Name, Required: in.Required}
		if in.Default != nil {
			ti.Default, ti.HasDefault = *in.Default, true
		}
		out.Inputs = append(out.Inputs, ti)
	}
	for _, e := range job.Unjoin(out.Validate()) {
		var fe *job.FieldError
		if errors.As(e, &fe) {
			c.add(fe.Field, fe.Msg)
		}
	}
	if doc.Job.Job != "" {
		c.add("job.job", "must be left out: the template's key (template:) names the jobs it makes")
	}
	jd := doc.Job
	jd.Job = out.Key.String()
	spec, errs := toSpec(jd)
	for _, e := range errs {
		if e.Field == "job" && (!keyOK || doc.Job.Job != "") {
			continue // said of template: or job.job above
		}
		c.add(itemPath("job", e.Field), e.Msg)
	}
	out.Job = spec
	return out
}
