output "nlb_security_group_id" {
  description = "Security group of the network load balancer."
  value       = aws_security_group.nlb.id
}

output "task_security_group_id" {
  description = "Security group of the host and migration tasks."
  value       = aws_security_group.task.id
}

output "db_security_group_id" {
  description = "Security group of the database."
  value       = aws_security_group.db.id
}

output "kms_key_arn" {
  description = "ARN of the customer-managed KMS key."
  value       = aws_kms_key.main.arn
}
