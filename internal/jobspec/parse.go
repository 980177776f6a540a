// Package jobspec reads job files: YAML documents, and the JSON bodies of
// POST /v1/jobs, which the same parser reads (JSON is YAML, once a few of its
// strings are re-escaped). It decodes a document strictly into the wire type
// [api.JobSpec], fills in defaults, converts it to the domain type [job.Spec]
// and validates it, reporting every bad field at once by its path in the file
// ("[1].task.timeout") and its line. [Format] converts back, for display.
//
// The rules a spec must obey belong to package job ([job.Spec.Validate]);
// this package owns only the file format: field names, units, defaults and
// where in the file a problem is. Storing specs is the store's business.
package jobspec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"

	"go.yaml.in/yaml/v3"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/job"
)

// errEmpty is the answer to a document with no job in it.
var errEmpty = errors.New("job file is empty: expected a job mapping or a list of job mappings")

// jobSpecType is what each job of a document decodes into.
var jobSpecType = reflect.TypeFor[api.JobSpec]()

// Parse reads a job document: one job mapping, or a list of them. It returns
// the jobs in the order written, each with defaults filled in and valid by
// [job.Spec.Validate], or no jobs and an error.
//
// A JSON document is read as JSON, even where YAML would read it otherwise.
//
// When the document is well-formed YAML (or JSON) but some of its fields are
// not, the error is an [errors.Join] of [*job.FieldError] values, one per bad
// field, each named by its path in the document ("task.resources.memory",
// "constraints[0].operator", and "[1].task.timeout" for the second job of a
// list) and, where the field is written, ending with its line.
func Parse(data []byte) ([]job.Spec, error) {
	if json.Valid(data) {
		data = yamlJSON(data)
	}
	body, err := parseDocument(data)
	if err != nil {
		return nil, err
	}
	items, prefix := []*yaml.Node{body}, func(int) string { return "" }
	if body.Kind == yaml.SequenceNode {
		if len(body.Content) == 0 {
			return nil, errors.New("job file lists no jobs")
		}
		items, prefix = body.Content, func(i int) string { return fmt.Sprintf("[%d]", i) }
	}

	c := newChecker(body)
	for i, n := range items {
		if resolve(n).ShortTag() == "!!null" {
			c.bad(prefix(i), n, "is empty, expected a job mapping")
			continue
		}
		c.check(n, jobSpecType, prefix(i))
	}
	if c.isExhausted() {
		return nil, errors.New("parse job file: aliases expand to too many values")
	}

	var docs []api.JobSpec
	isDecoded := make([]bool, len(items))
	if c.isClean() {
		// The checker found nothing wrong, so this should not fail; it is
		// yaml, not the checker, that decides what the fields hold.
		if docs, err = decodeStrict(data, body.Kind == yaml.SequenceNode); err != nil {
			return nil, fmt.Errorf("decode job file: %w", err)
		}
		for i := range isDecoded {
			isDecoded[i] = true
		}
	} else {
		// Decode what yaml can, so that the problems with values are
		// reported along with those of the structure. yaml decodes every
		// field it can around a TypeError, but gives up on other errors,
		// such as a key given twice.
		docs = make([]api.JobSpec, len(items))
		for i, n := range items {
			var te *yaml.TypeError
			err := n.Decode(&docs[i])
			isDecoded[i] = err == nil || errors.As(err, &te)
		}
	}

	specs := make([]job.Spec, 0, len(docs))
	seen := map[job.Key]int{}
	for i, d := range docs {
		if !isDecoded[i] {
			continue
		}
		p := prefix(i)
		s, errs := toSpec(d)
		for _, e := range errs {
			c.add(itemPath(p, e.Field), e.Msg)
		}
		if len(errs) == 0 {
			if j, ok := seen[s.Key]; ok {
				c.add(itemPath(p, "job"), fmt.Sprintf("%q is also the key of job %s", s.Key.String(), prefix(j)))
			} else {
				seen[s.Key] = i
			}
		}
		specs = append(specs, s)
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	return specs, nil
}

// itemPath appends a path within a job to the path of the job in the file
// ("[1]", or "" when the file holds one job).
func itemPath(item, field string) string {
	switch {
	case item == "":
		return field
	case field == "":
		return item
	}
	return item + "." + field
}

// parseDocument parses data as one YAML document and returns the node of
// its content, a mapping or a sequence.
func parseDocument(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		return nil, errEmpty
	case err != nil:
		return nil, fmt.Errorf("parse job file: %w", err)
	}
	// A "---" after the job starts a second document. yaml would silently
	// ignore it; someone who wrote it meant a second job.
	for {
		var more yaml.Node
		err := dec.Decode(&more)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("parse job file: %w", err)
		}
		if len(more.Content) > 0 && more.Content[0].ShortTag() != "!!null" {
			return nil, fmt.Errorf("job file holds a second YAML document (line %d): write several jobs as one list", more.Content[0].Line)
		}
	}
	if len(doc.Content) == 0 {
		return nil, errEmpty
	}
	body := doc.Content[0]
	switch {
	case body.ShortTag() == "!!null":
		return nil, errEmpty
	case body.Kind != yaml.MappingNode && body.Kind != yaml.SequenceNode:
		return nil, fmt.Errorf("job file must be a job mapping or a list of job mappings, not %s (line %d)", describe(body), body.Line)
	}
	return body, nil
}

// decodeStrict decodes data into one job spec, or a list of them, failing on
// any field api.JobSpec does not have.
func decodeStrict(data []byte, isList bool) ([]api.JobSpec, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if isList {
		var docs []api.JobSpec
		err := dec.Decode(&docs)
		return docs, err
	}
	var doc api.JobSpec
	err := dec.Decode(&doc)
	return []api.JobSpec{doc}, err
}
