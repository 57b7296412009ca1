variable "name" {
  description = "Name prefix (cluster, service, task families, roles, load balancer)."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the target groups."
  type        = string
}

variable "subnet_ids" {
  description = "Public subnets of the tasks and the load balancer."
  type        = list(string)
}

variable "task_security_group_id" {
  description = "Security group of the tasks."
  type        = string
}

variable "nlb_security_group_id" {
  description = "Security group of the load balancer."
  type        = string
}

variable "repository_url" {
  description = "ECR repository URL of the image."
  type        = string
}

variable "image_tag" {
  description = "Image tag (the commit SHA) of the first task definition; the deploy workflow registers later ones."
  type        = string
}

variable "link_port" {
  description = "ISO-8583 link port (LINK_PORT)."
  type        = number
}

variable "ops_port" {
  description = "Ops API port (OPS_PORT)."
  type        = number
}

variable "cpu" {
  description = "Task CPU units (256 = 0.25 vCPU)."
  type        = number
  default     = 256
}

variable "memory" {
  description = "Task memory in MiB."
  type        = number
  default     = 512
}

variable "desired_count" {
  description = "Number of host tasks."
  type        = number
  default     = 1
}

variable "log_level" {
  description = "LOG_LEVEL of the host."
  type        = string
  default     = "INFO"
}

variable "extra_environment" {
  description = "More plain settings of host/config.py (e.g. DAILY_WITHDRAWAL_LIMIT); never secrets."
  type        = map(string)
  default     = {}
}

variable "secret_arns" {
  description = "Secrets Manager ARNs keyed by the environment variable they fill."
  type        = map(string)
}

variable "kms_key_arn" {
  description = "KMS key of the secrets and the statements bucket."
  type        = string
}

variable "statements_bucket" {
  description = "Name of the statements bucket (STATEMENT_S3_BUCKET)."
  type        = string
}

variable "statements_bucket_arn" {
  description = "ARN of the statements bucket."
  type        = string
}

variable "host_log_group" {
  description = "CloudWatch log group of the host."
  type        = string
}

variable "migration_log_group" {
  description = "CloudWatch log group of the migration task."
  type        = string
}

variable "readonly_root_filesystem" {
  description = "Read-only container root filesystem (scratch volumes at /tmp, /app/var, /app/statements)."
  type        = bool
  default     = true
}

variable "ops_certificate_arn" {
  description = "ACM certificate for a TLS ops listener that re-encrypts to the host; empty: TCP, the host's HTTPS passes through."
  type        = string
  default     = ""
}

variable "deletion_protection" {
  description = "Deletion protection of the load balancer."
  type        = bool
  default     = true
}
