// Package helmchart_test merges helm-values.yaml over the coredns chart's defaults with Helm's
// own code and checks the container the chart would render against deployment.yaml's. It is a
// package of its own because Helm's chart packages import all of client-go: the tests of
// the example's main package build without it.
package helmchart_test

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	chartutil "helm.sh/helm/v4/pkg/chart/common/util"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// chartDefaults are the coredns chart's own values for the keys whose rendered result
// deployment.yaml fixes, of the oldest chart helm-values.yaml is for and of a later one.
var chartDefaults = []string{
	"testdata/chart-1.36.2-values.yaml",
	"testdata/chart-1.46.2-values.yaml",
}

// probeTimingKeys are the values the chart's templates/deployment.yaml renders into each
// probe, after its fixed httpGet.
var probeTimingKeys = []string{"initialDelaySeconds", "periodSeconds", "timeoutSeconds", "successThreshold", "failureThreshold"}

// TestHelmValuesOverChartDefaults merges helm-values.yaml over the chart's defaults as `helm
// install -f` does (Helm's CoalesceValues: maps merge, and a key set to null removes the
// chart's default), renders the container's resources and probes as the chart's
// templates/deployment.yaml does, and compares them with deployment.yaml's container.
func TestHelmValuesOverChartDefaults(t *testing.T) {
	c := coreDNSContainer(t)
	user, err := common.ReadValuesFile("../helm-values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Set in helm-values.yaml itself, the probes do not depend on the chart's defaults,
	// which differ between chart versions.
	for _, key := range []string{"livenessProbe", "readinessProbe"} {
		tbl, _ := user.Table(key)
		for _, f := range probeTimingKeys {
			if _, ok := tbl[f]; !ok {
				t.Errorf("helm-values.yaml: %s.%s unset: the chart's default differs between versions", key, f)
			}
		}
	}
	for _, file := range chartDefaults {
		t.Run(strings.TrimSuffix(path.Base(file), ".yaml"), func(t *testing.T) {
			defaults, err := common.ReadValuesFile(file)
			if err != nil {
				t.Fatal(err)
			}
			ch := &chartv2.Chart{Metadata: &chartv2.Metadata{APIVersion: chartv2.APIVersionV2, Name: "coredns"}, Values: defaults}
			vals, err := chartutil.CoalesceValues(ch, user)
			if err != nil {
				t.Fatal(err)
			}

			// resources: {{ toYaml .Values.resources }}
			var res corev1.ResourceRequirements
			decodeValue(t, vals, "resources", &res)
			for _, d := range diffResources("requests", res.Requests, c.Resources.Requests) {
				t.Error(d)
			}
			for _, d := range diffResources("limits", res.Limits, c.Resources.Limits) {
				t.Error(d)
			}
			if q, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
				t.Errorf("deployment.yaml: a CPU limit of %s; its comment says none (throttled DNS is slow DNS)", q.String())
			}

			// The probes: a fixed httpGet, the timings from the values, none unless enabled.
			for _, p := range []struct {
				key, path string
				port      int
				want      *corev1.Probe
			}{
				{"livenessProbe", "/health", 8080, c.LivenessProbe},
				{"readinessProbe", "/ready", 8181, c.ReadinessProbe},
			} {
				var v struct {
					Enabled bool `json:"enabled"`
					probeTimings
				}
				tbl := decodeValue(t, vals, p.key, &v)
				for _, f := range probeTimingKeys {
					if _, ok := tbl[f]; !ok {
						t.Errorf("%s.%s: no value, which the chart renders as <no value>", p.key, f)
					}
				}
				if !v.Enabled || p.want == nil || p.want.HTTPGet == nil {
					t.Errorf("%s: rendered by the chart: %v; an httpGet probe in deployment.yaml: %v", p.key, v.Enabled, p.want != nil && p.want.HTTPGet != nil)
					continue
				}
				g := p.want.HTTPGet
				if g.Path != p.path || containerPort(c, g.Port) != p.port || cmp.Or(g.Scheme, corev1.URISchemeHTTP) != corev1.URISchemeHTTP {
					t.Errorf("%s: deployment.yaml asks %s :%s%s, the chart HTTP :%d%s", p.key, g.Scheme, g.Port.String(), g.Path, p.port, p.path)
				}
				if want := timingsOf(p.want); v.probeTimings != want {
					t.Errorf("%s: the chart renders %v, deployment.yaml has %v (with the API's defaults for what it leaves unset)", p.key, v.probeTimings, want)
				}
			}
		})
	}
}

// probeTimings are the fields of a probe the chart fills from its values.
type probeTimings struct {
	InitialDelaySeconds int32 `json:"initialDelaySeconds"`
	PeriodSeconds       int32 `json:"periodSeconds"`
	TimeoutSeconds      int32 `json:"timeoutSeconds"`
	SuccessThreshold    int32 `json:"successThreshold"`
	FailureThreshold    int32 `json:"failureThreshold"`
}

func (p probeTimings) String() string {
	return fmt.Sprintf("initialDelaySeconds %d, periodSeconds %d, timeoutSeconds %d, successThreshold %d, failureThreshold %d",
		p.InitialDelaySeconds, p.PeriodSeconds, p.TimeoutSeconds, p.SuccessThreshold, p.FailureThreshold)
}

// timingsOf returns a probe's timings, with the API server's defaults for the fields left
// unset (k8s.io/api/core/v1 Probe: periodSeconds 10, timeoutSeconds 1, successThreshold 1,
// failureThreshold 3).
func timingsOf(p *corev1.Probe) probeTimings {
	return probeTimings{
		InitialDelaySeconds: p.InitialDelaySeconds,
		PeriodSeconds:       cmp.Or(p.PeriodSeconds, 10),
		TimeoutSeconds:      cmp.Or(p.TimeoutSeconds, 1),
		SuccessThreshold:    cmp.Or(p.SuccessThreshold, 1),
		FailureThreshold:    cmp.Or(p.FailureThreshold, 3),
	}
}

// decodeValue decodes the coalesced table key into v, strictly, and returns the table.
func decodeValue(t *testing.T, vals common.Values, key string, v any) common.Values {
	t.Helper()
	tbl, err := vals.Table(key)
	if err != nil {
		t.Fatalf("values: %s: %v", key, err)
	}
	j, err := json.Marshal(tbl)
	if err != nil {
		t.Fatal(err)
	}
	d := json.NewDecoder(bytes.NewReader(j))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		t.Fatalf("values: %s: %v", key, err)
	}
	return tbl
}

// diffResources lists where the quantities the chart renders differ from deployment.yaml's.
func diffResources(what string, got, want corev1.ResourceList) []string {
	var diffs []string
	names := slices.Collect(maps.Keys(got))
	for n := range want {
		if _, ok := got[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		g, gok := got[n]
		w, wok := want[n]
		switch {
		case !wok:
			diffs = append(diffs, fmt.Sprintf("resources.%s.%s: the chart renders %s, deployment.yaml has none (set it to null to remove the chart's default)", what, n, g.String()))
		case !gok:
			diffs = append(diffs, fmt.Sprintf("resources.%s.%s: the chart renders none, deployment.yaml has %s", what, n, w.String()))
		case g.Cmp(w) != 0:
			diffs = append(diffs, fmt.Sprintf("resources.%s.%s: the chart renders %s, deployment.yaml has %s", what, n, g.String(), w.String()))
		}
	}
	return diffs
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// coreDNSContainer returns the one container of deployment.yaml's Deployment (the example's
// main package checks the file in full).
func coreDNSContainer(t *testing.T) *corev1.Container {
	t.Helper()
	data, err := os.ReadFile("../deployment.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range docSeparator.Split(string(data), -1) {
		var kind struct {
			Kind string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(part), &kind); err != nil {
			t.Fatalf("deployment.yaml: %v", err)
		}
		if kind.Kind != "Deployment" {
			continue
		}
		var d appsv1.Deployment
		if err := yaml.UnmarshalStrict([]byte(part), &d); err != nil {
			t.Fatalf("deployment.yaml: %v", err)
		}
		if cs := d.Spec.Template.Spec.Containers; len(cs) == 1 {
			return &cs[0]
		}
		t.Fatal("deployment.yaml: want one container")
	}
	t.Fatal("deployment.yaml: no Deployment")
	return nil
}

// containerPort resolves a probe's port, a number or the name of one of c's ports.
func containerPort(c *corev1.Container, p intstr.IntOrString) int {
	if p.Type == intstr.Int {
		return p.IntValue()
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort)
		}
	}
	return 0
}
