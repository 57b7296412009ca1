output "host_log_group" {
  description = "Log group of the host."
  value       = aws_cloudwatch_log_group.host.name
}

output "migration_log_group" {
  description = "Log group of the migration task."
  value       = aws_cloudwatch_log_group.migration.name
}
