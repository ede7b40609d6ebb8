package kubecheck

import (
	"errors"
	"fmt"
	"net"
	"path"
	"slices"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// Objects are a kustomization's output, decoded into the API types.
type Objects struct {
	Deployments     []*appsv1.Deployment
	Services        []*corev1.Service
	ConfigMaps      []*corev1.ConfigMap
	ServiceAccounts []*corev1.ServiceAccount
	PDBs            []*policyv1.PodDisruptionBudget
}

// Build runs the kustomization in dir of fs and decodes every object
// strictly. A kind the checks do not know is an error: adding one to the
// manifests means adding it here, with its rules.
func Build(fs filesys.FileSystem, dir string) (*Objects, error) {
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build: %w", err)
	}
	out := &Objects{}
	var errs []error
	for _, r := range rm.Resources() {
		b, err := r.AsYAML()
		if err != nil {
			return nil, err
		}
		id := r.GetApiVersion() + " " + r.GetKind() + " " + r.GetName()
		var obj any
		switch r.GetApiVersion() + " " + r.GetKind() {
		case "apps/v1 Deployment":
			d := &appsv1.Deployment{}
			out.Deployments, obj = append(out.Deployments, d), d
		case "v1 Service":
			s := &corev1.Service{}
			out.Services, obj = append(out.Services, s), s
		case "v1 ConfigMap":
			c := &corev1.ConfigMap{}
			out.ConfigMaps, obj = append(out.ConfigMaps, c), c
		case "v1 ServiceAccount":
			s := &corev1.ServiceAccount{}
			out.ServiceAccounts, obj = append(out.ServiceAccounts, s), s
		case "policy/v1 PodDisruptionBudget":
			p := &policyv1.PodDisruptionBudget{}
			out.PDBs, obj = append(out.PDBs, p), p
		default:
			errs = append(errs, fmt.Errorf("%s: a kind kubecheck does not know", id))
			continue
		}
		if err := yaml.UnmarshalStrict(b, obj); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", id, err))
		}
	}
	return out, errors.Join(errs...)
}

// Check reports every broken rule at once.
func (o *Objects) Check() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(o.Deployments) != 1 {
		bad("want one Deployment, got %d", len(o.Deployments))
		return errors.Join(errs...)
	}
	d := o.Deployments[0]
	pod := d.Spec.Template
	podLabels := labels.Set(pod.Labels)
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		bad("Deployment %s: replicas must be at least 2 (no single point of failure)", d.Name)
	}
	if sel, err := selectorOf(d.Spec.Selector); err != nil || !sel.Matches(podLabels) {
		bad("Deployment %s: the selector does not match the pod template's labels", d.Name)
	}
	if ru := d.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
		bad("Deployment %s: a rolling update must keep every replica until its successor is ready (maxUnavailable: 0)", d.Name)
	}
	spec := pod.Spec
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		bad("Deployment %s: the pods need no Kubernetes API token (automountServiceAccountToken: false)", d.Name)
	}
	podNonRoot := spec.SecurityContext != nil && spec.SecurityContext.RunAsNonRoot != nil && *spec.SecurityContext.RunAsNonRoot
	all := append(slices.Clone(spec.InitContainers), spec.Containers...)
	for _, c := range all {
		checkContainer(c, podNonRoot, bad)
	}

	// The migration step.
	migrates := false
	for _, c := range spec.InitContainers {
		if slices.Equal(firstN(c.Args, 2), []string{"migrate", "up"}) {
			migrates = true
		}
	}
	if !migrates {
		bad("Deployment %s: no init container runs `portvakt migrate up`", d.Name)
	}

	// The server container: its ports, probes, database and files.
	var server *corev1.Container
	for i, c := range spec.Containers {
		if slices.Equal(firstN(c.Args, 1), []string{"serve"}) {
			server = &spec.Containers[i]
		}
	}
	if server == nil {
		bad("Deployment %s: no container runs `portvakt serve`", d.Name)
		return errors.Join(errs...)
	}
	ports := map[string]int32{}
	for _, p := range server.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for name, env := range map[string]string{"http": "PORTVAKT_LISTEN", "ops": "PORTVAKT_OPS_LISTEN"} {
		p, ok := ports[name]
		if !ok {
			bad("container %s: no port named %q", server.Name, name)
			continue
		}
		if got := listenPort(server.Env, env); got != p {
			bad("container %s: port %s is %d but %s listens on %d", server.Name, name, p, env, got)
		}
	}
	checkProbe := func(kind string, pr *corev1.Probe, wantPath string) {
		switch {
		case pr == nil || pr.HTTPGet == nil:
			bad("container %s: no HTTP %s probe", server.Name, kind)
		case pr.HTTPGet.Path != wantPath:
			bad("container %s: the %s probe asks %s, want %s", server.Name, kind, pr.HTTPGet.Path, wantPath)
		case portNumber(pr.HTTPGet.Port, ports) != ports["ops"]:
			bad("container %s: the %s probe must ask the ops listener, not port %s", server.Name, kind, pr.HTTPGet.Port.String())
		}
	}
	checkProbe("readiness", server.ReadinessProbe, "/readyz")
	checkProbe("liveness", server.LivenessProbe, "/healthz")
	for _, c := range all {
		dsn := envVar(c.Env, "PORTVAKT_DATABASE_DSN")
		if dsn == nil || dsn.Value != "" || dsn.ValueFrom == nil || dsn.ValueFrom.SecretKeyRef == nil {
			bad("container %s: PORTVAKT_DATABASE_DSN must come from a Secret (secretKeyRef), never a literal", c.Name)
		}
		// The signing keys live in the database, sealed under a KEK that
		// every replica shares: a secret too.
		if kek := envVar(c.Env, "PORTVAKT_SIGNING_KEK"); kek == nil || kek.Value != "" || kek.ValueFrom == nil || kek.ValueFrom.SecretKeyRef == nil {
			bad("container %s: PORTVAKT_SIGNING_KEK must come from a Secret (secretKeyRef), never a literal", c.Name)
		}
		if v := envVar(c.Env, "PORTVAKT_DATABASE_DRIVER"); v == nil || v.Value != "postgres" {
			bad("container %s: replicas share one database: PORTVAKT_DATABASE_DRIVER must be postgres", c.Name)
		}
		o.checkFiles(c, spec.Volumes, bad)
	}

	// The disruption budget guards the pods and lets a drain proceed.
	if len(o.PDBs) != 1 {
		bad("want one PodDisruptionBudget, got %d", len(o.PDBs))
	}
	for _, p := range o.PDBs {
		if sel, err := selectorOf(p.Spec.Selector); err != nil || !sel.Matches(podLabels) {
			bad("PodDisruptionBudget %s: its selector does not match the pods", p.Name)
		}
		if p.Spec.MinAvailable == nil || p.Spec.MinAvailable.Type != intstr.Int || p.Spec.MinAvailable.IntVal < 1 ||
			d.Spec.Replicas == nil || p.Spec.MinAvailable.IntVal >= *d.Spec.Replicas {
			bad("PodDisruptionBudget %s: minAvailable must be at least 1 and below the replicas, or no drain can proceed", p.Name)
		}
	}

	// One Service for the public port, one for the ops listener.
	targets := map[string]bool{}
	for _, s := range o.Services {
		if len(s.Spec.Selector) == 0 || !labels.SelectorFromValidatedSet(s.Spec.Selector).Matches(podLabels) {
			bad("Service %s: its selector does not match the pods", s.Name)
		}
		var names []string
		for _, p := range s.Spec.Ports {
			if _, ok := ports[p.TargetPort.String()]; p.TargetPort.Type != intstr.String || !ok {
				bad("Service %s: port %s must target a named container port, not %s", s.Name, p.Name, p.TargetPort.String())
				continue
			}
			names = append(names, p.TargetPort.String())
		}
		if slices.Contains(names, "http") && slices.Contains(names, "ops") {
			bad("Service %s: the ops listener never shares a Service with the public port", s.Name)
		}
		for _, n := range names {
			targets[n] = true
		}
	}
	for _, want := range []string{"http", "ops"} {
		if !targets[want] {
			bad("no Service targets the %s port", want)
		}
	}
	if spec.ServiceAccountName != "" && !slices.ContainsFunc(o.ServiceAccounts, func(s *corev1.ServiceAccount) bool { return s.Name == spec.ServiceAccountName }) {
		bad("Deployment %s: ServiceAccount %s is not in the manifests", d.Name, spec.ServiceAccountName)
	}
	return errors.Join(errs...)
}

// checkContainer holds every container, init containers too, to the same
// hardening and to bounded resources.
func checkContainer(c corev1.Container, podNonRoot bool, bad func(string, ...any)) {
	sc := c.SecurityContext
	if sc == nil {
		bad("container %s: no securityContext", c.Name)
		return
	}
	if !podNonRoot && (sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot) {
		bad("container %s: must run as non-root (runAsNonRoot)", c.Name)
	}
	if sc.RunAsNonRoot != nil && !*sc.RunAsNonRoot {
		bad("container %s: runAsNonRoot is false", c.Name)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		bad("container %s: the root filesystem must be read-only", c.Name)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		bad("container %s: allowPrivilegeEscalation must be false", c.Name)
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
		bad("container %s: must drop ALL capabilities and add none", c.Name)
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, okReq := c.Resources.Requests[r]
		lim, okLim := c.Resources.Limits[r]
		if !okReq || !okLim {
			bad("container %s: needs both a %s request and a %s limit", c.Name, r, r)
			continue
		}
		if req.Cmp(lim) > 0 {
			bad("container %s: the %s request %s exceeds the limit %s", c.Name, r, req.String(), lim.String())
		}
	}
}

// checkFiles follows the container's --config file to the ConfigMap it is
// mounted from, and checks that the files the config names (the signing
// key, the trust anchors) are mounted, the signing key from a Secret.
func (o *Objects) checkFiles(c corev1.Container, volumes []corev1.Volume, bad func(string, ...any)) {
	i := slices.Index(c.Args, "--config")
	if i < 0 || i+1 >= len(c.Args) {
		bad("container %s: no --config file", c.Name)
		return
	}
	file := c.Args[i+1]
	m, vol := mountOf(c, volumes, file)
	if m == nil || vol.ConfigMap == nil || m.SubPath == "" {
		bad("container %s: the config file %s is not mounted from a ConfigMap key", c.Name, file)
		return
	}
	var cm *corev1.ConfigMap
	for _, x := range o.ConfigMaps {
		if x.Name == vol.ConfigMap.Name {
			cm = x
		}
	}
	if cm == nil {
		bad("container %s: ConfigMap %s (the config file) is not in the manifests", c.Name, vol.ConfigMap.Name)
		return
	}
	var cfg struct {
		Signing struct {
			KeyFile         string   `json:"key_file"`
			PublishKeyFiles []string `json:"publish_key_files"`
		} `json:"signing"`
		Trust struct {
			Roots         []string `json:"roots"`
			Intermediates []string `json:"intermediates"`
		} `json:"trust"`
	}
	if err := yaml.Unmarshal([]byte(cm.Data[m.SubPath]), &cfg); err != nil {
		bad("ConfigMap %s: %s: %v", cm.Name, m.SubPath, err)
		return
	}
	if cfg.Signing.KeyFile == "" {
		bad("ConfigMap %s: signing.key_file is empty: each replica would generate a key of its own", cm.Name)
	} else if m, vol := mountOf(c, volumes, cfg.Signing.KeyFile); m == nil || vol.Secret == nil {
		bad("container %s: the signing key %s is not mounted from a Secret", c.Name, cfg.Signing.KeyFile)
	}
	if len(cfg.Trust.Roots) == 0 {
		bad("ConfigMap %s: trust.roots is empty", cm.Name)
	}
	for _, f := range slices.Concat(cfg.Signing.PublishKeyFiles, cfg.Trust.Roots, cfg.Trust.Intermediates) {
		if m, _ := mountOf(c, volumes, f); m == nil {
			bad("container %s: %s (named in the config) is not mounted", c.Name, f)
		}
	}
}

// mountOf finds the mount that serves file, and its volume.
func mountOf(c corev1.Container, volumes []corev1.Volume, file string) (*corev1.VolumeMount, *corev1.Volume) {
	for i, m := range c.VolumeMounts {
		if !(m.MountPath == file && m.SubPath != "") && !(m.SubPath == "" && path.Dir(file) == m.MountPath) {
			continue
		}
		for j, v := range volumes {
			if v.Name == m.Name {
				return &c.VolumeMounts[i], &volumes[j]
			}
		}
	}
	return nil, nil
}

// selectorOf is a workload's label selector; matchExpressions are not used
// in these manifests, so one is an error rather than a rule to evaluate.
func selectorOf(ls *metav1.LabelSelector) (labels.Selector, error) {
	if ls == nil || len(ls.MatchLabels) == 0 || len(ls.MatchExpressions) > 0 {
		return nil, errors.New("want a selector of matchLabels only")
	}
	return labels.SelectorFromValidatedSet(ls.MatchLabels), nil
}

func envVar(env []corev1.EnvVar, name string) *corev1.EnvVar {
	for i := range env {
		if env[i].Name == name {
			return &env[i]
		}
	}
	return nil
}

// listenPort is the port of a host:port environment variable (0 if unset).
func listenPort(env []corev1.EnvVar, name string) int32 {
	v := envVar(env, name)
	if v == nil {
		return 0
	}
	_, p, err := net.SplitHostPort(v.Value)
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(p, 10, 32)
	return int32(n)
}

func portNumber(p intstr.IntOrString, named map[string]int32) int32 {
	if p.Type == intstr.Int {
		return p.IntVal
	}
	return named[p.StrVal]
}

func firstN(s []string, n int) []string {
	if len(s) < n {
		return s
	}
	return s[:n]
}
