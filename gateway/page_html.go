package gateway

// pageTemplate is the status page's html/template: server-rendered, with
// its style inline and no script, so that it works from any browser, over
// an SSH tunnel, with nothing but the admin server. A constant, not an
// embedded file, so that no package-level variable holds it.
const pageTemplate = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{{- if .Refresh}}
<meta http-equiv="refresh" content="{{.Refresh}}">
{{- end}}
<title>{{if not .Healthy}}[!] {{end}}etcd-gateway on {{.Host}}</title>
<style>
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1em 2em; color: #222; background: #fff; }
h1 { font-size: 1.4em; margin: 0 0 .3em; }
h2 { font-size: 1.15em; margin: 1.4em 0 .4em; border-bottom: 1px solid #ccc; }
h3 { font-size: 1em; margin: 1em 0 .3em; }
table { border-collapse: collapse; margin: .3em 0 .8em; }
th, td { padding: .2em .7em; border-bottom: 1px solid #e4e4e4; text-align: left; vertical-align: top; white-space: nowrap; }
td.reason { white-space: normal; min-width: 20em; }
th { background: #f3f3f3; font-weight: 600; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
code, pre, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: .95em; }
pre { white-space: pre-wrap; margin: .2em 0; }
.bad { background: #fde2e2; }
.bad .state, .state.bad, span.bad { color: #b00020; font-weight: 600; }
.warn { background: #fff4d6; }
.warn .state, span.warn { color: #8a5a00; font-weight: 600; }
.ok .state, span.ok { color: #11772d; font-weight: 600; }
.banner { padding: .5em .8em; border-radius: 4px; margin: .5em 0; }
.banner.ok { background: #e3f6e8; }
.muted { color: #666; }
.small { font-size: .9em; }
dl { display: grid; grid-template-columns: max-content auto; gap: .1em 1em; margin: .3em 0; }
dt { color: #555; } dd { margin: 0; }
nav a { margin-right: .8em; }
</style>
</head>
<body>
<h1>etcd-gateway <span class="muted small">on {{.Host}}</span></h1>
<div id="health" class="banner {{if .Healthy}}ok{{else}}bad{{end}}">
<span class="state {{if .Healthy}}ok{{else}}bad{{end}}">{{if .Healthy}}healthy{{else}}unhealthy{{end}}</span>: {{.Health}}
</div>
<dl id="build">
<dt>version</dt><dd class="mono">{{.Version}}</dd>
<dt>up</dt><dd>{{seconds .UptimeSeconds}} <span class="muted">(since {{stamp .StartedAt}})</span></dd>
<dt>config</dt><dd class="mono">{{if .ConfigFile}}{{.ConfigFile}}{{else}}command-line flags{{end}}</dd>
<dt>page</dt><dd>rendered {{stamp .Now}}; auto-refresh:
{{- range .RefreshChoices}} {{if eq . $.Refresh}}<b>{{refreshName .}}</b>{{else}}<a href="?refresh={{.}}">{{refreshName .}}</a>{{end}}{{end}}</dd>
</dl>

<h2>Last reload</h2>
<div id="reload" class="{{if eq .Reload.LastResult "rejected"}}bad{{end}}">
<dl>
<dt>result</dt><dd><span class="state {{if eq .Reload.LastResult "rejected"}}bad{{else}}ok{{end}}">{{.Reload.LastResult}}</span>{{if .Reload.LastAt}} {{ago .Now .Reload.LastAt}} <span class="muted">({{stamp .Reload.LastAt}})</span>{{end}}</dd>
{{- if .Reload.LastError}}
<dt>error</dt><dd><pre class="reload-error">{{.Reload.LastError}}</pre><span class="muted small">The previous configuration is serving.</span></dd>
{{- end}}
<dt>running config applied</dt><dd>{{ago .Now .Reload.LastAppliedAt}} <span class="muted">({{stamp .Reload.LastAppliedAt}})</span></dd>
<dt>reloads</dt><dd>{{.Reload.Applied}} applied, <span class="{{if .Reload.Rejected}}warn{{end}}">{{.Reload.Rejected}} rejected</span>, {{.Reload.Unchanged}} unchanged</dd>
</dl>
</div>

<h2>Listeners</h2>
<table id="listeners">
<thead><tr><th>listener</th><th>address</th><th>source</th><th>endpoints up</th><th class="n">open</th><th class="n">total</th><th class="n">to upstream</th><th class="n">to client</th><th class="n">max conns</th><th class="n">rejected</th><th class="n">failovers</th><th>idle timeout</th><th>keepalive</th></tr></thead>
<tbody>
{{- range .Listeners}}
<tr class="listener {{listenerClass .}}" data-listener="{{.Name}}">
<td><a href="#l-{{.Name}}">{{.Name}}</a></td>
<td class="mono">{{.Address}}</td>
<td>{{source .Source}}</td>
<td class="state">{{up .}} of {{len .Endpoints}}</td>
<td class="n open">{{.OpenConnections}}</td>
<td class="n">{{.TotalConnections}}</td>
<td class="n">{{bytes .BytesToUpstream}}</td>
<td class="n">{{bytes .BytesToClient}}</td>
<td class="n">{{if .MaxConnections}}{{.MaxConnections}}{{else}}<span class="muted">none</span>{{end}}</td>
<td class="n{{if .RejectedConnections}} warn{{end}}">{{.RejectedConnections}}</td>
<td class="n">{{.Failovers}}</td>
<td>{{if eq .IdleTimeout "0s"}}<span class="muted">off</span>{{else}}{{.IdleTimeout}}{{end}}</td>
<td>{{.KeepAlive}}</td>
</tr>
{{- if .Waiting}}
<tr class="listener-waiting bad" data-listener="{{.Name}}"><td></td><td colspan="12"><span class="state bad">can't serve new clients:</span> {{.Waiting}}</td></tr>
{{- end}}
{{- $l := .}}
{{- range .ClusterAlarms}}
<tr class="listener-alarm warn" data-listener="{{$l.Name}}" data-alarm="{{.Name}}"><td></td><td colspan="12"><span class="state warn">cluster alarm {{.Name}}</span> since {{stamp .Since}} ({{ago $.Now .Since}}): every member reports it; the members stay up, since moving clients can't help</td></tr>
{{- end}}
{{- end}}
</tbody>
</table>

{{- range .Listeners}}
{{- $l := .}}
<h3 id="l-{{.Name}}">Endpoints of {{.Name}} <span class="muted small mono">{{.Address}}</span></h3>
<table class="endpoints" data-listener="{{.Name}}">
<thead><tr><th>endpoint</th><th>addresses</th><th>state</th><th>reason</th><th>since</th><th class="n">open</th><th class="n">share</th><th class="n">total</th><th class="n">dial errors</th><th class="n">to upstream</th><th class="n">to client</th>{{if eq .Source.Type "srv"}}<th class="n">priority</th><th class="n">weight</th>{{end}}</tr></thead>
<tbody>
{{- range .Endpoints}}
<tr class="endpoint {{endpointClass .}}" data-listener="{{$l.Name}}" data-endpoint="{{.Address}}">
<td class="mono">{{.Address}}</td>
<td class="mono small">{{range $i, $a := .Addresses}}{{if $i}}, {{end}}{{$a}}{{else}}<span class="muted">-</span>{{end}}</td>
<td class="state">{{if .Drained}}drained{{else if eq .State "active"}}up{{else}}down{{end}} <span class="muted small">({{.Health}})</span></td>
<td class="reason">{{if .Reason}}<pre>{{.Reason}}</pre>{{end}}</td>
<td>{{if .Since}}{{ago $.Now .Since}}{{end}}</td>
<td class="n open">{{.OpenConnections}}</td>
<td class="n share">{{percent .Share}}</td>
<td class="n">{{.TotalConnections}}</td>
<td class="n">{{.DialErrors}}</td>
<td class="n">{{bytes .BytesToUpstream}}</td>
<td class="n">{{bytes .BytesToClient}}</td>
{{- if eq $l.Source.Type "srv"}}<td class="n">{{.Priority}}</td><td class="n">{{.Weight}}</td>{{end}}
</tr>
{{- else}}
<tr class="bad"><td colspan="11">no endpoints</td></tr>
{{- end}}
</tbody>
</table>
{{- end}}

{{- if .HasDNS}}
<h2>DNS</h2>
<table id="dns">
<thead><tr><th>listener</th><th>kind</th><th>name</th><th>state</th><th>addresses</th><th>answer age</th><th>TTL</th><th class="n">lookups</th><th class="n">failures</th><th>last error</th></tr></thead>
<tbody>
{{- range .Listeners}}
{{- $l := .}}
{{- if .DNS}}
{{- with .DNS.SRV}}
<tr class="dns {{srvClass .}}" data-listener="{{$l.Name}}" data-name="{{$l.Source.Domain}}">
<td>{{$l.Name}}</td><td>srv</td><td class="mono">{{range $i, $q := .Queried}}{{if $i}}<br>{{end}}{{$q}}{{end}}</td>
<td class="state">{{if .ResolvedAt}}answered{{else}}no answer yet{{end}}</td><td></td>
<td>{{if .ResolvedAt}}{{seconds .AgeSeconds}}{{end}}</td><td>{{seconds .TTLSeconds}}</td><td class="n"></td><td class="n"></td>
<td class="small">{{if .LastError}}{{.LastError}} <span class="muted">({{seconds .LastErrorAgeSeconds}} ago)</span>{{end}}</td>
</tr>
{{- end}}
{{- range .DNS.Names}}
<tr class="dns {{nameClass .State}}" data-listener="{{$l.Name}}" data-name="{{.Name}}">
<td>{{$l.Name}}</td><td>host</td><td class="mono">{{.Name}}</td>
<td class="state">{{.State}}</td>
<td class="mono small">{{range $i, $a := .Addresses}}{{if $i}}, {{end}}{{$a}}{{end}}</td>
<td>{{if .ResolvedAt}}{{seconds .AgeSeconds}}{{end}}</td><td>{{seconds .TTLSeconds}}</td>
<td class="n">{{.Lookups}}</td><td class="n">{{.Failures}}</td>
<td class="small">{{if .LastError}}{{.LastError}} <span class="muted">({{seconds .LastErrorAgeSeconds}} ago)</span>{{end}}</td>
</tr>
{{- end}}
{{- end}}
{{- end}}
</tbody>
</table>
{{- end}}

<h2>More</h2>
<nav>
<a href="status">/status</a> (this page as JSON)
<a href="metrics">/metrics</a>
<a href="healthz">/healthz</a>
{{- if .Pprof}} <a href="debug/pprof/">/debug/pprof/</a>{{end}}
</nav>
<p class="muted small">On the host: <code>etcd-gateway status</code> prints the same as tables.</p>
</body>
</html>
`
