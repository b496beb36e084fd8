# The fixture function: a zip on provided.al2023 or a container image, published as a version behind the
# `live` alias (which the API invokes and provisioned concurrency applies to), with its log group.

data "aws_region" "current" {}

locals {
  namespace = coalesce(var.metric_namespace, "PerfAcceptance/${var.function_name}")
  is_zip    = var.package_type == "Zip"
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "function" {
  name               = "${var.function_name}-lambda"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "logs" {
  role       = aws_iam_role.function.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
}

resource "aws_cloudwatch_log_group" "function" {
  name              = "/aws/lambda/${var.function_name}"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_lambda_function" "this" {
  function_name = var.function_name
  role          = aws_iam_role.function.arn
  package_type  = var.package_type
  architectures = [var.architecture]
  memory_size   = var.memory_size
  timeout       = var.timeout
  publish       = true

  filename         = local.is_zip ? var.zip_path : null
  source_code_hash = local.is_zip ? try(filebase64sha256(var.zip_path), null) : null
  runtime          = local.is_zip ? "provided.al2023" : null
  handler          = local.is_zip ? "bootstrap" : null
  image_uri        = local.is_zip ? null : var.image_uri

  reserved_concurrent_executions = var.reserved_concurrency

  logging_config {
    log_format = var.log_format
    log_group  = aws_cloudwatch_log_group.function.name
  }

  dynamic "environment" {
    for_each = length(var.environment) > 0 ? [var.environment] : []
    content {
      variables = environment.value
    }
  }

  lifecycle {
    precondition {
      condition     = local.is_zip ? var.zip_path != null : var.image_uri != null
      error_message = "package_type Zip needs zip_path; package_type Image needs image_uri."
    }
  }

  depends_on = [aws_iam_role_policy_attachment.logs]
  tags       = var.tags
}

resource "aws_lambda_alias" "live" {
  name             = "live"
  function_name    = aws_lambda_function.this.function_name
  function_version = aws_lambda_function.this.version
}

resource "aws_lambda_provisioned_concurrency_config" "live" {
  count                             = var.provisioned_concurrency > 0 ? 1 : 0
  function_name                     = aws_lambda_function.this.function_name
  qualifier                         = aws_lambda_alias.live.name
  provisioned_concurrent_executions = var.provisioned_concurrency
}
