#!/usr/bin/env bash
# Deploys the fixture function as Knative Service fixture-rust (fixtures/knative/service.yaml), waits until
# it is ready and checks that it answers through Kourier on 127.0.0.1:31080 with its host in the Host header.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
kubectl apply -f "$root/fixtures/knative/service.yaml"
kubectl wait ksvc/fixture-rust -n default --for=condition=Ready --timeout=300s
host=$(kubectl get ksvc fixture-rust -n default -o jsonpath='{.status.url}' | sed -e 's#^http://##')
wait_for "fixture-rust to answer through Kourier (Host: $host)" 120 curl -fsS -H "Host: $host" http://127.0.0.1:31080/
curl -fsS -H "Host: $host" http://127.0.0.1:31080/ && echo
log "fixture-rust ready at http://127.0.0.1:31080 (Host: $host)"
