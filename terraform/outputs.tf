# Every output the harness reads (harness/src/terraform/contract.rs, OUTPUTS). A test holds this file to
# that list; `terraform output -json > outputs.json` and `harness run --tf-outputs outputs.json` use it.

output "region" {
  description = "AWS region of the deployment."
  value       = data.aws_region.current.name
}

output "function_name" {
  description = "Name of the Lambda function under test."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "ARN of the Lambda function."
  value       = aws_lambda_function.this.arn
}

output "function_alias" {
  description = "Alias the API invokes and provisioned concurrency applies to."
  value       = aws_lambda_alias.live.name
}

output "api_id" {
  description = "Id of the REST API."
  value       = aws_api_gateway_rest_api.this.id
}

output "api_url" {
  description = "Invoke URL of the stage."
  value       = aws_api_gateway_stage.this.invoke_url
}

output "api_stage" {
  description = "Stage name."
  value       = aws_api_gateway_stage.this.stage_name
}

output "usage_plan_id" {
  description = "Usage plan holding the API key."
  value       = aws_api_gateway_usage_plan.this.id
}

output "api_key_secret" {
  description = "Where the API key is: the harness reads its value with GetApiKey(includeValue)."
  value       = "apigateway-key:${aws_api_gateway_api_key.this.id}"
  sensitive   = true
}

output "log_group" {
  description = "Log group of the function."
  value       = aws_cloudwatch_log_group.function.name
}

output "alarm_names" {
  description = "Alarm names by role."
  value       = { for role, alarm in aws_cloudwatch_metric_alarm.this : role => alarm.alarm_name }
}

output "dashboard_name" {
  description = "CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "endpoint_url" {
  description = "AWS endpoint override: none on AWS."
  value       = null
}

output "lambda_endpoint_url" {
  description = "Lambda endpoint override: none on AWS."
  value       = null
}
