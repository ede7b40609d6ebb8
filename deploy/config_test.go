package deploy

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v4"

	"github.com/portvakt/portvakt/internal/config"
	"github.com/portvakt/portvakt/internal/signer"
	"github.com/portvakt/portvakt/internal/testpki"
	"github.com/portvakt/portvakt/internal/testserver"
)

// loadAs loads a config file as a container would: with exactly env as its
// PORTVAKT_* environment, and the container's files (container path -> file
// here) in place of the paths the config names. Every file the config names
// must be one of files: a path nothing mounts fails here rather than at the
// replica's start. The config is validated as `serve` validates it.
func loadAs(t *testing.T, file string, env, files map[string]string) *config.Config {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "PORTVAKT_") {
			t.Setenv(k, "") // empty is unset to the config loader
		}
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	cfg, err := config.Read(file, false)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	local := func(key, p string) string {
		if f, ok := files[p]; ok {
			return f
		}
		t.Errorf("%s: %s names %s, which is not mounted", file, key, p)
		return p
	}
	cfg.Signing.KeyFile = local("signing.key_file", cfg.Signing.KeyFile)
	if cfg.Signing.KEKFile != "" {
		cfg.Signing.KEKFile = local("signing.kek_file", cfg.Signing.KEKFile)
		b, err := os.ReadFile(cfg.Signing.KEKFile)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := signer.ParseKEK(string(b)); err != nil {
			t.Fatalf("signing.kek_file: %v", err)
		}
	}
	for _, list := range []struct {
		key   string
		paths []string
	}{
		{"signing.publish_key_files", cfg.Signing.PublishKeyFiles},
		{"trust.roots", cfg.Trust.Roots},
		{"trust.intermediates", cfg.Trust.Intermediates},
		{"trust.revocation.crl_files", cfg.Trust.Revocation.CRLFiles},
	} {
		for i, p := range list.paths {
			list.paths[i] = local(list.key, p)
		}
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("%s: invalid configuration:\n%v", file, err)
	}
	// What the server does with those files at start.
	b, err := os.ReadFile(cfg.Signing.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := signer.ParsePrivateKeyPEM(b)
	if err != nil {
		t.Fatalf("signing key: %v", err)
	}
	if _, err := signer.NewKey(priv, cfg.Signing.Algorithm); err != nil {
		t.Fatalf("signing key: %v", err)
	}
	for _, f := range cfg.Trust.Roots {
		requireCA(t, f)
	}
	return cfg
}

// requireCA fails unless file holds only CA certificates, at least one.
func requireCA(t *testing.T, file string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		var block *pem.Block
		if block, b = pem.Decode(b); block == nil {
			break
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil || !c.IsCA {
			t.Fatalf("%s: a trust anchor that is not a CA certificate (%v)", file, err)
		}
		n++
	}
	if n == 0 {
		t.Fatalf("%s: no certificate", file)
	}
}

// TestKubernetesConfig loads the Kubernetes config as the Deployment's
// containers would: their literal environment, the DSN and the KEK from
// their Secrets (stand-ins here), the ConfigMap the kustomization generates, and stand-ins
// for the signing key and trust anchors the operator provides.
func TestKubernetesConfig(t *testing.T) {
	var kust struct {
		ConfigMapGenerator []struct {
			Name  string   `yaml:"name"`
			Files []string `yaml:"files"`
		} `yaml:"configMapGenerator"`
	}
	readYAML(t, "kubernetes/kustomization.yaml", &kust)
	generated := map[string]string{} // config map -> key -> file (one file each here)
	for _, g := range kust.ConfigMapGenerator {
		for _, f := range g.Files {
			generated[g.Name+"/"+filepath.Base(f)] = filepath.Join("kubernetes", f)
		}
	}
	var dep struct {
		Spec struct {
			Template struct {
				Spec struct {
					InitContainers []kubeContainer `yaml:"initContainers"`
					Containers     []kubeContainer `yaml:"containers"`
					Volumes        []kubeVolume    `yaml:"volumes"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	readYAML(t, "kubernetes/deployment.yaml", &dep)

	// The operator's files: a signing key and a trust anchor, made here.
	dir := t.TempDir()
	pki := testserver.SharedPKI(t)
	keyPEM, err := testpki.KeyPEM(pki.SigningKey)
	if err != nil {
		t.Fatal(err)
	}
	operator := map[string][]byte{
		"portvakt-signing-key/signing-key.pem": keyPEM,
		"portvakt-trust/roots.pem":             testpki.CertPEM(pki.Root.Cert),
	}

	spec := dep.Spec.Template.Spec
	for _, c := range append(spec.InitContainers, spec.Containers...) {
		t.Run("ok/"+c.Name, func(t *testing.T) {
			env := map[string]string{}
			for _, e := range c.Env {
				switch {
				case e.ValueFrom != nil && e.Name == "PORTVAKT_DATABASE_DSN":
					env[e.Name] = "postgres://portvakt@db.example/portvakt" // from the Secret portvakt-database
				case e.ValueFrom != nil && e.Name == signer.KEKEnv:
					env[e.Name] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" // from the Secret portvakt-signing-kek
				case e.ValueFrom != nil:
					t.Fatalf("%s from %v: a source this test does not know", e.Name, e.ValueFrom)
				default:
					env[e.Name] = e.Value
				}
			}
			files := map[string]string{}
			for _, m := range c.VolumeMounts {
				i := slices.IndexFunc(spec.Volumes, func(v kubeVolume) bool { return v.Name == m.Name })
				if i < 0 {
					t.Fatalf("mount %s: no volume", m.Name)
				}
				v := spec.Volumes[i]
				var source string
				switch {
				case v.ConfigMap != nil:
					source = v.ConfigMap.Name
				case v.Secret != nil:
					source = v.Secret.SecretName
				}
				add := func(key, at string) {
					if f, ok := generated[source+"/"+key]; ok {
						files[at] = f
						return
					}
					if b, ok := operator[source+"/"+key]; ok {
						f := filepath.Join(dir, strings.ReplaceAll(source+"/"+key, "/", "_"))
						if err := os.WriteFile(f, b, 0o600); err != nil {
							t.Fatal(err)
						}
						files[at] = f
					}
				}
				if m.SubPath != "" {
					add(m.SubPath, m.MountPath)
					continue
				}
				for k := range operator {
					if s, key, _ := strings.Cut(k, "/"); s == source {
						add(key, m.MountPath+"/"+key)
					}
				}
			}
			i := slices.Index(c.Args, "--config")
			if i < 0 || i+1 >= len(c.Args) || files[c.Args[i+1]] == "" {
				t.Fatalf("args %v: no --config file from the generated ConfigMap", c.Args)
			}
			cfg := loadAs(t, files[c.Args[i+1]], env, files)
			if cfg.Database.Driver != "postgres" {
				t.Errorf("database.driver %s, want postgres", cfg.Database.Driver)
			}
		})
	}
}

type kubeVolume struct {
	Name      string `yaml:"name"`
	ConfigMap *struct {
		Name string `yaml:"name"`
	} `yaml:"configMap"`
	Secret *struct {
		SecretName string `yaml:"secretName"`
	} `yaml:"secret"`
}

type kubeContainer struct {
	Name string   `yaml:"name"`
	Args []string `yaml:"args"`
	Env  []struct {
		Name      string         `yaml:"name"`
		Value     string         `yaml:"value"`
		ValueFrom map[string]any `yaml:"valueFrom"`
	} `yaml:"env"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		SubPath   string `yaml:"subPath"`
	} `yaml:"volumeMounts"`
}

func readYAML(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}
