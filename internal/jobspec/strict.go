package jobspec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"

	"go.yaml.in/yaml/v3"

	"github.com/drover-dev/drover/internal/job"
)

// DecodeStrict reads data, one YAML document (or JSON, which it reads as
// [Parse] does) holding a mapping, into v, a non-nil pointer to a struct
// whose fields carry yaml tags. It is as strict as [Parse] is with job
// files: an unknown field, a value of the wrong type or a number that is
// not whole is a problem named by the field's path in the document
// ("policy.queue.high_water") and its line.
//
// Other file formats (pool files) use it so that their errors read like
// those of job files. what names the document in messages ("pool file").
// When yaml could decode the document, at least around its bad fields,
// DecodeStrict then calls convert (if not nil), which checks the decoded
// value and returns its problems named by their paths in the document;
// DecodeStrict adds the line where each such field is written, or leaves
// it out when the field is not written (a required field left out).
//
// The error is an [errors.Join] of [*job.FieldError], every problem found
// by the checker and by convert, in the order of the file; or an error
// saying why data is not a YAML mapping at all.
func DecodeStrict(data []byte, what string, v any, convert func() []*job.FieldError) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("jobspec.DecodeStrict: v must be a non-nil pointer to a struct, not %T", v))
	}
	if json.Valid(data) {
		data = yamlJSON(data)
	}
	body, err := parseMapping(data, what)
	if err != nil {
		return err
	}
	c := newChecker(body)
	c.check(body, rv.Elem().Type(), "")
	if c.isExhausted() {
		return fmt.Errorf("parse %s: aliases expand to too many values", what)
	}
	isDecoded := true
	if c.isClean() {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(v); err != nil {
			return fmt.Errorf("decode %s: %w", what, err)
		}
	} else {
		// As Parse does: decode what yaml can around a TypeError, so that
		// the problems with values come out with those of the structure.
		var te *yaml.TypeError
		err := body.Decode(v)
		isDecoded = err == nil || errors.As(err, &te)
	}
	if isDecoded && convert != nil {
		for _, e := range convert() {
			c.add(e.Field, e.Msg)
		}
	}
	err = c.err()
	if err == nil {
		return nil
	}
	// The checker names the document itself "job file".
	errs := job.Unjoin(err)
	for _, e := range errs {
		var fe *job.FieldError
		if errors.As(e, &fe) && fe.Field == "job file" {
			fe.Field = what
		}
	}
	return errors.Join(errs...)
}

// parseMapping parses data as one YAML document holding a mapping, and
// returns the mapping's node; what names the document in errors.
func parseMapping(data []byte, what string) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		return nil, fmt.Errorf("%s is empty", what)
	case err != nil:
		return nil, fmt.Errorf("parse %s: %w", what, err)
	}
	for {
		var more yaml.Node
		err := dec.Decode(&more)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", what, err)
		}
		if len(more.Content) > 0 && more.Content[0].ShortTag() != "!!null" {
			return nil, fmt.Errorf("%s holds a second YAML document (line %d): write one per file", what, more.Content[0].Line)
		}
	}
	if len(doc.Content) == 0 || doc.Content[0].ShortTag() == "!!null" {
		return nil, fmt.Errorf("%s is empty", what)
	}
	body := doc.Content[0]
	if resolve(body).Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s must be a mapping of fields, not %s (line %d)", what, describe(body), body.Line)
	}
	return body, nil
}
