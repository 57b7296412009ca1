variable "name" {
  description = "Name prefix of the log groups and alarms."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the log groups."
  type        = string
}

variable "retention_days" {
  description = "Days to keep log events."
  type        = number
  default     = 30
}

variable "alarm_topic_arns" {
  description = "SNS topics notified when an alarm changes state."
  type        = list(string)
  default     = []
}

variable "cluster_name" {
  description = "ECS cluster of the host service."
  type        = string
}

variable "service_name" {
  description = "ECS service of the host."
  type        = string
}

variable "nlb_arn_suffix" {
  description = "ARN suffix of the load balancer."
  type        = string
}

variable "link_target_group_arn_suffix" {
  description = "ARN suffix of the ISO link target group."
  type        = string
}
