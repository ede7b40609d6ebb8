// Package deploy is portvakt's operations kit: the compose stack
// (compose/), the Kubernetes manifests (kubernetes/, checked offline by the
// kubecheck module beside them), the Grafana dashboard (grafana/) and the
// Prometheus alert rules (prometheus/). docs/deploy.md says how to use them.
//
// Its Go code is tests only. They scrape a real server's /metrics and
// require every metric and label the dashboard and the alert rules query to
// be exported, and they load the compose and Kubernetes configurations the
// way the server would, with the environment and the mounted files those
// manifests give it. scripts/deploy-check.sh adds what needs other tools:
// promtool, docker-compose and kubecheck.
package deploy
