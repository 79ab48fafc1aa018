package gateway

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"os"
	"strconv"
	"time"
)

// statusPage renders Status as HTML at the admin server's /. Its template
// is parsed once, when the gateway starts.
type statusPage struct {
	tmpl *template.Template
}

// pageData is what the template sees: the same Status that /status sends,
// and what only a page needs.
type pageData struct {
	Status
	Now            time.Time
	Host           string
	Refresh        int
	RefreshChoices []int
	Pprof          bool
	HasDNS         bool
}

// maxRefresh bounds ?refresh=, in seconds.
const maxRefresh = 3600

func newStatusPage() *statusPage {
	funcs := template.FuncMap{
		"ago":           ago,
		"stamp":         stamp,
		"seconds":       func(s float64) string { return roundDuration(time.Duration(s * float64(time.Second))) },
		"bytes":         humanBytes,
		"source":        sourceText,
		"up":            endpointsUp,
		"listenerClass": listenerClass,
		"endpointClass": endpointClass,
		"percent":       func(f float64) string { return strconv.FormatFloat(f*100, 'f', 0, 64) + "%" },
		"nameClass":     nameClass,
		"srvClass":      srvClass,
		"refreshName": func(s int) string {
			if s == 0 {
				return "off"
			}
			return strconv.Itoa(s) + "s"
		},
	}
	return &statusPage{tmpl: template.Must(template.New("page").Funcs(funcs).Parse(pageTemplate))}
}

// handler serves the page for g. ?refresh=N makes the browser reload it
// every N seconds (a meta refresh: no script).
func (p *statusPage) handler(g *Gateway) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refresh, err := strconv.Atoi(r.URL.Query().Get("refresh"))
		if err != nil || refresh < 0 {
			refresh = 0
		}
		refresh = min(refresh, maxRefresh)
		st := g.Status()
		host, _ := os.Hostname()
		data := pageData{
			Status: st, Now: time.Now(), Host: host, Refresh: refresh,
			RefreshChoices: []int{0, 5, 30},
			Pprof:          g.Current().AdminPprof,
		}
		for _, ls := range st.Listeners {
			if ls.DNS != nil {
				data.HasDNS = true
			}
		}
		var buf bytes.Buffer
		if err := p.tmpl.Execute(&buf, data); err != nil {
			g.log.WithError(err).Error("admin /: rendering the status page failed")
			http.Error(w, "rendering the status page failed: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(buf.Bytes())
	})
}

// ago says how long before now t was: "3m12s ago".
func ago(now time.Time, t any) string {
	var at time.Time
	switch v := t.(type) {
	case time.Time:
		at = v
	case *time.Time:
		if v == nil {
			return ""
		}
		at = *v
	default:
		return fmt.Sprint(t)
	}
	d := now.Sub(at)
	if d < 0 {
		d = 0
	}
	return roundDuration(d) + " ago"
}

// stamp is a time as an operator reads it in a log: local, to the second.
func stamp(t any) string {
	switch v := t.(type) {
	case time.Time:
		return v.Local().Format("2006-01-02 15:04:05 MST")
	case *time.Time:
		if v == nil {
			return ""
		}
		return v.Local().Format("2006-01-02 15:04:05 MST")
	}
	return fmt.Sprint(t)
}

// roundDuration shortens d to what matters at a glance: 450ms, 12s,
// 3m12s, 5h3m, 2d4h.
func roundDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	case d < 48*time.Hour:
		return d.Round(time.Minute).String()
	default:
		days := int(d / (24 * time.Hour))
		return fmt.Sprintf("%dd%dh", days, int((d-time.Duration(days)*24*time.Hour)/time.Hour))
	}
}

// humanBytes prints n in binary units: 0 B, 912 B, 1.2 MiB.
func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// sourceText is where a listener's endpoints come from, in a few words.
func sourceText(s Source) string {
	if s.Type != "srv" {
		return "static"
	}
	if s.ServiceName != "" {
		return "SRV " + s.Domain + " (" + s.ServiceName + ")"
	}
	return "SRV " + s.Domain
}

func endpointsUp(ls ListenerStatus) int {
	n := 0
	for _, ep := range ls.Endpoints {
		if ep.State == stateActive {
			n++
		}
	}
	return n
}

// listenerClass is "bad" when the listener can't serve new clients or no
// endpoint of it is up, "warn" when some are down or it turned clients
// away.
func listenerClass(ls ListenerStatus) string {
	up := endpointsUp(ls)
	switch {
	case ls.Waiting != "" || up == 0:
		return "bad"
	case up < len(ls.Endpoints) || ls.RejectedConnections > 0 || len(ls.ClusterAlarms) > 0:
		return "warn"
	}
	return "ok"
}

// endpointClass is "bad" for an endpoint that takes no new connections,
// "warn" for one that does but has a reason to worry (DNS failing) and
// for a drained one.
func endpointClass(ep EndpointStatus) string {
	switch {
	case ep.Drained:
		return "warn" // the operator's doing: no fault
	case ep.State != stateActive:
		return "bad"
	case ep.Reason != "":
		return "warn"
	}
	return "ok"
}

func nameClass(state string) string {
	switch state {
	case "ok":
		return "ok"
	case "failing":
		return "warn"
	}
	return "bad"
}

// srvClass is "bad" before the SRV discovery's first answer, "warn" while
// its lookups fail (the last good set is in use).
func srvClass(s *SRVStatus) string {
	switch {
	case s.ResolvedAt == nil:
		return "bad"
	case s.LastError != "" && s.LastErrorAgeSeconds < s.AgeSeconds:
		return "warn"
	}
	return "ok"
}
