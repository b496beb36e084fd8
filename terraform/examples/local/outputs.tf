# Same names and types as ../../outputs.tf (the harness's contract).

output "region" {
  value = terraform_data.deployment.output.region
}

output "function_name" {
  value = terraform_data.deployment.output.function_name
}

output "function_arn" {
  value = "arn:aws:lambda:${var.region}:000000000000:function:${var.function_name}"
}

output "function_alias" {
  value = terraform_data.deployment.output.function_alias
}

output "api_id" {
  value = terraform_data.deployment.output.api_id
}

output "api_url" {
  value = terraform_data.deployment.output.api_url
}

output "api_stage" {
  value = terraform_data.deployment.output.api_stage
}

output "usage_plan_id" {
  value = terraform_data.deployment.output.usage_plan_id
}

output "api_key_secret" {
  value     = "value:${var.api_key}"
  sensitive = true
}

output "log_group" {
  value = terraform_data.deployment.output.log_group
}

output "alarm_names" {
  value = terraform_data.deployment.output.alarm_names
}

output "dashboard_name" {
  value = terraform_data.deployment.output.dashboard_name
}

output "endpoint_url" {
  value = terraform_data.deployment.output.endpoint_url
}

output "lambda_endpoint_url" {
  value = terraform_data.deployment.output.lambda_endpoint_url
}
