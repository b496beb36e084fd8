#!/usr/bin/env bash
# Creates in LocalStack what terraform/ creates in AWS: the fixture function (zip on provided.al2023) behind
# a `live` alias, its log group and REPORT-derived metric filters, the seed alarms, the dashboard, a REST
# API whose stage is throttled and needs an API key, and a usage plan. Then writes the outputs the harness
# reads (same names and types as terraform/outputs.tf) to /opt/perf/out/outputs.json.
set -euo pipefail

fn="${PERF_FUNCTION_NAME:-perf-fixture}"
memory="${PERF_MEMORY_SIZE:-512}"
stage="${PERF_STAGE:-perf}"
rate="${PERF_RATE_LIMIT:-2000}"
burst="${PERF_BURST_LIMIT:-5000}"
region="${AWS_DEFAULT_REGION:-us-east-1}"
ns="PerfAcceptance/${fn}"
zip="${PERF_ZIP:-/opt/perf/build/function.zip}"
out="${PERF_OUT:-/opt/perf/out/outputs.json}"

if [ ! -f "$zip" ]; then
  echo "perf-acceptance: $zip is missing: run localstack/build-fixture.sh before docker compose up" >&2
  exit 1
fi

role_arn="$(awslocal iam create-role --role-name "${fn}-lambda" \
  --assume-role-policy-document '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}' \
  --query Role.Arn --output text)"

awslocal logs create-log-group --log-group-name "/aws/lambda/${fn}"
awslocal lambda create-function --function-name "$fn" --runtime provided.al2023 --handler bootstrap \
  --role "$role_arn" --zip-file "fileb://${zip}" --memory-size "$memory" --timeout 30 --publish \
  --logging-config "LogFormat=Text,LogGroup=/aws/lambda/${fn}" >/dev/null
awslocal lambda wait function-active-v2 --function-name "$fn"
version="$(awslocal lambda list-versions-by-function --function-name "$fn" --query 'Versions[-1].Version' --output text)"
awslocal lambda create-alias --function-name "$fn" --name live --function-version "$version" >/dev/null
alias_arn="$(awslocal lambda get-alias --function-name "$fn" --name live --query AliasArn --output text)"

fields='type="REPORT", request_id_label, request_id, duration_label, duration, duration_unit, billed_label1, billed_label2, billed, billed_unit, memory_label1, memory_label2, memory_size, memory_unit, max_label1, max_label2, max_label3, max_memory_used, max_unit'
init_pattern="[${fields}, init_label1=\"Init\", init_label2=\"Duration:\", init_duration, init_unit, ...]"
awslocal logs put-metric-filter --log-group-name "/aws/lambda/${fn}" --filter-name "${fn}-ColdStarts" --filter-pattern "$init_pattern" \
  --metric-transformations "metricName=ColdStarts,metricNamespace=${ns},metricValue=1,unit=Count"
awslocal logs put-metric-filter --log-group-name "/aws/lambda/${fn}" --filter-name "${fn}-InitDuration" --filter-pattern "$init_pattern" \
  --metric-transformations "metricName=InitDuration,metricNamespace=${ns},metricValue=\$init_duration,unit=Milliseconds"
awslocal logs put-metric-filter --log-group-name "/aws/lambda/${fn}" --filter-name "${fn}-MaxMemoryUsedMB" --filter-pattern "[${fields}, ...]" \
  --metric-transformations "metricName=MaxMemoryUsedMB,metricNamespace=${ns},metricValue=\$max_memory_used,unit=Megabytes"

alarm() { # role namespace metric statistic period threshold [dimensions]
  local name="${fn}-${1//_/-}"
  awslocal cloudwatch put-metric-alarm --alarm-name "$name" --namespace "$2" --metric-name "$3" --statistic "$4" \
    --period "$5" --evaluation-periods 1 --threshold "$6" --comparison-operator GreaterThanThreshold \
    --treat-missing-data notBreaching ${7:+--dimensions "$7"}
}
alarm cold_starts "$ns" ColdStarts Sum 300 10
alarm init_duration "$ns" InitDuration Maximum 300 2000
alarm memory "$ns" MaxMemoryUsedMB Maximum 300 "$((memory * 85 / 100))"
alarm throttles AWS/Lambda Throttles Sum 60 0 "Name=FunctionName,Value=${fn}"
alarm duration AWS/Lambda Duration Average 300 5000 "Name=FunctionName,Value=${fn}"
alarm errors AWS/Lambda Errors Sum 300 5 "Name=FunctionName,Value=${fn}"

awslocal cloudwatch put-dashboard --dashboard-name "$fn" --dashboard-body "$(cat <<JSON
{"widgets":[
 {"type":"metric","x":0,"y":0,"width":12,"height":6,"properties":{"title":"Overview: invocations and errors","region":"${region}","stat":"Sum","period":60,
  "metrics":[["AWS/Lambda","Invocations","FunctionName","${fn}",{"id":"inv"}],[".","Errors",".",".",{"id":"err"}],[{"expression":"100 * (1 - err / inv)","label":"Success rate %","id":"ok"}]]}},
 {"type":"metric","x":12,"y":0,"width":12,"height":6,"properties":{"title":"Cold start analysis","region":"${region}","period":60,
  "metrics":[["${ns}","ColdStarts",{"stat":"Sum"}],[".","InitDuration",{"stat":"p95"}]]}},
 {"type":"metric","x":0,"y":6,"width":12,"height":6,"properties":{"title":"Resource utilization","region":"${region}","period":60,
  "metrics":[["${ns}","MaxMemoryUsedMB",{"stat":"Maximum"}],["AWS/Lambda","ConcurrentExecutions","FunctionName","${fn}",{"stat":"Maximum"}],[".","Duration",".",".",{"stat":"p50"}],[".","Duration",".",".",{"stat":"p90"}],[".","Duration",".",".",{"stat":"p99"}]]}},
 {"type":"metric","x":12,"y":6,"width":12,"height":6,"properties":{"title":"Performance trends: throttles","region":"${region}","period":60,
  "metrics":[["AWS/Lambda","Throttles","FunctionName","${fn}",{"stat":"Sum"}]]}}
]}
JSON
)"

api_id="$(awslocal apigateway create-rest-api --name "$fn" --query id --output text)"
root_id="$(awslocal apigateway get-resources --rest-api-id "$api_id" --query 'items[?path==`/`].id' --output text)"
proxy_id="$(awslocal apigateway create-resource --rest-api-id "$api_id" --parent-id "$root_id" --path-part '{proxy+}' --query id --output text)"
uri="arn:aws:apigateway:${region}:lambda:path/2015-03-31/functions/${alias_arn}/invocations"
for rid in "$root_id" "$proxy_id"; do
  awslocal apigateway put-method --rest-api-id "$api_id" --resource-id "$rid" --http-method ANY --authorization-type NONE --api-key-required >/dev/null
  awslocal apigateway put-integration --rest-api-id "$api_id" --resource-id "$rid" --http-method ANY --type AWS_PROXY \
    --integration-http-method POST --uri "$uri" >/dev/null
done
awslocal lambda add-permission --function-name "$fn" --qualifier live --statement-id AllowApiGatewayInvoke \
  --action lambda:InvokeFunction --principal apigateway.amazonaws.com >/dev/null
deployment_id="$(awslocal apigateway create-deployment --rest-api-id "$api_id" --query id --output text)"
awslocal apigateway create-stage --rest-api-id "$api_id" --stage-name "$stage" --deployment-id "$deployment_id" >/dev/null
awslocal apigateway update-stage --rest-api-id "$api_id" --stage-name "$stage" --patch-operations \
  "op=replace,path=/*/*/throttling/rateLimit,value=${rate}" "op=replace,path=/*/*/throttling/burstLimit,value=${burst}" \
  "op=replace,path=/*/*/metrics/enabled,value=true" >/dev/null
key_id="$(awslocal apigateway create-api-key --name "${fn}-perf" --enabled --query id --output text)"
plan_id="$(awslocal apigateway create-usage-plan --name "${fn}-perf" --throttle "rateLimit=${rate},burstLimit=${burst}" \
  --api-stages "apiId=${api_id},stage=${stage}" --query id --output text)"
awslocal apigateway create-usage-plan-key --usage-plan-id "$plan_id" --key-id "$key_id" --key-type API_KEY >/dev/null

s() { printf '{"sensitive": %s, "type": "string", "value": "%s"}' "${2:-false}" "$1"; }
alarms=""
for r in cold_starts init_duration throttles memory duration errors; do
  alarms="${alarms}${alarms:+, }\"${r}\": \"${fn}-${r//_/-}\""
done
mkdir -p "$(dirname "$out")"
cat >"$out.tmp" <<JSON
{
  "region": $(s "$region"),
  "function_name": $(s "$fn"),
  "function_arn": $(s "arn:aws:lambda:${region}:000000000000:function:${fn}"),
  "function_alias": $(s live),
  "api_id": $(s "$api_id"),
  "api_url": $(s "http://${api_id}.execute-api.localhost.localstack.cloud:4566/${stage}"),
  "api_stage": $(s "$stage"),
  "usage_plan_id": $(s "$plan_id"),
  "api_key_secret": $(s "apigateway-key:${key_id}" true),
  "log_group": $(s "/aws/lambda/${fn}"),
  "alarm_names": {"sensitive": false, "type": ["map", "string"], "value": {${alarms}}},
  "dashboard_name": $(s "$fn"),
  "endpoint_url": $(s "http://localhost:4566"),
  "lambda_endpoint_url": {"sensitive": false, "type": "string", "value": null}
}
JSON
mv "$out.tmp" "$out"
echo "perf-acceptance: fixture deployed; outputs in localstack/out/outputs.json"
