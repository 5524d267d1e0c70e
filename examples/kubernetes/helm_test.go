package kubernetes_test

import (
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// helmValues mirrors the keys of the coredns chart's values.yaml that helm-values.yaml sets,
// under the chart's names (as of chart 1.36); strict decoding fails on any other
// key, a misspelled one included.
type helmValues struct {
	Image struct {
		Repository string            `json:"repository"`
		Tag        string            `json:"tag"`
		PullPolicy corev1.PullPolicy `json:"pullPolicy"`
	} `json:"image"`
	ReplicaCount        int32  `json:"replicaCount"`
	IsClusterService    bool   `json:"isClusterService"`
	K8sAppLabelOverride string `json:"k8sAppLabelOverride"`
	Service             struct {
		Name      string `json:"name"`
		ClusterIP string `json:"clusterIP"`
	} `json:"service"`
	ServiceAccount struct {
		Create bool   `json:"create"`
		Name   string `json:"name"`
	} `json:"serviceAccount"`
	RBAC struct {
		Create bool `json:"create"`
	} `json:"rbac"`
	PriorityClassName  string                      `json:"priorityClassName"`
	Tolerations        []corev1.Toleration         `json:"tolerations"`
	Resources          corev1.ResourceRequirements `json:"resources"`
	PodSecurityContext *corev1.PodSecurityContext  `json:"podSecurityContext"`
	SecurityContext    *corev1.SecurityContext     `json:"securityContext"`
	Servers            []helmServer                `json:"servers"`
	ExtraSecrets       []helmSecret                `json:"extraSecrets"`
	LivenessProbe      helmProbe                   `json:"livenessProbe"`
	ReadinessProbe     helmProbe                   `json:"readinessProbe"`
}

type helmServer struct {
	Zones   []helmZone `json:"zones"`
	Port    int        `json:"port"`
	Plugins []struct {
		Name        string     `json:"name"`
		Parameters  helmScalar `json:"parameters"`
		ConfigBlock string     `json:"configBlock"`
	} `json:"plugins"`
}

type helmZone struct {
	Zone   string `json:"zone"`
	Scheme string `json:"scheme"`
	UseTCP bool   `json:"use_tcp"`
}

type helmSecret struct {
	Name        string `json:"name"`
	MountPath   string `json:"mountPath"`
	DefaultMode *int32 `json:"defaultMode"`
}

type helmProbe struct {
	Enabled             bool  `json:"enabled"`
	InitialDelaySeconds int32 `json:"initialDelaySeconds"`
	PeriodSeconds       int32 `json:"periodSeconds"`
	TimeoutSeconds      int32 `json:"timeoutSeconds"`
	FailureThreshold    int32 `json:"failureThreshold"`
	SuccessThreshold    int32 `json:"successThreshold"`
}

// helmScalar is a string or a number, both of which the chart prints as they are
// (`parameters: 30`).
type helmScalar string

func (s *helmScalar) UnmarshalJSON(b []byte) error {
	var n json.Number
	if err := json.Unmarshal(b, &n); err == nil {
		*s = helmScalar(n)
		return nil
	}
	return json.Unmarshal(b, (*string)(s))
}

// renderCorefile writes servers as the chart's ConfigMap template does: a server block's
// zones, each after its scheme, space-separated ("." for none), ":PORT " after the last, then
// "{"; each plugin as NAME and its parameters, and its configBlock in braces.
func renderCorefile(servers []helmServer) string {
	var b strings.Builder
	for _, s := range servers {
		var zones []string
		for _, z := range s.Zones {
			zones = append(zones, z.Scheme+cmp.Or(z.Zone, "."))
		}
		b.WriteString(cmp.Or(strings.Join(zones, " "), "."))
		if s.Port != 0 {
			fmt.Fprintf(&b, ":%d ", s.Port)
		}
		b.WriteString("{\n")
		for _, p := range s.Plugins {
			b.WriteString("    " + p.Name)
			if p.Parameters != "" {
				b.WriteString(" " + string(p.Parameters))
			}
			if p.ConfigBlock != "" {
				b.WriteString(" {\n")
				for _, line := range strings.Split(p.ConfigBlock, "\n") {
					b.WriteString("        " + line + "\n")
				}
				b.WriteString("    }")
			}
			b.WriteString("\n")
		}
		b.WriteString("}\n")
	}
	return b.String()
}

func TestHelmValues(t *testing.T) {
	e := loadExample(t)
	data, err := os.ReadFile("helm-values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var v helmValues
	if err := yaml.UnmarshalStrict(data, &v); err != nil {
		t.Fatalf("helm-values.yaml: %v", err)
	}

	text := renderCorefile(v.Servers)
	checkCorefileSyntax(t, text)
	cf, err := parseCorefile(text)
	if err != nil {
		t.Fatalf("rendered Corefile: %v\n%s", err, text)
	}
	// The same Corefile as the ConfigMap's; the scheme dns:// is CoreDNS's default.
	if got, want := cf.normalized().String(), e.corefile.normalized().String(); got != want {
		t.Errorf("the values render a Corefile other than configmap.yaml's:\n%s\nwant:\n%s", got, want)
	}

	// The chart's Service has TCP on a port only if a zone on it is dns:// with use_tcp.
	for _, s := range v.Servers {
		if !slices.ContainsFunc(v.Servers, func(o helmServer) bool {
			return o.Port == s.Port && slices.ContainsFunc(o.Zones, func(z helmZone) bool { return z.Scheme == "dns://" && z.UseTCP })
		}) {
			t.Errorf("port %d: no zone with scheme dns:// and use_tcp, so the chart's Service has no TCP", s.Port)
		}
		// The chart takes the metrics container port from after the ':' of prometheus's parameters.
		for _, p := range s.Plugins {
			if p.Name == "prometheus" && !strings.Contains(string(p.Parameters), ":") {
				t.Errorf("prometheus parameters %q: the chart needs [ADDR]:PORT", p.Parameters)
			}
		}
	}
	// The chart's probes ask these fixed addresses.
	for _, h := range cf.plugins("health") {
		if p := listenPort(h.Args, "8080"); p != "8080" || !v.LivenessProbe.Enabled {
			t.Errorf("health on port %s (liveness enabled: %v), the chart probes :8080/health", p, v.LivenessProbe.Enabled)
		}
	}
	for _, r := range cf.plugins("ready") {
		if p := listenPort(r.Args, "8181"); p != "8181" || !v.ReadinessProbe.Enabled {
			t.Errorf("ready on port %s (readiness enabled: %v), the chart probes :8181/ready", p, v.ReadinessProbe.Enabled)
		}
	}

	// The Secret, at the path the Corefile's tls lines read, and readable as in deployment.yaml.
	vol, mountPath := e.secretMount(t)
	i := slices.IndexFunc(v.ExtraSecrets, func(s helmSecret) bool { return s.Name == e.secret.Name })
	if i < 0 {
		t.Fatalf("extraSecrets lacks %s", e.secret.Name)
	}
	if s := v.ExtraSecrets[i]; s.MountPath != mountPath || s.DefaultMode == nil || *s.DefaultMode != *vol.Secret.DefaultMode {
		t.Errorf("extraSecrets %s at %s mode %s, want %s mode %s as in deployment.yaml", s.Name, s.MountPath, mode(s.DefaultMode), mountPath, mode(vol.Secret.DefaultMode))
	}
	if img := v.Image.Repository + ":" + v.Image.Tag; img != e.coreDNS(t).Image {
		t.Errorf("image %s, deployment.yaml runs %s", img, e.coreDNS(t).Image)
	}
	if v.SecurityContext == nil || v.PodSecurityContext == nil || v.PodSecurityContext.FSGroup == nil {
		t.Error("want securityContext and podSecurityContext with fsGroup, as in deployment.yaml")
	}
	if !v.IsClusterService || v.K8sAppLabelOverride != e.service.Spec.Selector["k8s-app"] || v.Service.Name != e.service.Name {
		t.Errorf("want a cluster service named %s with k8s-app %s", e.service.Name, e.service.Spec.Selector["k8s-app"])
	}
}
