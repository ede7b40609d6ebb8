#!/usr/bin/env bash
# deploy-check.sh: check deploy/ as far as can be done without a cluster or
# a container engine. scripts/test.sh runs it; it runs on its own too.
#
#   promtool test rules    the alert rules' unit tests (and so their syntax)
#   promtool check rules   the alert rules, and the dashboard's queries
#                          (parsed as PromQL by Prometheus's own parser)
#   promtool check config  the compose stack's prometheus.yml
#   docker-compose config  the compose file, against compose's schema
#   deploy/kubecheck       kustomize build of deploy/kubernetes, every object
#                          decoded strictly into the Kubernetes API types, and
#                          the deployment's rules (a Go module of its own)
#
# That the dashboard and the alerts name metrics the server exports, and that
# the compose and Kubernetes configs load, is tested by the Go package
# ./deploy, which `go test ./...` runs.
#
# promtool and docker-compose come from Debian's prometheus and docker-compose
# packages, installed with apt-get when missing (as root; nothing is started:
# only the command-line tools are used). Nothing here touches the network but
# the package mirrors and the Go module proxy.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

die() {
	echo "deploy-check.sh: $*" >&2
	exit 1
}

# install_missing installs the Debian packages whose commands are missing.
install_missing() {
	local pkgs=()
	command -v promtool >/dev/null 2>&1 || pkgs+=(prometheus)
	command -v docker-compose >/dev/null 2>&1 || pkgs+=(docker-compose)
	command -v python3 >/dev/null 2>&1 || pkgs+=(python3)
	[[ ${#pkgs[@]} -eq 0 ]] && return 0
	scripts/apt-install.sh "${pkgs[@]}" || die "missing ${pkgs[*]}, and installing them failed"
}

echo "== deploy"
install_missing

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "-- promtool: alert rules and their unit tests"
promtool check rules deploy/prometheus/alerts.yml
promtool test rules deploy/prometheus/alerts_test.yml

echo "-- promtool: the dashboard's queries"
# Each query becomes a recording rule (JSON is YAML), with Grafana's
# variables given values, so that Prometheus's parser reads every one.
python3 - deploy/grafana/portvakt.json >"$tmp/dashboard-rules.yml" <<'PY'
import json, sys
dash = json.load(open(sys.argv[1]))
rules = []
for p in dash["panels"]:
    for t in p.get("targets", []):
        expr = t["expr"].replace("$__rate_interval", "5m").replace("$instance", ".*")
        rules.append({"record": "dashboard:panel_%d:%s" % (p["id"], t["refId"]), "expr": expr})
if len(rules) < 10:
    sys.exit("only %d queries in the dashboard" % len(rules))
json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, sys.stdout, indent=1)
PY
promtool check rules "$tmp/dashboard-rules.yml"

echo "-- promtool: the compose stack's Prometheus config"
promtool check config --syntax-only deploy/compose/prometheus.yml

echo "-- docker-compose config"
docker-compose -f deploy/compose/docker-compose.yml config -q
echo "  SUCCESS: deploy/compose/docker-compose.yml"

echo "-- kubecheck: deploy/kubernetes"
(cd deploy/kubecheck && go vet ./... && go test -count=1 ./...)
