# `terraform output` gives what the deploy workflow and docs/deployment.md need.

output "aws_region" {
  description = "Region of the stack (GitHub variable AWS_REGION)."
  value       = var.aws_region
}

output "ecr_repository_url" {
  description = "Where images are pushed."
  value       = module.ecr.repository_url
}

output "ecr_repository_name" {
  description = "ECR repository name (GitHub variable ECR_REPOSITORY)."
  value       = module.ecr.repository_name
}

output "ecs_cluster_name" {
  description = "ECS cluster (GitHub variable ECS_CLUSTER)."
  value       = module.ecs.cluster_name
}

output "ecs_service_name" {
  description = "ECS service of the host (GitHub variable ECS_SERVICE)."
  value       = module.ecs.service_name
}

output "host_task_family" {
  description = "Task definition family of the host (GitHub variable HOST_TASK_FAMILY)."
  value       = module.ecs.host_task_family
}

output "migration_task_family" {
  description = "Task definition family of the migration task (GitHub variable MIGRATION_TASK_FAMILY)."
  value       = module.ecs.migration_task_family
}

output "subnet_ids" {
  description = "Comma-separated subnets for one-off tasks (GitHub variable SUBNET_IDS)."
  value       = join(",", module.networking.public_subnet_ids)
}

output "fargate_security_group_id" {
  description = "Security group for one-off tasks (GitHub variable SECURITY_GROUP_ID)."
  value       = module.security.task_security_group_id
}

output "link_endpoint" {
  description = "host:port the ATMs connect to (ISO-8583 over TCP)."
  value       = "${module.ecs.nlb_dns_name}:${var.link_port}"
}

output "ops_url" {
  description = "Base URL of the ops API (scripts/smoke_test.sh takes it)."
  value       = "https://${module.ecs.nlb_dns_name}:${var.ops_port}"
}

output "statements_bucket" {
  description = "Statements bucket (STATEMENT_S3_BUCKET)."
  value       = module.s3.bucket_name
}

output "host_log_group" {
  description = "CloudWatch log group of the host."
  value       = module.monitoring.host_log_group
}

output "migration_log_group" {
  description = "CloudWatch log group of the migration task."
  value       = module.monitoring.migration_log_group
}

output "secret_arns" {
  description = "Secrets Manager ARNs by variable name (read OPS_API_TOKEN from there)."
  value       = module.secrets.arns
}

output "link_ca_cert_pem" {
  description = "CA of the host link: terminals verify the host against it (atm device --tls-ca)."
  value       = tls_self_signed_cert.link_ca.cert_pem
}

output "link_terminal_certificates" {
  description = "Per terminal ID: its client certificate and key for mutual TLS (--tls-cert, --tls-key)."
  sensitive   = true
  value = {
    for terminal in sort(var.terminal_ids) : terminal => {
      cert_pem = tls_locally_signed_cert.link_terminal[terminal].cert_pem
      key_pem  = tls_private_key.link_terminal[terminal].private_key_pem
    }
  }
}
