package kubecheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// manifests is the directory under test, relative to this package.
const manifests = "../kubernetes"

// load copies deploy/kubernetes into memory, editing files on the way: each
// edit replaces old with new in a file, and must apply.
func load(t *testing.T, edits ...[3]string) filesys.FileSystem {
	t.Helper()
	fs := filesys.MakeFsInMemory()
	entries, err := os.ReadDir(manifests)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(manifests, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = string(b)
	}
	for _, e := range edits {
		name, old, repl := e[0], e[1], e[2]
		if !strings.Contains(files[name], old) {
			t.Fatalf("edit of %s: %q not found", name, old)
		}
		files[name] = strings.ReplaceAll(files[name], old, repl)
	}
	for name, body := range files {
		if err := fs.WriteFile(filepath.Join("/k", name), []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	return fs
}

func check(fs filesys.FileSystem) error {
	objs, err := Build(fs, "/k")
	if err != nil {
		return err
	}
	return objs.Check()
}

func TestManifestsOnDisk(t *testing.T) {
	objs, err := Build(filesys.MakeFsOnDisk(), manifests)
	if err != nil {
		t.Fatal(err)
	}
	if err := objs.Check(); err != nil {
		t.Fatal(err)
	}
	if len(objs.Services) != 2 || len(objs.ConfigMaps) != 1 || len(objs.ServiceAccounts) != 1 {
		t.Errorf("objects: %d services, %d config maps, %d service accounts", len(objs.Services), len(objs.ConfigMaps), len(objs.ServiceAccounts))
	}
}

// Each broken manifest is caught, by the rule it breaks: the checks can fail.
func TestBrokenManifests(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit [3]string
		want string
	}{
		{"ok/as-committed", [3]string{"pdb.yaml", "minAvailable: 1", "minAvailable: 1"}, ""},
		{"fail/misspelt-field", [3]string{"deployment.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesytem: true"},
			`unknown field "readOnlyRootFilesytem"`},
		{"fail/wrong-type", [3]string{"deployment.yaml", "replicas: 2", "replicas: two"}, "Deployment portvakt"},
		{"fail/unknown-kind", [3]string{"pdb.yaml", "kind: PodDisruptionBudget", "kind: PodDisruptionBudgets"}, "a kind kubecheck does not know"},
		{"fail/one-replica", [3]string{"deployment.yaml", "replicas: 2", "replicas: 1"}, "replicas must be at least 2"},
		{"fail/writable-root", [3]string{"deployment.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false"}, "root filesystem must be read-only"},
		{"fail/root-user", [3]string{"deployment.yaml", "runAsNonRoot: true\n            capabilities", "runAsNonRoot: false\n            capabilities"}, "runAsNonRoot is false"},
		{"ok/container-level-non-root-suffices", [3]string{"deployment.yaml", "        runAsNonRoot: true\n        runAsUser: 65532\n", "        runAsUser: 65532\n"}, ""},
		{"fail/no-memory-limit", [3]string{"deployment.yaml", "              memory: 512Mi\n", ""}, "needs both a memory request and a memory limit"},
		{"fail/dsn-literal", [3]string{"deployment.yaml", "              valueFrom:\n                secretKeyRef:\n                  name: portvakt-database\n                  key: dsn",
			"              value: postgres://portvakt:secret@db/portvakt"}, "must come from a Secret"},
		{"fail/kek-literal", [3]string{"deployment.yaml", "              valueFrom:\n                secretKeyRef:\n                  name: portvakt-signing-kek\n                  key: kek",
			"              value: c2VjcmV0"}, "PORTVAKT_SIGNING_KEK must come from a Secret"},
		{"fail/no-kek", [3]string{"deployment.yaml", "            - name: PORTVAKT_SIGNING_KEK\n              valueFrom:\n                secretKeyRef:\n                  name: portvakt-signing-kek\n                  key: kek\n", ""},
			"PORTVAKT_SIGNING_KEK must come from a Secret"},
		{"fail/readiness-on-public-port", [3]string{"deployment.yaml", "path: /readyz\n              port: ops", "path: /readyz\n              port: http"}, "readiness probe must ask the ops listener"},
		{"fail/liveness-path", [3]string{"deployment.yaml", "path: /healthz\n              port: ops\n            periodSeconds: 10", "path: /readyz\n              port: ops\n            periodSeconds: 10"}, "liveness probe asks /readyz"},
		{"fail/ops-port-mismatch", [3]string{"deployment.yaml", "containerPort: 9464", "containerPort: 9090"}, "port ops is 9090 but PORTVAKT_OPS_LISTEN listens on 9464"},
		{"fail/no-migration", [3]string{"deployment.yaml", `args: ["migrate", "up",`, `args: ["migrate", "status",`}, "no init container runs `portvakt migrate up`"},
		{"fail/pdb-selects-nothing", [3]string{"pdb.yaml", "app.kubernetes.io/component: server", "app.kubernetes.io/component: db"}, "its selector does not match the pods"},
		{"fail/pdb-without-selector", [3]string{"pdb.yaml", "  selector:\n    matchLabels:\n      app.kubernetes.io/name: portvakt\n      app.kubernetes.io/component: server\n", ""}, "its selector does not match the pods"},
		{"fail/pdb-blocks-drains", [3]string{"pdb.yaml", "minAvailable: 1", "minAvailable: 2"}, "no drain can proceed"},
		{"fail/service-numeric-port", [3]string{"services.yaml", "targetPort: http", "targetPort: 8080"}, "must target a named container port"},
		{"fail/no-metrics-service", [3]string{"services.yaml", "targetPort: ops", "targetPort: http"}, "no Service targets the ops port"},
		{"fail/key-not-from-secret", [3]string{"portvakt.yaml", "key_file: /etc/portvakt/signing/signing-key.pem", "key_file: /etc/portvakt/trust/signing-key.pem"}, "is not mounted from a Secret"},
		{"fail/generated-keys", [3]string{"portvakt.yaml", "key_file: /etc/portvakt/signing/signing-key.pem", `key_file: ""`}, "each replica would generate a key of its own"},
		{"fail/unmounted-trust", [3]string{"portvakt.yaml", "roots: [/etc/portvakt/trust/roots.pem]", "roots: [/etc/ssl/roots.pem]"}, "/etc/ssl/roots.pem (named in the config) is not mounted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := check(load(t, tc.edit))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("no error, want one containing %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q\ndoes not contain %q", err, tc.want)
			}
		})
	}
}
