output "cluster_name" {
  description = "ECS cluster name."
  value       = aws_ecs_cluster.main.name
}

output "service_name" {
  description = "ECS service of the host."
  value       = aws_ecs_service.host.name
}

output "host_task_family" {
  description = "Task definition family of the host."
  value       = aws_ecs_task_definition.host.family
}

output "migration_task_family" {
  description = "Task definition family of the migration task."
  value       = aws_ecs_task_definition.migration.family
}

output "nlb_dns_name" {
  description = "DNS name of the load balancer (the ATMs' host address)."
  value       = aws_lb.host.dns_name
}

output "nlb_arn_suffix" {
  description = "ARN suffix of the load balancer (CloudWatch dimension)."
  value       = aws_lb.host.arn_suffix
}

output "link_target_group_arn_suffix" {
  description = "ARN suffix of the ISO link target group (CloudWatch dimension)."
  value       = aws_lb_target_group.link.arn_suffix
}
