#!/usr/bin/env bash
# Installs, with the versions pinned in scripts/kind/versions.env, into the kind cluster:
#   - Knative Serving (CRDs and core) with Kourier as the ingress, Kourier's gateway on NodePort 31080,
#     domain 127.0.0.1.sslip.io, Knative's metrics exported for Prometheus;
#   - metrics-server (PodMetrics for the resources and build procedures; kind's kubelets use self-signed
#     certificates, hence --kubelet-insecure-tls);
#   - Prometheus on NodePort 30090 scraping cAdvisor (CPU, memory, throttling), Knative's control plane and
#     the queue-proxies (scripts/kind/prometheus.yaml);
#   - the knative-lambda-operator's CRDs when LAMBDA_OPERATOR_CRDS names them (a file, directory or URL,
#     e.g. the operator repository's k8s/base/crd.yaml); the operator itself is the user's to deploy.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
serving="https://github.com/knative/serving/releases/download/${KNATIVE_SERVING_VERSION}"
kourier="https://github.com/knative/net-kourier/releases/download/${KNATIVE_KOURIER_VERSION}"

log "Knative Serving ${KNATIVE_SERVING_VERSION}"
kubectl apply -f "$serving/serving-crds.yaml"
kubectl wait --for=condition=Established --timeout=120s crd/services.serving.knative.dev crd/revisions.serving.knative.dev
kubectl apply -f "$serving/serving-core.yaml"

log "Kourier ${KNATIVE_KOURIER_VERSION}"
kubectl apply -f "$kourier/kourier.yaml"
kubectl patch configmap/config-network -n knative-serving --type merge \
  -p '{"data":{"ingress-class":"kourier.ingress.networking.knative.dev"}}'
kubectl patch configmap/config-domain -n knative-serving --type merge -p '{"data":{"127.0.0.1.sslip.io":""}}'
# Knative exports its OpenTelemetry metrics only when asked to; Prometheus pull on the components' ports.
kubectl patch configmap/config-observability -n knative-serving --type merge \
  -p '{"data":{"metrics-protocol":"prometheus","request-metrics-protocol":"prometheus"}}'
# A shorter stable window and scale-to-zero grace than Knative's defaults (60s, 30s) so that a nightly run
# can take 30 scale-from-zero samples; the scaling checks judge against whatever window is configured.
kubectl patch configmap/config-autoscaler -n knative-serving --type merge -p "{\"data\":{
  \"stable-window\":\"${KNATIVE_STABLE_WINDOW:-10s}\",\"scale-to-zero-grace-period\":\"${KNATIVE_SCALE_TO_ZERO_GRACE:-6s}\"}}"
http_port=$(kubectl get service kourier -n kourier-system -o jsonpath='{range .spec.ports[*]}{.name}{"\n"}{end}' | grep -n '^http2$' | cut -d: -f1)
kubectl patch service kourier -n kourier-system --type json -p "[
  {\"op\":\"replace\",\"path\":\"/spec/type\",\"value\":\"NodePort\"},
  {\"op\":\"add\",\"path\":\"/spec/ports/$((http_port - 1))/nodePort\",\"value\":31080}]"
kubectl wait deployment --all -n knative-serving --for=condition=Available --timeout=300s
kubectl wait deployment --all -n kourier-system --for=condition=Available --timeout=300s

log "metrics-server ${METRICS_SERVER_VERSION}"
kubectl apply -f "https://github.com/kubernetes-sigs/metrics-server/releases/download/${METRICS_SERVER_VERSION}/components.yaml"
kubectl patch deployment metrics-server -n kube-system --type json \
  -p '[{"op":"add","path":"/spec/template/spec/containers/0/args/-","value":"--kubelet-insecure-tls"}]'
kubectl wait deployment metrics-server -n kube-system --for=condition=Available --timeout=300s
wait_for "metrics-server to serve node metrics" 180 kubectl top nodes

log "Prometheus (${PROMETHEUS_IMAGE})"
sed "s#PROMETHEUS_IMAGE#${PROMETHEUS_IMAGE}#" "$root/scripts/kind/prometheus.yaml" | kubectl apply -f -
kubectl wait deployment prometheus -n monitoring --for=condition=Available --timeout=300s
wait_for "Prometheus on 127.0.0.1:30090" 120 curl -fsS http://127.0.0.1:30090/-/ready

if [ -n "${LAMBDA_OPERATOR_CRDS:-}" ]; then
  log "knative-lambda-operator CRDs from ${LAMBDA_OPERATOR_CRDS}"
  kubectl apply -f "$LAMBDA_OPERATOR_CRDS"
  kubectl wait --for=condition=Established --timeout=120s crd/lambdafunctions.lambda.knative.io
else
  log "LAMBDA_OPERATOR_CRDS not set: no LambdaFunction CRDs (Kaniko build checks will report them missing)"
fi
log "installed; requests go to http://127.0.0.1:31080 with the function's host in the Host header"
