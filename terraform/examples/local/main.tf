# The harness's Terraform contract for a deployment that is not on AWS: the embedded local platform (its
# Invoke API and HTTPS front door) and, optionally, an AWS API emulator (moto_server, LocalStack) for
# CloudWatch, Logs and API Gateway. Only built-in resources, so `terraform init && terraform apply` works
# offline; the outputs have the same names and types as ../../outputs.tf.

terraform {
  required_version = ">= 1.5"
}

locals {
  alarm_roles = ["cold_starts", "init_duration", "throttles", "memory", "duration", "errors"]
}

# Records what the harness is pointed at, so that `terraform output` reads applied state like any module's.
resource "terraform_data" "deployment" {
  input = {
    region              = var.region
    function_name       = var.function_name
    function_alias      = var.function_alias
    api_id              = var.api_id
    api_url             = var.api_url
    api_stage           = var.api_stage
    usage_plan_id       = var.usage_plan_id
    log_group           = "/aws/lambda/${var.function_name}"
    alarm_names         = { for r in local.alarm_roles : r => "${var.function_name}-${replace(r, "_", "-")}" }
    dashboard_name      = var.function_name
    endpoint_url        = var.aws_endpoint
    lambda_endpoint_url = var.invoke_endpoint
  }
}
