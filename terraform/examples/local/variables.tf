variable "invoke_endpoint" {
  description = "URL of the local platform's Lambda Invoke API (e.g. http://127.0.0.1:9001)."
  type        = string
}

variable "api_url" {
  description = "URL of the local platform's front door, stage included (e.g. https://127.0.0.1:8443/perf)."
  type        = string
}

variable "api_key" {
  description = "API key the front door requires."
  type        = string
  sensitive   = true
}

variable "aws_endpoint" {
  description = "AWS API emulator for CloudWatch, Logs and API Gateway (moto_server, LocalStack); null: none."
  type        = string
  default     = null
}

variable "region" {
  description = "Region the emulator and the SDK use."
  type        = string
  default     = "us-east-1"
}

variable "function_name" {
  description = "Function name on the local platform."
  type        = string
  default     = "fixture-rust"
}

variable "function_alias" {
  description = "Alias, or null for $LATEST."
  type        = string
  default     = null
}

variable "api_id" {
  description = "REST API id (in the emulator, when there is one)."
  type        = string
  default     = "local"
}

variable "api_stage" {
  description = "Stage name."
  type        = string
  default     = "perf"
}

variable "usage_plan_id" {
  description = "Usage plan id (in the emulator, when there is one)."
  type        = string
  default     = "local"
}
