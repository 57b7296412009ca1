# CloudWatch: the log groups of the host and the migration task (encrypted with the project
# key) and a few alarms that need no paid features. Alarm actions go to var.alarm_topic_arns
# (for instance an SNS topic that e-mails the operator); without one the alarms still show in
# the console.

resource "aws_cloudwatch_log_group" "host" {
  # checkov:skip=CKV_AWS_338:A year of logs costs more than the dev stack itself; var.retention_days (30 by default) is raised for production.
  name              = "/ecs/${var.name}/host"
  retention_in_days = var.retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_cloudwatch_log_group" "migration" {
  # checkov:skip=CKV_AWS_338:Migration logs matter for days, not a year (see the host log group).
  name              = "/ecs/${var.name}/migration"
  retention_in_days = var.retention_days
  kms_key_id        = var.kms_key_arn
}

# No healthy host behind the ISO link: every ATM is offline.
resource "aws_cloudwatch_metric_alarm" "link_unhealthy" {
  alarm_name          = "${var.name}-link-no-healthy-host"
  alarm_description   = "No healthy ATM host task behind the ISO-8583 link listener."
  namespace           = "AWS/NetworkELB"
  metric_name         = "HealthyHostCount"
  statistic           = "Minimum"
  period              = 60
  evaluation_periods  = 3
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  treat_missing_data  = "breaching"
  alarm_actions       = var.alarm_topic_arns
  ok_actions          = var.alarm_topic_arns

  dimensions = {
    LoadBalancer = var.nlb_arn_suffix
    TargetGroup  = var.link_target_group_arn_suffix
  }
}

resource "aws_cloudwatch_metric_alarm" "host_cpu" {
  alarm_name          = "${var.name}-host-cpu-high"
  alarm_description   = "The host's CPU stays above 80% (bcrypt PIN checks saturate a 0.25 vCPU task)."
  namespace           = "AWS/ECS"
  metric_name         = "CPUUtilization"
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = 80
  alarm_actions       = var.alarm_topic_arns
  ok_actions          = var.alarm_topic_arns

  dimensions = {
    ClusterName = var.cluster_name
    ServiceName = var.service_name
  }
}

# Log lines at ERROR or CRITICAL level, counted; an alarm when any appear.
resource "aws_cloudwatch_log_metric_filter" "host_errors" {
  name           = "${var.name}-host-errors"
  log_group_name = aws_cloudwatch_log_group.host.name
  pattern        = "?ERROR ?CRITICAL"

  metric_transformation {
    name          = "HostErrorLines"
    namespace     = "ATMSimulator/${var.name}"
    value         = "1"
    default_value = "0"
  }
}

resource "aws_cloudwatch_metric_alarm" "host_errors" {
  alarm_name          = "${var.name}-host-errors"
  alarm_description   = "The host logged ERROR or CRITICAL lines."
  namespace           = "ATMSimulator/${var.name}"
  metric_name         = "HostErrorLines"
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_topic_arns
  ok_actions          = var.alarm_topic_arns
}
