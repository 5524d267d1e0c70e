// Package kubernetes_test checks the Kubernetes example: every manifest decodes strictly into
// its API type, the files agree with each other, with the Corefile and with the Dockerfile,
// the Helm values render to the same Corefile, and the etcdsd server block of that Corefile
// boots against a TLS etcd and answers.
package kubernetes_test

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/miekg/dns"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// manifests lists the example's files and the kinds each holds, in order.
var manifests = []struct {
	file  string
	kinds []string
}{
	{"configmap.yaml", []string{"ConfigMap"}},
	{"deployment.yaml", []string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment"}},
	{"service.yaml", []string{"Service"}},
	{"etcd-client-tls.yaml", []string{"Secret"}},
}

// apiTypes maps "apiVersion kind" to the type a document must decode into; any other
// document fails.
var apiTypes = map[string]func() metav1.Object{
	"v1 ConfigMap":       func() metav1.Object { return new(corev1.ConfigMap) },
	"v1 Secret":          func() metav1.Object { return new(corev1.Secret) },
	"v1 Service":         func() metav1.Object { return new(corev1.Service) },
	"v1 ServiceAccount":  func() metav1.Object { return new(corev1.ServiceAccount) },
	"apps/v1 Deployment": func() metav1.Object { return new(appsv1.Deployment) },
	"rbac.authorization.k8s.io/v1 ClusterRole":        func() metav1.Object { return new(rbacv1.ClusterRole) },
	"rbac.authorization.k8s.io/v1 ClusterRoleBinding": func() metav1.Object { return new(rbacv1.ClusterRoleBinding) },
}

type document struct {
	kind string
	obj  metav1.Object
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// decodeManifest splits a YAML file into documents and decodes each strictly into its API
// type: an unknown or misspelled field, a duplicate key or a value of the wrong type fails,
// as does a kind that is not in apiTypes.
func decodeManifest(data []byte) ([]document, error) {
	var docs []document
	for i, part := range docSeparator.Split(string(data), -1) {
		j, err := yaml.YAMLToJSON([]byte(part))
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		if string(j) == "null" { // comments only
			continue
		}
		var tm metav1.TypeMeta
		if err := json.Unmarshal(j, &tm); err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		newObj, ok := apiTypes[tm.APIVersion+" "+tm.Kind]
		if !ok {
			return nil, fmt.Errorf("document %d: unknown kind %q of apiVersion %q", i+1, tm.Kind, tm.APIVersion)
		}
		obj := newObj()
		if err := yaml.UnmarshalStrict([]byte(part), obj); err != nil {
			return nil, fmt.Errorf("document %d (%s): %w", i+1, tm.Kind, err)
		}
		docs = append(docs, document{tm.Kind, obj})
	}
	return docs, nil
}

// example is the decoded example, one object of each kind, and the ConfigMap's Corefile.
type example struct {
	configMap  *corev1.ConfigMap
	deployment *appsv1.Deployment
	service    *corev1.Service
	secret     *corev1.Secret
	account    *corev1.ServiceAccount
	role       *rbacv1.ClusterRole
	binding    *rbacv1.ClusterRoleBinding
	corefile   corefile
}

func loadExample(t *testing.T) *example {
	t.Helper()
	e := &example{}
	for _, m := range manifests {
		data, err := os.ReadFile(m.file)
		if err != nil {
			t.Fatal(err)
		}
		docs, err := decodeManifest(data)
		if err != nil {
			t.Fatalf("%s: %v", m.file, err)
		}
		var kinds []string
		for _, d := range docs {
			kinds = append(kinds, d.kind)
			switch o := d.obj.(type) {
			case *corev1.ConfigMap:
				e.configMap = o
			case *appsv1.Deployment:
				e.deployment = o
			case *corev1.Service:
				e.service = o
			case *corev1.Secret:
				e.secret = o
			case *corev1.ServiceAccount:
				e.account = o
			case *rbacv1.ClusterRole:
				e.role = o
			case *rbacv1.ClusterRoleBinding:
				e.binding = o
			}
		}
		if !slices.Equal(kinds, m.kinds) {
			t.Fatalf("%s holds %v, want %v", m.file, kinds, m.kinds)
		}
	}
	cf, err := parseCorefile(e.configMap.Data["Corefile"])
	if err != nil {
		t.Fatalf("configmap.yaml: Corefile: %v", err)
	}
	e.corefile = cf
	return e
}

// coreDNS returns the Deployment's CoreDNS container.
func (e *example) coreDNS(t *testing.T) *corev1.Container {
	t.Helper()
	cs := e.deployment.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("deployment: %d containers, want 1", len(cs))
	}
	return &cs[0]
}

// volume returns the Deployment's volume that sel picks and where the container mounts it.
func (e *example) volume(t *testing.T, what string, sel func(corev1.Volume) bool) (corev1.Volume, string) {
	t.Helper()
	for _, v := range e.deployment.Spec.Template.Spec.Volumes {
		if !sel(v) {
			continue
		}
		for _, m := range e.coreDNS(t).VolumeMounts {
			if m.Name == v.Name {
				return v, m.MountPath
			}
		}
		t.Fatalf("deployment: volume %q (%s) is not mounted", v.Name, what)
	}
	t.Fatalf("deployment: no volume for %s", what)
	return corev1.Volume{}, ""
}

func (e *example) secretMount(t *testing.T) (corev1.Volume, string) {
	t.Helper()
	return e.volume(t, "Secret "+e.secret.Name, func(v corev1.Volume) bool {
		return v.Secret != nil && v.Secret.SecretName == e.secret.Name
	})
}

// etcdsdBlock returns the one server block with etcdsd, and its etcdsd stanza.
func (e *example) etcdsdBlock(t *testing.T) (*serverBlock, *plugin) {
	t.Helper()
	var found []*serverBlock
	for i := range e.corefile {
		if len(e.corefile[i].plugins("etcdsd")) > 0 {
			found = append(found, &e.corefile[i])
		}
	}
	if len(found) != 1 || len(found[0].plugins("etcdsd")) != 1 {
		t.Fatalf("Corefile: want one server block with one etcdsd stanza, got %d blocks", len(found))
	}
	return found[0], found[0].plugins("etcdsd")[0]
}

func TestManifestsDecodeStrictly(t *testing.T) {
	e := loadExample(t)
	for _, obj := range []metav1.Object{e.configMap, e.deployment, e.service, e.secret, e.account, e.role, e.binding} {
		name, namespace := obj.GetName(), "kube-system"
		var errs []string
		switch obj.(type) {
		case *rbacv1.ClusterRole, *rbacv1.ClusterRoleBinding:
			errs, namespace = content.IsPathSegmentName(name), ""
		case *corev1.Service:
			errs = validation.IsDNS1035Label(name)
		default:
			errs = validation.IsDNS1123Subdomain(name)
		}
		if len(errs) > 0 {
			t.Errorf("name %q: %v", name, errs)
		}
		if obj.GetNamespace() != namespace {
			t.Errorf("%s: namespace %q, want %q", name, obj.GetNamespace(), namespace)
		}
		for k, v := range obj.GetLabels() {
			if errs := append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...); len(errs) > 0 {
				t.Errorf("%s: label %s=%s: %v", name, k, v, errs)
			}
		}
	}
}

// TestDecoderIsStrict shows that decodeManifest catches the mistakes it is there for.
func TestDecoderIsStrict(t *testing.T) {
	const cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"
	tests := []struct {
		name, doc string
		ok        bool
	}{
		{"valid", cm + "data:\n  a: b\n", true},
		{"comment-only document", "# nothing\n---\n" + cm, true},
		{"misspelled field", cm + "dataa:\n  a: b\n", false},
		{"misspelled nested field", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  replica: 2\n", false},
		{"duplicate key", cm + "data:\n  a: b\n  a: c\n", false},
		{"wrong type", cm + "data:\n  a: [b]\n", false},
		{"unknown kind", "apiVersion: v1\nkind: ConfigMapp\nmetadata:\n  name: x\n", false},
		{"kind under the wrong apiVersion", "apiVersion: apps/v1\nkind: ConfigMap\nmetadata:\n  name: x\n", false},
		{"bad base64 in a Secret", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\ndata:\n  k: '!!'\n", false},
	}
	for _, tc := range tests {
		_, err := decodeManifest([]byte(tc.doc))
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

// TestManifestsAgree checks that the files refer to each other by the names, ports and
// paths the others define.
func TestManifestsAgree(t *testing.T) {
	e := loadExample(t)
	for _, tc := range []struct {
		name  string
		check func(*testing.T, *example)
	}{
		{"ConfigMap volume and args", checkConfigVolume},
		{"Secret volume and etcdsd tls", checkSecretVolume},
		{"probes", checkProbes},
		{"ports", checkPorts},
		{"labels", checkLabels},
		{"RBAC", checkRBAC},
		{"security", checkSecurity},
		{"etcd endpoints", checkEndpoints},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, e) })
	}
}

func checkConfigVolume(t *testing.T, e *example) {
	v, mountPath := e.volume(t, "ConfigMap "+e.configMap.Name, func(v corev1.Volume) bool { return v.ConfigMap != nil })
	if v.ConfigMap.Name != e.configMap.Name {
		t.Errorf("volume %q uses ConfigMap %q, want %q", v.Name, v.ConfigMap.Name, e.configMap.Name)
	}
	file := "Corefile"
	for _, it := range v.ConfigMap.Items {
		if _, ok := e.configMap.Data[it.Key]; !ok {
			t.Errorf("volume %q: ConfigMap has no key %q", v.Name, it.Key)
		}
		if it.Key == "Corefile" {
			file = it.Path
		}
	}
	c := e.coreDNS(t)
	want := []string{"-conf", path.Join(mountPath, file)}
	if !slices.Equal(c.Args, want) {
		t.Errorf("args %q, want %q: the mounted Corefile", c.Args, want)
	}
	if len(c.Command) > 0 {
		t.Errorf("command %q: the image's ENTRYPOINT is coredns, args are its flags", c.Command)
	}
}

func checkSecretVolume(t *testing.T, e *example) {
	if e.secret.Type != corev1.SecretTypeTLS {
		t.Errorf("Secret type %q, want %q", e.secret.Type, corev1.SecretTypeTLS)
	}
	for k, v := range e.secret.Data {
		if len(v) == 0 {
			t.Errorf("Secret key %s is empty", k)
		}
		if bytes.Contains(v, []byte("-----BEGIN")) {
			t.Errorf("Secret key %s holds PEM data: the example carries placeholders only", k)
		}
	}
	_, mountPath := e.secretMount(t)
	_, et := e.etcdsdBlock(t)
	tls, ok := et.option("tls")
	// tls CERT KEY CACERT, named as in a kubernetes.io/tls Secret with its CA.
	want := []string{corev1.TLSCertKey, corev1.TLSPrivateKeyKey, "ca.crt"}
	if !ok || len(tls) != len(want) {
		t.Fatalf("etcdsd: tls %q, want CERT KEY CACERT", tls)
	}
	for i, p := range tls {
		if path.Dir(p) != mountPath || path.Base(p) != want[i] {
			t.Errorf("etcdsd tls argument %d is %s, want %s", i+1, p, path.Join(mountPath, want[i]))
		}
		if _, ok := e.secret.Data[path.Base(p)]; !ok {
			t.Errorf("etcdsd tls %s: Secret %s has no key %s", p, e.secret.Name, path.Base(p))
		}
	}
}

// checkProbes compares the probes with the health and ready lines of the Corefile.
func checkProbes(t *testing.T, e *example) {
	c := e.coreDNS(t)
	for _, tc := range []struct {
		probe       *corev1.Probe
		plugin      string
		defaultPort string
		path        string
	}{
		{c.LivenessProbe, "health", "8080", "/health"},
		{c.ReadinessProbe, "ready", "8181", "/ready"},
	} {
		if tc.probe == nil || tc.probe.HTTPGet == nil {
			t.Errorf("no httpGet probe for %s", tc.plugin)
			continue
		}
		ps := e.corefile.plugins(tc.plugin)
		if len(ps) == 0 {
			t.Errorf("a probe asks %s, which the Corefile lacks", tc.plugin)
			continue
		}
		want := listenPort(ps[0].Args, tc.defaultPort)
		if got := resolvePort(t, c, tc.probe.HTTPGet.Port, corev1.ProtocolTCP); got != want || tc.probe.HTTPGet.Path != tc.path {
			t.Errorf("%s probe asks :%s%s, want :%s%s", tc.plugin, got, tc.probe.HTTPGet.Path, want, tc.path)
		}
	}
}

// checkPorts compares the container's and the Service's ports with the Corefile.
func checkPorts(t *testing.T, e *example) {
	c := e.coreDNS(t)
	has := func(port string, proto corev1.Protocol) bool {
		return slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool {
			return strconv.Itoa(int(p.ContainerPort)) == port && p.Protocol == proto
		})
	}
	for _, sb := range e.corefile {
		for _, k := range sb.Keys {
			port := cmp.Or(splitKey(k).port, "53")
			if !has(port, corev1.ProtocolUDP) || !has(port, corev1.ProtocolTCP) {
				t.Errorf("server block %s: the container does not publish port %s over UDP and TCP", k, port)
			}
		}
	}
	metrics := map[string]bool{}
	for _, p := range e.corefile.plugins("prometheus") {
		metrics[listenPort(p.Args, "9153")] = true
	}
	for port := range metrics {
		if !has(port, corev1.ProtocolTCP) {
			t.Errorf("prometheus listens on %s, which the container does not publish", port)
		}
	}
	served := map[string]bool{}
	for _, sp := range e.service.Spec.Ports {
		target := resolvePort(t, c, sp.TargetPort, sp.Protocol)
		served[target+"/"+string(sp.Protocol)] = true
	}
	for _, want := range []string{"53/UDP", "53/TCP"} {
		if !served[want] {
			t.Errorf("Service does not reach container port %s", want)
		}
	}
	for port := range metrics {
		if !served[port+"/TCP"] {
			t.Errorf("Service does not reach the metrics port %s", port)
		}
	}
}

// resolvePort returns the container port that p names or numbers, for proto.
func resolvePort(t *testing.T, c *corev1.Container, p intstr.IntOrString, proto corev1.Protocol) string {
	t.Helper()
	if p.Type == intstr.Int {
		return strconv.Itoa(p.IntValue())
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			if cp.Protocol != proto {
				t.Errorf("port %q is %s, want %s", p.StrVal, cp.Protocol, proto)
			}
			return strconv.Itoa(int(cp.ContainerPort))
		}
	}
	t.Errorf("container has no port named %q", p.StrVal)
	return ""
}

func checkLabels(t *testing.T, e *example) {
	pod := labels.Set(e.deployment.Spec.Template.Labels)
	sel, err := metav1.LabelSelectorAsSelector(e.deployment.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(pod) {
		t.Errorf("Deployment selector %v does not match its pods' labels %v (%v)", e.deployment.Spec.Selector, pod, err)
	}
	svc := labels.SelectorFromSet(e.service.Spec.Selector)
	if svc.Empty() || !svc.Matches(pod) {
		t.Errorf("Service selector %v does not match the pods' labels %v", e.service.Spec.Selector, pod)
	}
	if a := e.deployment.Spec.Template.Spec.Affinity; a != nil && a.PodAntiAffinity != nil {
		for _, term := range a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
			sel, err := metav1.LabelSelectorAsSelector(term.PodAffinityTerm.LabelSelector)
			if err != nil || !sel.Matches(pod) {
				t.Errorf("anti-affinity selector %v does not match the pods' labels", term.PodAffinityTerm.LabelSelector)
			}
		}
	}
}

func checkRBAC(t *testing.T, e *example) {
	spec := e.deployment.Spec.Template.Spec
	if spec.ServiceAccountName != e.account.Name {
		t.Errorf("Deployment runs as %q, want ServiceAccount %q", spec.ServiceAccountName, e.account.Name)
	}
	if r := e.binding.RoleRef; r.Kind != "ClusterRole" || r.Name != e.role.Name || r.APIGroup != rbacv1.GroupName {
		t.Errorf("ClusterRoleBinding refers to %+v, want ClusterRole %s", r, e.role.Name)
	}
	if !slices.ContainsFunc(e.binding.Subjects, func(s rbacv1.Subject) bool {
		return s.Kind == rbacv1.ServiceAccountKind && s.Name == e.account.Name && s.Namespace == e.account.Namespace
	}) {
		t.Errorf("ClusterRoleBinding subjects %+v do not include ServiceAccount %s/%s", e.binding.Subjects, e.account.Namespace, e.account.Name)
	}
	// What the kubernetes plugin lists and watches.
	for _, need := range []struct{ group, resource string }{
		{"", "services"}, {"", "pods"}, {"", "namespaces"}, {"discovery.k8s.io", "endpointslices"},
	} {
		for _, verb := range []string{"list", "watch"} {
			if !slices.ContainsFunc(e.role.Rules, func(r rbacv1.PolicyRule) bool {
				return slices.Contains(r.APIGroups, need.group) && slices.Contains(r.Resources, need.resource) && slices.Contains(r.Verbs, verb)
			}) {
				t.Errorf("ClusterRole does not allow %s on %q %s", verb, need.group, need.resource)
			}
		}
	}
}

func checkSecurity(t *testing.T, e *example) {
	spec := e.deployment.Spec.Template.Spec
	pod, c := spec.SecurityContext, e.coreDNS(t)
	if pod == nil || pod.RunAsNonRoot == nil || !*pod.RunAsNonRoot || pod.RunAsUser == nil || *pod.RunAsUser == 0 {
		t.Error("pod: want runAsNonRoot and a non-zero runAsUser")
	}
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("container: want readOnlyRootFilesystem and no privilege escalation")
	}
	if sc == nil || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Add, []corev1.Capability{"NET_BIND_SERVICE"}) ||
		!slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Error("container: want capabilities drop ALL, add NET_BIND_SERVICE (port 53 as non-root)")
	}
	// The key must be readable by the non-root user, through the pod's group, and by no one else.
	v, _ := e.secretMount(t)
	if pod == nil || pod.FSGroup == nil {
		t.Error("pod: no fsGroup, so the Secret's files stay root's and the non-root user cannot read them")
	}
	if m := v.Secret.DefaultMode; m == nil || *m&0o040 == 0 || *m&0o007 != 0 {
		t.Errorf("Secret volume defaultMode %s, want group-readable and nothing for others (0440)", mode(m))
	}
	// With the node's resolver: /etc/resolv.conf must not send queries back to this Service.
	for _, f := range e.corefile.plugins("forward") {
		if slices.Contains(f.Args, "/etc/resolv.conf") && spec.DNSPolicy != corev1.DNSDefault {
			t.Errorf("forward to /etc/resolv.conf with dnsPolicy %q: a loop; want Default", spec.DNSPolicy)
		}
	}
}

// checkEndpoints: with dnsPolicy Default the pod cannot resolve cluster names, so etcd must be
// named by address or by a name the nodes resolve; with tls, over https.
func checkEndpoints(t *testing.T, e *example) {
	_, et := e.etcdsdBlock(t)
	eps, _ := et.option("endpoint")
	if len(eps) == 0 {
		t.Fatal("etcdsd: no endpoint")
	}
	_, withTLS := et.option("tls")
	var clusterZones []string
	for _, k := range e.corefile.plugins("kubernetes") {
		clusterZones = append(clusterZones, k.Args...)
	}
	for _, ep := range eps {
		u, err := url.Parse(ep)
		if err != nil {
			t.Errorf("endpoint %s: %v", ep, err)
			continue
		}
		if withTLS && u.Scheme != "https" {
			t.Errorf("endpoint %s: tls is set, want https", ep)
		}
		host := u.Hostname()
		if net.ParseIP(host) != nil {
			continue
		}
		if strings.Count(host, ".") < 2 || strings.HasSuffix(host, ".svc") ||
			slices.ContainsFunc(clusterZones, func(z string) bool { return dns.IsSubDomain(dns.Fqdn(z), dns.Fqdn(host)) }) {
			t.Errorf("endpoint %s: a cluster name, which this pod (dnsPolicy Default) cannot resolve", ep)
		}
	}
}

func mode(m *int32) string {
	if m == nil {
		return "unset"
	}
	return fmt.Sprintf("%#o", *m)
}

func first(args []string, ok bool) string {
	if !ok || len(args) == 0 {
		return ""
	}
	return args[0]
}
