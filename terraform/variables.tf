variable "function_name" {
  description = "Name of the fixture function (also names the API, alarms, dashboard and metric namespace)."
  type        = string
  default     = "perf-fixture"
}

variable "package_type" {
  description = "Zip (the fixture's bootstrap binary on provided.al2023) or Image (a container image in ECR)."
  type        = string
  default     = "Zip"

  validation {
    condition     = contains(["Zip", "Image"], var.package_type)
    error_message = "package_type must be Zip or Image."
  }
}

variable "zip_path" {
  description = "Zip file holding the fixture's `bootstrap` executable (package_type = Zip)."
  type        = string
  default     = null
}

variable "image_uri" {
  description = "ECR image URI of the fixture (package_type = Image), e.g. built from fixtures' optimized Dockerfile."
  type        = string
  default     = null
}

variable "architecture" {
  description = "x86_64 or arm64."
  type        = string
  default     = "x86_64"
}

variable "memory_size" {
  description = "Memory of the function in MB (seed 002 default: 512)."
  type        = number
  default     = 512
}

variable "timeout" {
  description = "Timeout of the function in seconds (seed 002 default: 30)."
  type        = number
  default     = 30
}

variable "reserved_concurrency" {
  description = "Reserved concurrency; -1 leaves the function in the account's unreserved pool."
  type        = number
  default     = -1
}

variable "provisioned_concurrency" {
  description = "Provisioned concurrency of the `live` alias; 0 for none."
  type        = number
  default     = 0
}

variable "log_format" {
  description = "Lambda log format: Text (REPORT lines) or JSON (platform.report records)."
  type        = string
  default     = "Text"

  validation {
    condition     = contains(["Text", "JSON"], var.log_format)
    error_message = "log_format must be Text or JSON."
  }
}

variable "log_retention_days" {
  description = "Retention of the function's log group."
  type        = number
  default     = 14
}

variable "environment" {
  description = "Environment variables of the function (the fixture's knobs: INIT_DELAY_MS, WORK_MS, ALLOC_MB, ...)."
  type        = map(string)
  default     = {}
}

variable "stage_name" {
  description = "API Gateway stage name."
  type        = string
  default     = "perf"
}

variable "api_throttle_rate_limit" {
  description = "Stage throttling: steady-state requests per second (seed 002 default: 2000)."
  type        = number
  default     = 2000
}

variable "api_throttle_burst_limit" {
  description = "Stage throttling: burst (seed 002 default: 5000)."
  type        = number
  default     = 5000
}

variable "usage_plan_rate_limit" {
  description = "Usage plan throttling rate for the API key; null uses the stage's."
  type        = number
  default     = null
}

variable "usage_plan_burst_limit" {
  description = "Usage plan throttling burst for the API key; null uses the stage's."
  type        = number
  default     = null
}

variable "metric_namespace" {
  description = "Namespace of the metrics the log metric filters derive from REPORT lines; null: PerfAcceptance/<function_name>."
  type        = string
  default     = null
}

variable "cold_start_alarm_threshold" {
  description = "Alarm when more cold starts than this happen in 5 minutes (seed 004: 10)."
  type        = number
  default     = 10
}

variable "init_duration_alarm_ms" {
  description = "Alarm when Init Duration exceeds this many ms (seed 004: 2000)."
  type        = number
  default     = 2000
}

variable "memory_alarm_ratio" {
  description = "Alarm when Max Memory Used exceeds this share of the memory size (seed 004: 0.85)."
  type        = number
  default     = 0.85
}

variable "duration_alarm_ms" {
  description = "Alarm when the average Duration exceeds this many ms (seeds 002 and 004: 5000)."
  type        = number
  default     = 5000
}

variable "errors_alarm_threshold" {
  description = "Alarm when more errors than this happen in 5 minutes (seed 004: 5)."
  type        = number
  default     = 5
}

variable "alarm_actions" {
  description = "ARNs notified when an alarm fires (SNS topics)."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags of every resource."
  type        = map(string)
  default     = {}
}
