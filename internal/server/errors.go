package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"syscall"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/scheduler"
	"github.com/drover-dev/drover/internal/store"
)

// badRequest is a client mistake outside a job spec: a bad query parameter,
// a body that is not JSON.
type badRequest struct {
	field string
	msg   string
}

func (e *badRequest) Error() string {
	if e.field == "" {
		return e.msg
	}
	return e.field + ": " + e.msg
}

func badRequestf(field, format string, args ...any) error {
	return &badRequest{field: field, msg: fmt.Sprintf(format, args...)}
}

// handlerFunc is a handler that returns a value to encode as JSON (with its
// status) or an error that [respond] maps to a status and a JSON body.
type handlerFunc func(w http.ResponseWriter, r *http.Request) (int, any, error)

func (s *Server) wrap(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		code, v, err := h(w, r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if v == nil {
			return // the handler wrote its own body
		}
		writeJSON(w, code, v)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// writeError maps an error to its status: client mistakes are 4xx, a full
// disk is 507, anything else is a 500 that is logged.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	body := api.Error{Error: err.Error()}
	code := http.StatusInternalServerError
	var br *badRequest
	var mbe *http.MaxBytesError
	fes := fieldErrors(err)
	switch {
	case len(fes) > 0:
		code = http.StatusBadRequest
		body.Errors = fes
		body.Field = fes[0].Field
	case errors.Is(err, errUnauthenticated) || errors.Is(err, errBadCredentials) || errors.As(err, new(*credentialsError)):
		code = http.StatusUnauthorized
	case errors.Is(err, errTooManyLogins) || errors.As(err, new(*tooManyError)):
		code = http.StatusTooManyRequests
	case errors.As(err, new(*forbiddenError)) || errors.As(err, new(*scheduler.ForbiddenError)):
		code = http.StatusForbidden
	case errors.As(err, &br):
		code = http.StatusBadRequest
		body.Field = br.field
	case errors.As(err, &mbe):
		code = http.StatusRequestEntityTooLarge
		body.Error = fmt.Sprintf("request body is larger than %d bytes", mbe.Limit)
	case errors.Is(err, store.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, store.ErrConflict):
		code = http.StatusConflict
	case errors.Is(err, store.ErrNoSpace) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT):
		// The store maps its own; ENOSPC here is a file the server
		// writes itself (task logs).
		code = http.StatusInsufficientStorage
		body.Error = "the server's disk is full: nothing was accepted; retry once space is freed (" + err.Error() + ")"
	case errors.Is(err, errNoPools):
		code = http.StatusNotImplemented
	case r.Context().Err() != nil:
		return // the client went away; nobody to answer
	default:
		s.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, code, body)
}

// fieldErrors flattens every job.FieldError in err's tree.
func fieldErrors(err error) []api.FieldError {
	var out []api.FieldError
	var walk func(error)
	walk = func(e error) {
		if fe, ok := e.(*job.FieldError); ok {
			out = append(out, api.FieldError{Field: fe.Field, Message: fe.Msg})
			return
		}
		switch x := e.(type) {
		case interface{ Unwrap() []error }:
			for _, c := range x.Unwrap() {
				walk(c)
			}
		case interface{ Unwrap() error }:
			walk(x.Unwrap())
		}
	}
	walk(err)
	return out
}

// decodeJSON strictly decodes a request body: unknown fields and trailing
// data are errors.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return badRequestf("body", "not valid JSON for this call: %v", err)
	}
	if dec.More() {
		return badRequestf("body", "unexpected data after the JSON value")
	}
	return nil
}

// notFoundError says plainly that an object does not exist ("job a/b/c
// not found") instead of the store's wording.
type notFoundError struct{ what string }

func (e *notFoundError) Error() string { return e.what + " not found" }

func (e *notFoundError) Unwrap() error { return store.ErrNotFound }

// notFound turns a store's not-found error about what into a
// [notFoundError]; other errors pass through.
func notFound(what string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return &notFoundError{what: what}
	}
	return err
}
