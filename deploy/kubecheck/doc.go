// Package kubecheck checks the Kubernetes manifests in deploy/kubernetes
// without a cluster: it builds the kustomization as kubectl apply -k would
// (kustomize's own library), decodes every object strictly into the
// Kubernetes API types of k8s.io/api (a misspelt or misplaced field, or a
// value of the wrong type, is an error, as a cluster's strict validation
// would make it), and checks the rules the deployment promises: replicas
// spread and guarded by a disruption budget, probes on the ops listener,
// non-root containers with a read-only root, resource requests and limits,
// secrets for the DSN and the signing key, a migration step, Services that
// select the pods and name their ports.
//
// It is a module of its own so that the server's module does not carry the
// Kubernetes libraries; scripts/deploy-check.sh runs its tests.
package kubecheck
