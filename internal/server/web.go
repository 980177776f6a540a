package server

import (
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"strings"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/store"
)

// The web page is plain server-rendered HTML over the same reads as the API;
// it refreshes itself while work is in flight. No JavaScript build step.

//go:embed web/*.html
var webFiles embed.FS

var pageFuncs = template.FuncMap{
	"deref": func(p *int) int { return *p },
	"bytes": humanBytes,
}

var pages = map[string]*template.Template{
	"jobs": template.Must(template.New("").Funcs(pageFuncs).ParseFS(webFiles, "web/layout.html", "web/jobs.html")),
	"job":  template.Must(template.New("").Funcs(pageFuncs).ParseFS(webFiles, "web/layout.html", "web/job.html")),
	"task": template.Must(template.New("").Funcs(pageFuncs).ParseFS(webFiles, "web/layout.html", "web/task.html")),
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func (s *Server) render(w http.ResponseWriter, name string, data map[string]any) (int, any, error) {
	var b strings.Builder
	if err := pages[name].ExecuteTemplate(&b, name+".html", data); err != nil {
		return 0, nil, fmt.Errorf("render %s: %w", name, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'unsafe-inline'")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(b.String()))
	return 0, nil, nil
}

func (s *Server) pageJobs(w http.ResponseWriter, r *http.Request) (int, any, error) {
	_, jobs, err := s.listJobs(w, r)
	if err != nil {
		return 0, nil, err
	}
	_, nodes, err := s.listNodes(w, r)
	if err != nil {
		return 0, nil, err
	}
	refresh := 0
	for _, j := range jobs.([]api.Job) {
		if j.State == "RUNNING" {
			refresh = 2
		}
	}
	return s.render(w, "jobs", map[string]any{"Title": "jobs", "Jobs": jobs, "Nodes": nodes, "Refresh": refresh})
}

func (s *Server) pageJob(w http.ResponseWriter, r *http.Request) (int, any, error) {
	key, err := pathKey(r)
	if err != nil {
		return 0, nil, err
	}
	var aj api.Job
	err = s.store.View(r.Context(), func(rd store.Reader) error {
		aj, err = s.loadJob(r.Context(), rd, key, false)
		return err
	})
	if err != nil {
		return 0, nil, err
	}
	_, events, err := s.events(r, store.EventFilter{Job: key.String()}, nil)
	if err != nil {
		return 0, nil, err
	}
	refresh := 0
	if aj.State == "RUNNING" {
		refresh = 2
	}
	return s.render(w, "job", map[string]any{"Title": key.String(), "Job": aj, "Events": events, "Refresh": refresh})
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
	return s.render(w, "task", data)
}
