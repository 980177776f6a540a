package server

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/auth"
	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/jobspec"
	"github.com/drover-dev/drover/internal/store"
)

// The web page is plain server-rendered HTML over the same reads as the API;
// it refreshes itself while work is in flight. No JavaScript build step.

//go:embed web/*.html
var webFiles embed.FS

var pageFuncs = template.FuncMap{
	"deref": func(p *int) int { return *p },
	"bytes": jobspec.HumanSize,
	"at":    pageTime,
}

var pages = map[string]*template.Template{
	"jobs":  template.Must(template.New("").Funcs(pageFuncs).ParseFS(webFiles, "web/layout.html", "web/jobs.html")),
	"job":   template.Must(template.New("").Funcs(pageFuncs).ParseFS(webFiles, "web/layout.html", "web/job.html")),
	"task":  template.Must(template.New("").Funcs(pageFuncs).ParseFS(webFiles, "web/layout.html", "web/task.html")),
	"login": template.Must(template.New("").Funcs(pageFuncs).ParseFS(webFiles, "web/layout.html", "web/login.html")),
	"error": template.Must(template.New("").Funcs(pageFuncs).ParseFS(webFiles, "web/layout.html", "web/error.html")),
	"pools": template.Must(template.New("").Funcs(pageFuncs).ParseFS(webFiles, "web/layout.html", "web/pools.html")),
	"pool":  template.Must(template.New("").Funcs(pageFuncs).ParseFS(webFiles, "web/layout.html", "web/pool.html")),
}

// pageTime shows a time (a time.Time or a *time.Time) to the second with
// its zone, so a schedule's next fire reads in the schedule's own zone;
// a nil or zero time shows as nothing.
func pageTime(v any) string {
	var t time.Time
	switch x := v.(type) {
	case time.Time:
		t = x
	case *time.Time:
		if x != nil {
			t = *x
		}
	}
	if t.IsZero() {
		return ""
	}
	return t.Format("2006-01-02 15:04:05 MST")
}

// pagePolicy is every page's Content-Security-Policy: nothing but our own
// files, no inline script (so text that slipped through as markup still
// cannot run), no framing (clickjacking), forms post only to us.
const pagePolicy = "default-src 'self'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func (s *Server) render(w http.ResponseWriter, r *http.Request, name string, data map[string]any) (int, any, error) {
	return s.renderStatus(w, r, http.StatusOK, name, data)
}

// renderStatus writes a page with its status. The layout shows the
// signed-in user and a logout button that carries the session's CSRF token.
func (s *Server) renderStatus(w http.ResponseWriter, r *http.Request, code int, name string, data map[string]any) (int, any, error) {
	if p := principalOf(r); p.Kind == auth.UserKind {
		data["User"] = p.Name
	}
	if data["User"] != nil || name == "login" {
		tok, err := s.sessions.csrfToken(r)
		if err != nil {
			return 0, nil, err
		}
		data["CSRF"] = tok
	}
	var b strings.Builder
	if err := pages[name].ExecuteTemplate(&b, name+".html", data); err != nil {
		return 0, nil, fmt.Errorf("render %s: %w", name, err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pagePolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(b.String()))
	return 0, nil, nil
}

// isPage reports whether r is for the web page rather than the API: its
// errors are pages too, and an anonymous visitor is sent to the login form.
func isPage(r *http.Request) bool {
	p := r.URL.Path
	return p == "/" || strings.HasPrefix(p, "/ui/") || p == "/login" || p == "/logout"
}

// pageWriter holds back the JSON error that the shared error path
// ([Server.writeError], from a guard or a handler) writes for a page
// request, so that [Server.finishPage] can answer with a page instead.
type pageWriter struct {
	http.ResponseWriter
	wrote bool
	// code is the status of a held-back error (0: none); body its JSON.
	code int
	body bytes.Buffer
}

func (p *pageWriter) WriteHeader(code int) {
	if !p.wrote && code >= 400 && strings.HasPrefix(p.Header().Get("Content-Type"), "application/json") {
		p.wrote, p.code = true, code
		return
	}
	p.wrote = true
	p.ResponseWriter.WriteHeader(code)
}

func (p *pageWriter) Write(b []byte) (int, error) {
	if p.code != 0 {
		if p.body.Len() < 64<<10 {
			p.body.Write(b)
		}
		return len(b), nil
	}
	p.wrote = true
	return p.ResponseWriter.Write(b)
}

func (p *pageWriter) Unwrap() http.ResponseWriter { return p.ResponseWriter }

// finishPage answers a held-back error: an anonymous visitor's GET goes
// to the login form, anything else gets a small error page.
func (s *Server) finishPage(p *pageWriter, r *http.Request) {
	if p.code == 0 {
		return
	}
	h := p.ResponseWriter.Header()
	h.Del("Content-Type")
	if p.code == http.StatusUnauthorized && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		h.Del("WWW-Authenticate")
		http.Redirect(p.ResponseWriter, r, loginURL(r), http.StatusSeeOther)
		return
	}
	var e api.Error
	_ = json.Unmarshal(p.body.Bytes(), &e)
	data := map[string]any{"Title": http.StatusText(p.code), "Code": p.code, "Message": e.Error}
	if _, _, err := s.renderStatus(p.ResponseWriter, r, p.code, "error", data); err != nil {
		s.log.ErrorContext(r.Context(), "render error page", "err", err)
		http.Error(p.ResponseWriter, http.StatusText(p.code), p.code)
	}
}

func (s *Server) pageJobs(w http.ResponseWriter, r *http.Request) (int, any, error) {
	_, jobs, err := s.listJobs(w, r)
	if err != nil {
		return 0, nil, err
	}
	// The page answers to every user, but shows the nodes only to those
	// GET /v1/nodes would.
	var nodes any = []api.Node{}
	if principalOf(r).Can(auth.VerbRead, auth.ResourceNode, "*") {
		if _, nodes, err = s.listNodes(w, r); err != nil {
			return 0, nil, err
		}
	}
	refresh := 0
	for _, j := range jobs.([]api.Job) {
		if j.State == "RUNNING" {
			refresh = 2
		}
	}
	// One read of every schedule rather than one per job; only the
	// listed (readable) jobs look theirs up.
	cs, err := s.sched.Crons(r.Context())
	if err != nil {
		return 0, nil, err
	}
	next := map[string]*time.Time{}
	for _, c := range cs {
		next[c.Entry.Job.String()] = toAPISchedule(c).Next
	}
	return s.render(w, r, "jobs", map[string]any{"Title": "jobs", "Jobs": jobs, "Next": next, "Nodes": nodes, "Refresh": refresh})
}

func (s *Server) pageJob(w http.ResponseWriter, r *http.Request) (int, any, error) {
	key, err := pathKey(r)
	if err != nil {
		return 0, nil, err
	}
	run := 0
	if v := r.URL.Query().Get("run"); v != "" {
		if run, err = strconv.Atoi(v); err != nil || run < 1 {
			return 0, nil, badRequestf("run", "must be a run number (1 or more), not %q", v)
		}
	}
	var aj api.Job
	runs := []api.Run{}
	err = s.store.View(r.Context(), func(rd store.Reader) error {
		if aj, err = s.loadJob(r.Context(), rd, key, run, false); err != nil {
			return err
		}
		rns, err := rd.ListRuns(r.Context(), store.RunFilter{Job: key, Limit: pageRuns})
		if err != nil {
			return err
		}
		for _, rn := range rns {
			ar, err := loadRun(r.Context(), rd, rn, false)
			if err != nil {
				return err
			}
			runs = append(runs, ar)
		}
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	data := map[string]any{"Title": key.String(), "Job": aj, "Runs": runs}
	sch, err := s.schedule(r.Context(), key)
	var nf *notFoundError
	switch {
	case err == nil:
		data["Schedule"] = sch
	case !errors.As(err, &nf):
		return 0, nil, err
	}
	_, events, err := s.events(r, store.EventFilter{Job: key.String()}, nil)
	if err != nil {
		return 0, nil, err
	}
	data["Events"] = events
	if aj.State == string(job.Running) {
		data["Refresh"] = 2
	}
	return s.render(w, r, "job", data)
}

// pageRuns is how many runs, newest first, the job page lists.
const pageRuns = 20

func (s *Server) pagePools(w http.ResponseWriter, r *http.Request) (int, any, error) {
	_, pools, err := s.listPools(w, r)
	if err != nil {
		return 0, nil, err
	}
	return s.render(w, r, "pools", map[string]any{"Title": "pools", "Pools": pools})
}

// machineRow is a pool's machine as the pool page lists it.
type machineRow struct {
	api.Machine
	// Age is how long ago it was launched (to its end, once ended).
	Age string
}

func (s *Server) pagePool(w http.ResponseWriter, r *http.Request) (int, any, error) {
	_, v, err := s.getPool(w, r)
	if err != nil {
		return 0, nil, err
	}
	p := v.(api.Pool)
	spec, err := yaml.Marshal(p.Spec)
	if err != nil {
		return 0, nil, fmt.Errorf("format pool %s: %w", p.Name, err)
	}
	now := s.now()
	rows := make([]machineRow, 0, len(p.Machines))
	for _, m := range p.Machines {
		end := now
		if m.EndedAt != nil {
			end = *m.EndedAt
		}
		rows = append(rows, machineRow{Machine: m, Age: end.Sub(m.LaunchedAt).Round(time.Second).String()})
	}
	data := map[string]any{"Title": "pool " + p.Name, "Pool": p, "Spec": string(spec), "Machines": rows}
	if p.Actual != p.Desired {
		data["Refresh"] = 2
	}
	return s.render(w, r, "pool", data)
}

// pageLogTail is how much of each stream the task page shows.
const pageLogTail = 64 << 10

func (s *Server) pageTask(w http.ResponseWriter, r *http.Request) (int, any, error) {
	t, err := s.lookupTask(r.Context(), r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	data := map[string]any{"Title": "task " + t.ID, "Task": toAPITask(t)}
	for _, stream := range []string{"stdout", "stderr"} {
		lg, err := s.logs.get(t.ID, stream)
		if err != nil {
			return 0, nil, err
		}
		var b strings.Builder
		buf := make([]byte, pageLogTail)
		for off := max(lg.End()-pageLogTail, lg.Start()); ; {
			n, start, _ := lg.ReadAt(off, buf)
			if n == 0 {
				break
			}
			b.Write(buf[:n])
			off = start + int64(n)
		}
		data[strings.ToUpper(stream[:1])+stream[1:]] = b.String()
	}
	if !t.State.IsTerminal() {
		data["Refresh"] = 2
	}
	return s.render(w, r, "task", data)
}
