package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/drover-dev/drover/internal/auth"
	"github.com/drover-dev/drover/internal/event"
	"github.com/drover-dev/drover/internal/store"
)

// isMutating reports whether a call may change something. Agents' syncs
// and log uploads are left out: they are the heartbeat, every few seconds
// from every node, and their effects are events of their own.
func isMutating(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return r.URL.Path != "/v1/agent/sync" && r.URL.Path != "/v1/agent/logs"
}

// statusRecorder remembers the status a handler answered.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// actor names a principal in the audit trail.
func actor(p *auth.Principal) string {
	switch p.Kind {
	case auth.UserKind:
		if p.TokenID != "" {
			return "user " + p.Name + " (token " + p.TokenID + ")"
		}
		return "user " + p.Name
	case auth.AgentKind:
		return "agent token " + p.TokenID
	}
	return "anonymous"
}

func source(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// auditNote lets a handler say more about its call than the principal
// can: a login is made anonymously, but by someone.
type auditNote struct{ actor string }

type auditKey struct{}

// noteActor names who really made the call, for the audit trail.
func noteActor(r *http.Request, actor string) {
	if n, ok := r.Context().Value(auditKey{}).(*auditNote); ok {
		n.actor = actor
	}
}

// audit records a mutating call: who, what, when, from where, and how it
// ended. A failure to record is logged, not answered: the call is done.
func (s *Server) audit(r *http.Request, p *auth.Principal, status int) {
	who := actor(p)
	if n, ok := r.Context().Value(auditKey{}).(*auditNote); ok && n.actor != "" {
		who = n.actor
	}
	e := event.Event{At: time.Now().UTC(), Reason: event.Audit, Actor: who, Source: source(r),
		Message: fmt.Sprintf("%s %s → %d", r.Method, r.URL.Path, status)}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
	defer cancel()
	if err := s.store.Update(ctx, func(tx store.Tx) error { return tx.InsertEvents(ctx, e) }); err != nil {
		s.log.WarnContext(ctx, "could not record an audit event", "event", e.Message, "actor", e.Actor, "err", err)
	}
}
