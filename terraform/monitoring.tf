# CloudWatch: metrics derived from the function's own REPORT lines (cold starts, Init Duration, Max Memory
# Used: Lambda publishes none of them as metrics), the alarms seeds 002 and 004 list, and the dashboard.

locals {
  # Space-delimited patterns over `REPORT RequestId: <id> Duration: <d> ms Billed Duration: <b> ms Memory Size:
  # <m> MB Max Memory Used: <u> MB [Init Duration: <i> ms]` (tabs count as spaces).
  report_fields = "type=\"REPORT\", request_id_label, request_id, duration_label, duration, duration_unit, billed_label1, billed_label2, billed, billed_unit, memory_label1, memory_label2, memory_size, memory_unit, max_label1, max_label2, max_label3, max_memory_used, max_unit"
  text_init     = "[${local.report_fields}, init_label1=\"Init\", init_label2=\"Duration:\", init_duration, init_unit, ...]"
  text_memory   = "[${local.report_fields}, ...]"

  filters = {
    ColdStarts = {
      pattern = var.log_format == "JSON" ? "{ $.type = \"platform.report\" && $.record.metrics.initDurationMs > 0 }" : local.text_init
      value   = "1"
      unit    = "Count"
    }
    InitDuration = {
      pattern = var.log_format == "JSON" ? "{ $.type = \"platform.report\" && $.record.metrics.initDurationMs > 0 }" : local.text_init
      value   = var.log_format == "JSON" ? "$.record.metrics.initDurationMs" : "$init_duration"
      unit    = "Milliseconds"
    }
    MaxMemoryUsedMB = {
      pattern = var.log_format == "JSON" ? "{ $.type = \"platform.report\" }" : local.text_memory
      value   = var.log_format == "JSON" ? "$.record.metrics.maxMemoryUsedMB" : "$max_memory_used"
      unit    = "Megabytes"
    }
  }

  lambda_dims = { FunctionName = aws_lambda_function.this.function_name }

  alarms = {
    cold_starts   = { namespace = local.namespace, metric = "ColdStarts", stat = "Sum", period = 300, threshold = var.cold_start_alarm_threshold, dims = {} }
    init_duration = { namespace = local.namespace, metric = "InitDuration", stat = "Maximum", period = 300, threshold = var.init_duration_alarm_ms, dims = {} }
    memory        = { namespace = local.namespace, metric = "MaxMemoryUsedMB", stat = "Maximum", period = 300, threshold = floor(var.memory_size * var.memory_alarm_ratio), dims = {} }
    throttles     = { namespace = "AWS/Lambda", metric = "Throttles", stat = "Sum", period = 60, threshold = 0, dims = local.lambda_dims }
    duration      = { namespace = "AWS/Lambda", metric = "Duration", stat = "Average", period = 300, threshold = var.duration_alarm_ms, dims = local.lambda_dims }
    errors        = { namespace = "AWS/Lambda", metric = "Errors", stat = "Sum", period = 300, threshold = var.errors_alarm_threshold, dims = local.lambda_dims }
  }
}

resource "aws_cloudwatch_log_metric_filter" "report" {
  for_each       = local.filters
  name           = "${var.function_name}-${each.key}"
  log_group_name = aws_cloudwatch_log_group.function.name
  pattern        = each.value.pattern

  metric_transformation {
    name      = each.key
    namespace = local.namespace
    value     = each.value.value
    unit      = each.value.unit
  }
}

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each            = local.alarms
  alarm_name          = "${var.function_name}-${replace(each.key, "_", "-")}"
  alarm_description   = "perf-acceptance: ${each.value.metric} ${each.value.stat} > ${each.value.threshold} over ${each.value.period} s"
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  dimensions          = each.value.dims
  statistic           = each.value.stat
  period              = each.value.period
  evaluation_periods  = 1
  threshold           = each.value.threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = var.tags
  depends_on          = [aws_cloudwatch_log_metric_filter.report]
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.function_name
  dashboard_body = jsonencode({
    widgets = [
      {
        type = "metric", x = 0, y = 0, width = 12, height = 6
        properties = {
          title = "Overview: invocations and errors", region = data.aws_region.current.name, stat = "Sum", period = 60
          metrics = [
            ["AWS/Lambda", "Invocations", "FunctionName", var.function_name, { id = "inv" }],
            [".", "Errors", ".", ".", { id = "err" }],
            [{ expression = "100 * (1 - err / inv)", label = "Success rate %", id = "ok" }],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 0, width = 12, height = 6
        properties = {
          title = "Cold start analysis", region = data.aws_region.current.name, period = 60
          metrics = [
            [local.namespace, "ColdStarts", { stat = "Sum" }],
            [".", "InitDuration", { stat = "p95" }],
          ]
        }
      },
      {
        type = "metric", x = 0, y = 6, width = 12, height = 6
        properties = {
          title = "Resource utilization", region = data.aws_region.current.name, period = 60
          metrics = [
            [local.namespace, "MaxMemoryUsedMB", { stat = "Maximum" }],
            ["AWS/Lambda", "ConcurrentExecutions", "FunctionName", var.function_name, { stat = "Maximum" }],
            [".", "Duration", ".", ".", { stat = "p50" }],
            [".", "Duration", ".", ".", { stat = "p90" }],
            [".", "Duration", ".", ".", { stat = "p99" }],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 6, width = 12, height = 6
        properties = {
          title = "Performance trends: throttles and API latency", region = data.aws_region.current.name, period = 60
          metrics = [
            ["AWS/Lambda", "Throttles", "FunctionName", var.function_name, { stat = "Sum" }],
            ["AWS/ApiGateway", "Latency", "ApiName", aws_api_gateway_rest_api.this.name, "Stage", var.stage_name, { stat = "p95" }],
            [".", "5XXError", ".", ".", ".", ".", { stat = "Sum" }],
            [".", "4XXError", ".", ".", ".", ".", { stat = "Sum" }],
          ]
        }
      },
    ]
  })
}
