package e2e

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/etcdsd/etcdsd/internal/devetcd"

	"github.com/miekg/dns"
	clientv3 "go.etcd.io/etcd/client/v3"
)

var dashboardFile = flag.String("dashboard", "../../examples/grafana/etcdsd.json", "the Grafana dashboard the dashboard tests read")

// prometheusBin is Debian's prometheus package's binary (make prometheus installs it).
const prometheusBin = "/usr/bin/prometheus"

// dashboard is what the tests read of a Grafana dashboard.
type dashboard struct {
	Panels     []panel
	Templating struct {
		List []dashboardVar
	}
}

type panel struct {
	Title, Type string
	Targets     []struct {
		RefID string `json:"refId"`
		Expr  string
	}
}

type dashboardVar struct {
	Name, Type string
	// An object {query, refId} for a query variable; a string for a data source one.
	Query      json.RawMessage
	Definition string
	IncludeAll bool
	AllValue   string
	Current    struct {
		Value any // "$__all", a value, or a list of them
	}
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(*dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", *dashboardFile, err)
	}
	return d
}

// kubernetesCorefile is examples/kubernetes/configmap.yaml's Corefile with the ports and the
// etcd endpoint from the environment and `log` in the example.local block. *whoami* stands in
// for the cluster block's kubernetes and forward (and loop, which needs forward), which need
// a cluster and upstreams; health is left out (a port of its own, and process-wide); the
// etcd endpoint is the test's, without TLS. Like the example it has no bind: CoreDNS's
// server label is then dns://:PORT.
const kubernetesCorefile = `.:{$DNS_PORT} {
    errors
    ready 127.0.0.1:{$READY_PORT}
    whoami
    prometheus 127.0.0.1:{$METRICS_PORT}
    cache 30
    reload
    loadbalance
}

example.local:{$DNS_PORT} {
    errors
    log
    ready 127.0.0.1:{$READY_PORT}
    etcdsd {
        path /skydns
        endpoint {$ETCD_ENDPOINT}
        max_stale 10m
    }
    prometheus 127.0.0.1:{$METRICS_PORT}
    loadbalance
}
`

// Every panel expression and every variable query of the Grafana dashboard returns series
// from a real Prometheus scraping the running binary, with each documented Corefile: the
// repository's (make run's, with errors) and the Kubernetes example's (errors and log in the
// example.local block, a block for the rest of the cluster's names beside it).
func TestDashboardPanelsShowData(t *testing.T) {
	if _, err := os.Stat(prometheusBin); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI runs this test, and %s is missing (%v): make prometheus installs Debian's package", prometheusBin, err)
		}
		t.Skipf("%s is missing (%v): make prometheus installs Debian's package", prometheusBin, err)
	}
	d := readDashboard(t)
	for title := range quietPanels {
		if !slices.ContainsFunc(d.Panels, func(p panel) bool { return p.Title == title }) {
			t.Errorf("quietPanels names %q, which is no panel of the dashboard", title)
		}
	}

	t.Run("Corefile", func(t *testing.T) {
		s := startStack(t)
		// The built-in etcd plugin's block serves example.local too, on another port.
		checkDashboard(t, d, s, s.builtinAddr, "_web._tcp.example.local.")
	})
	t.Run("kubernetes", func(t *testing.T) {
		conf := filepath.Join(t.TempDir(), "Corefile")
		if err := os.WriteFile(conf, []byte(kubernetesCorefile), 0o644); err != nil {
			t.Fatal(err)
		}
		s := startStackConf(t, conf)
		checkDashboard(t, d, s, s.dnsAddr, "whoami.cluster.local.")
	})
}

// checkDashboard starts Prometheus on s, makes every event the dashboard shows happen, and
// evaluates the dashboard until every expression returns series. other and otherName are
// a server block without etcdsd and a name it answers, whose requests the request panels
// leave out: where its zone is not etcdsd's (the Kubernetes shape's `.`), a series of that
// zone fails evaluate.
func checkDashboard(t *testing.T, d dashboard, s *stack, other, otherName string) {
	t.Helper()
	prom := startPrometheus(t, s.metricsAddr)

	// Queries all along, so that every rate window holds some: names that exist, a name
	// that does not (NXDOMAIN) and one for the other block.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c := &dns.Client{Timeout: time.Second}
		questions := []struct {
			addr, name string
			qtype      uint16
		}{
			{s.dnsAddr, "_web._tcp.example.local.", dns.TypeSRV},
			{s.dnsAddr, "_app._tcp.example.local.", dns.TypeA},
			{s.dnsAddr, "nothere.example.local.", dns.TypeA},
			{other, otherName, dns.TypeA},
		}
		for i := 0; ctx.Err() == nil; i++ {
			q := questions[i%len(questions)]
			c.Exchange(new(dns.Msg).SetQuestion(q.name, q.qtype), q.addr) // errors: during the reload
			time.Sleep(20 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })

	// The events start once Prometheus holds a sample of every series there is before
	// them, so that their increases fall between two samples.
	prom.waitScrapes(t, 2)
	makeEvents(t, s, prom)

	deadline := time.Now().Add(60 * time.Second)
	for {
		vars, failures, shown := evaluate(prom, d)
		if len(failures) == 0 {
			for _, v := range d.Templating.List {
				if v.Type == "query" {
					t.Logf("variable %s: %q", v.Name, vars[v.Name])
				}
			}
			for _, line := range shown {
				t.Log(line)
			}
			return
		}
		if time.Now().After(deadline) {
			for _, f := range failures {
				t.Error(f)
			}
			return
		}
		time.Sleep(time.Second)
	}
}

// makeEvents makes happen what the dashboard's counters and histograms of events count,
// with the documented Corefiles (default verify and max_answers):
//   - a complete read: a reload (SIGUSR1) makes a new watcher, which lists at start;
//   - watch events: puts and a delete;
//   - skipped values: values that do not decode, for two reasons;
//   - a capped lookup: a query for a name with max_answers (4096) keys and one more below it.
//
// A counter with labels has no series before its first event, and Prometheus sees no
// increase in a series' first sample: the first watch event and skipped value come
// before the rest, which Prometheus scrapes in between. quietPanels has what stays at 0.
func makeEvents(t *testing.T, s *stack, p *promServer) {
	t.Helper()
	if err := s.coredns.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, err := devetcd.Scrape("http://" + s.metricsAddr + "/metrics")
		if err == nil && devetcd.Sum(m, "coredns_etcdsd_lists_total", map[string]string{"reason": "start"}) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no second list after a reload (SIGUSR1): %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	cli := s.client(t)
	ctx := context.Background()
	do := func(ops ...clientv3.Op) {
		t.Helper()
		for _, op := range ops {
			if _, err := cli.Do(ctx, op); err != nil {
				t.Fatal(err)
			}
		}
	}
	do(clientv3.OpPut("/skydns/local/example/new/i1", `{"host":"10.9.9.1"}`),
		clientv3.OpPut("/skydns/local/example/new/bad1", `{"host":`),
		clientv3.OpPut("/skydns/local/example/new/bad2", `{"host":"10.9.9.2","port":"eighty"}`))
	for _, metric := range []string{"coredns_etcdsd_watch_events_total", "coredns_etcdsd_skipped_values_total"} {
		for {
			samples, err := p.query(metric, time.Now())
			if err == nil && len(samples) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("prometheus has no %s after a put and values that do not decode: %v", metric, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	do(clientv3.OpDelete("/skydns/local/example/new/i1"),
		clientv3.OpPut("/skydns/local/example/new/bad3", `not json`),
		clientv3.OpPut("/skydns/local/example/new/bad4", `{"host":"10.9.9.4","port":"eighty"}`))

	const keys = 4097
	for i := 0; i < keys; i += 100 {
		var ops []clientv3.Op
		for j := i; j < min(i+100, keys); j++ {
			ops = append(ops, clientv3.OpPut(fmt.Sprintf("/skydns/local/example/capped/h%04d", j), fmt.Sprintf(`{"host":"10.8.%d.%d"}`, j/256, j%256)))
		}
		if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			t.Fatal(err)
		}
	}
	// The lookup is capped once the index holds every key.
	for {
		dns.Exchange(new(dns.Msg).SetQuestion("capped.example.local.", dns.TypeA), s.dnsAddr)
		m, err := devetcd.Scrape("http://" + s.metricsAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		capped, skipped := devetcd.Sum(m, "coredns_etcdsd_capped_lookups_total", nil), devetcd.Sum(m, "coredns_etcdsd_skipped_values_total", nil)
		if capped >= 1 && skipped >= 4 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("coredns_etcdsd_capped_lookups_total is %v after lookups of %d keys, coredns_etcdsd_skipped_values_total %v after four values that do not decode", capped, keys, skipped)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// quietPanels are the panels whose series may hold no value above 0 (or only NaN) after
// makeEvents, and why. Every other target must return a series with a value above 0.
var quietPanels = map[string]string{
	"Stale": "1 only while the index has heard nothing from etcd for 10s; etcd stays up",
	"Divergences found by the self-check": "a divergence is a bug, which the test cannot make happen; " +
		"the counter is exported at 0 from the start, so the series is there",
	// histogram_quantile of a histogram that observed nothing in the window is NaN.
	"Self-check duration": "verify is 10m by default (spread to 9-11m) and no documented Corefile sets it: " +
		"no self-check ends during the test; the histogram is exported from the start, so the series is there",
}

// evaluate substitutes the dashboard's variables as Grafana does with every variable at All,
// evaluates the variable queries and the panel targets at the current time, and returns
// the variables' values, what fell short and a line per target that did not.
func evaluate(p *promServer, d dashboard) (vars map[string][]string, failures, shown []string) {
	now := time.Now()
	// Grafana's $__rate_interval is max($__interval + scrape interval, 4 × scrape interval),
	// with the data source's scrape interval, 15s unless set: at least 1m. This Prometheus
	// scrapes every second, so 1m holds some 60 scrapes; it grows with the test so that the
	// window covers every scrape since Prometheus started, events included. $__range is the
	// dashboard's (1h), of which Prometheus holds the same part.
	window := max(time.Minute, now.Sub(p.started).Truncate(time.Second)+5*time.Second)
	subst := map[string]string{
		"__rate_interval": fmt.Sprintf("%ds", int(window.Seconds())),
		"__interval":      "15s",
		"__range":         fmt.Sprintf("%ds", int(window.Seconds())),
		"__range_s":       strconv.Itoa(int(window.Seconds())),
	}
	vars = map[string][]string{}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct{ Query string }
		if err := json.Unmarshal(v.Query, &q); err != nil {
			failures = append(failures, fmt.Sprintf("variable %s: query %s: %v", v.Name, v.Query, err))
			continue
		}
		if q.Query != v.Definition {
			failures = append(failures, fmt.Sprintf("variable %s: definition %q is not its query %q", v.Name, v.Definition, q.Query))
		}
		expr, err := substitute(q.Query, subst)
		if err != nil {
			failures = append(failures, fmt.Sprintf("variable %s: %v", v.Name, err))
			continue
		}
		values, err := p.variableValues(expr, p.started.Add(-time.Minute), now)
		vars[v.Name] = values
		if err != nil {
			failures = append(failures, fmt.Sprintf("variable %s: %s: %v", v.Name, expr, err))
		} else if len(values) == 0 {
			failures = append(failures, fmt.Sprintf("variable %s: %s: no values", v.Name, expr))
		}
		subst[v.Name] = v.value(values)
	}

	for _, pn := range d.Panels {
		for _, target := range pn.Targets {
			what := fmt.Sprintf("panel %q target %s", pn.Title, target.RefID)
			expr, err := substitute(target.Expr, subst)
			if err != nil {
				failures = append(failures, fmt.Sprintf("%s: %v", what, err))
				continue
			}
			samples, err := p.query(expr, now)
			positive := slices.ContainsFunc(samples, func(s sample) bool { return s.value > 0 && !math.IsInf(s.value, 0) })
			switch _, quiet := quietPanels[pn.Title]; {
			case err != nil:
				failures = append(failures, fmt.Sprintf("%s: %s: %v", what, expr, err))
			case len(samples) == 0:
				failures = append(failures, fmt.Sprintf("%s: %s: no series", what, expr))
			case !positive && !quiet:
				failures = append(failures, fmt.Sprintf("%s: %s: no value above 0: %v", what, expr, samples))
			default:
				shown = append(shown, fmt.Sprintf("%s: %v", what, samples))
			}
			// A zone the zone variable does not list (another server block's) must not show.
			for _, s := range samples {
				if z, ok := s.metric["zone"]; ok && vars["zone"] != nil && !slices.Contains(vars["zone"], z) {
					failures = append(failures, fmt.Sprintf("%s: %s: zone %q, which the zone variable does not list (%q)", what, expr, z, vars["zone"]))
				}
			}
		}
	}
	return vars, failures, shown
}

// value is what Grafana puts for $v in a query: the All value, else the values chosen
// (every value for All) as a regular expression, escaped inside a PromQL string.
func (v dashboardVar) value(values []string) string {
	var chosen []string
	switch c := v.Current.Value.(type) {
	case string:
		chosen = []string{c}
	case []any:
		for _, x := range c {
			chosen = append(chosen, fmt.Sprint(x))
		}
	}
	if slices.Contains(chosen, "$__all") {
		if v.AllValue != "" {
			return v.AllValue
		}
		chosen = values
	}
	// Grafana 11 leaves a multi-value variable with no values empty: `zone=~""` then
	// matches only series without the label.
	for i, c := range chosen {
		chosen[i] = strings.ReplaceAll(regexp.QuoteMeta(c), `\`, `\\`)
	}
	if len(chosen) == 1 {
		return chosen[0]
	}
	if len(chosen) == 0 {
		return ""
	}
	return "(" + strings.Join(chosen, "|") + ")"
}

var variableRef = regexp.MustCompile(`\$\{(\w+)\}|\$(\w+)`)

// substitute replaces $name and ${name} by values[name]; a name without a value is an error.
func substitute(expr string, values map[string]string) (string, error) {
	var missing []string
	out := variableRef.ReplaceAllStringFunc(expr, func(ref string) string {
		m := variableRef.FindStringSubmatch(ref)
		name := m[1] + m[2]
		v, ok := values[name]
		if !ok {
			missing = append(missing, ref)
			return ref
		}
		return v
	})
	if missing != nil {
		return "", fmt.Errorf("%s: no value for %v", expr, missing)
	}
	return out, nil
}

// promServer is a Prometheus process of the test's own, scraping one target.
type promServer struct {
	url     string
	target  string
	started time.Time
}

// startPrometheus runs Debian's prometheus on a free port with its data in a temporary
// folder, scraping target (host:port of the prometheus plugin) every second, and waits
// until it is ready.
func startPrometheus(t *testing.T, target string) *promServer {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(conf, []byte(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: coredns
    static_configs:
      - targets: ["`+target+`"]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	// A port found free can be taken before Prometheus binds it; then it exits and gets
	// another try.
	for try := range 3 {
		port := devetcd.FreePortFor(t)
		cmd := exec.Command(prometheusBin,
			"--config.file="+conf,
			"--storage.tsdb.path="+filepath.Join(dir, fmt.Sprintf("data%d", try)),
			fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port))
		p := &promServer{url: fmt.Sprintf("http://127.0.0.1:%d", port), target: target, started: time.Now()}
		if startUntilReady(t, cmd, "prometheus", p.url+"/-/ready") {
			return p
		}
	}
	t.Fatal("prometheus did not start")
	return nil
}

// waitScrapes waits until Prometheus has scraped its target n times successfully.
func (p *promServer) waitScrapes(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		samples, err := p.query("sum_over_time(up[5m])", time.Now())
		if err == nil && len(samples) == 1 && samples[0].value >= float64(n) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus did not scrape %s %d times in 30s: %v %v", p.target, n, samples, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type sample struct {
	metric map[string]string
	value  float64
}

func (s sample) String() string { return fmt.Sprintf("%v %v", s.metric, s.value) }

// query evaluates expr at time at through /api/v1/query.
func (p *promServer) query(expr string, at time.Time) ([]sample, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	q := url.Values{"query": {expr}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)}}
	if err := p.get("/api/v1/query", q, &data); err != nil {
		return nil, err
	}
	parse := func(v [2]any) (float64, error) {
		s, ok := v[1].(string)
		if !ok {
			return 0, fmt.Errorf("value %v", v)
		}
		return strconv.ParseFloat(s, 64)
	}
	switch data.ResultType {
	case "vector":
		var result []struct {
			Metric map[string]string
			Value  [2]any
		}
		if err := json.Unmarshal(data.Result, &result); err != nil {
			return nil, err
		}
		var samples []sample
		for _, r := range result {
			f, err := parse(r.Value)
			if err != nil {
				return nil, err
			}
			samples = append(samples, sample{r.Metric, f})
		}
		return samples, nil
	case "scalar":
		var v [2]any
		if err := json.Unmarshal(data.Result, &v); err != nil {
			return nil, err
		}
		f, err := parse(v)
		return []sample{{nil, f}}, err
	}
	return nil, fmt.Errorf("result of type %q", data.ResultType)
}

var labelValuesQuery = regexp.MustCompile(`^label_values\((?:(.+),\s*)?([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

// variableValues evaluates a Grafana variable query of the Prometheus data source,
// label_values([SELECTOR,] LABEL), as Grafana does: the label's values through
// /api/v1/label/LABEL/values, for the series SELECTOR matches from start to end.
func (p *promServer) variableValues(query string, start, end time.Time) ([]string, error) {
	m := labelValuesQuery.FindStringSubmatch(strings.TrimSpace(query))
	if m == nil {
		return nil, fmt.Errorf("not a label_values query, which is all this test evaluates")
	}
	q := url.Values{"start": {strconv.FormatInt(start.Unix(), 10)}, "end": {strconv.FormatInt(end.Unix(), 10)}}
	if m[1] != "" {
		q.Set("match[]", m[1])
	}
	var values []string
	err := p.get("/api/v1/label/"+m[2]+"/values", q, &values)
	return values, err
}

// get calls the HTTP API and decodes the data of a successful answer into data.
func (p *promServer) get(path string, q url.Values, data any) error {
	resp, err := http.Get(p.url + path + "?" + q.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var answer struct {
		Status, Error string
		Data          json.RawMessage
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		return fmt.Errorf("%s: %v", resp.Status, err)
	}
	if answer.Status != "success" {
		return fmt.Errorf("%s: %s", resp.Status, answer.Error)
	}
	return json.Unmarshal(answer.Data, data)
}
