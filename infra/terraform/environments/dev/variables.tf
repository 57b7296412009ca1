variable "project" {
  description = "Project name, the first part of every resource name."
  type        = string
  default     = "atm-simulator"
}

variable "environment" {
  description = "Environment name, the second part of every resource name."
  type        = string
  default     = "dev"
}

variable "aws_region" {
  description = "AWS region (the same as AWS_REGION in the GitHub variables)."
  type        = string
  default     = "us-east-1"
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC."
  type        = string
  default     = "10.0.0.0/16"
}

variable "link_port" {
  description = "ISO-8583 link port (LINK_PORT of the host; the ATMs connect here)."
  type        = number
  default     = 8583
}

variable "ops_port" {
  description = "Ops API port (OPS_PORT of the host)."
  type        = number
  default     = 8080
}

variable "link_allowed_cidrs" {
  description = "IPv4 CIDR blocks of the ATMs allowed to open the ISO link (0.0.0.0/0 for anyone)."
  type        = list(string)
}

variable "ops_allowed_cidrs" {
  description = "IPv4 CIDR blocks allowed to reach the ops API: your own address, e.g. 203.0.113.7/32."
  type        = list(string)
}

variable "ops_certificate_arn" {
  description = "ACM certificate ARN: the ops listener terminates TLS with it (a publicly trusted name for browsers) and re-encrypts to the host; empty: the host's own HTTPS passes through."
  type        = string
  default     = ""
}

variable "terminal_ids" {
  description = "Terminal IDs (8 characters) that get a master key; the seed data has ATM00001..ATM00010."
  type        = list(string)
  default     = ["ATM00001", "ATM00002", "ATM00003", "ATM00004", "ATM00005", "ATM00006", "ATM00007", "ATM00008", "ATM00009", "ATM00010"]
}

variable "image_tag" {
  description = "Image tag the first host task definition uses (the commit SHA you pushed)."
  type        = string
}

variable "task_cpu" {
  description = "Host task CPU units (256 = 0.25 vCPU)."
  type        = number
  default     = 256
}

variable "task_memory" {
  description = "Host task memory in MiB."
  type        = number
  default     = 512
}

variable "desired_count" {
  description = "Number of host tasks."
  type        = number
  default     = 1
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.micro"
}

variable "log_level" {
  description = "LOG_LEVEL of the host."
  type        = string
  default     = "INFO"
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the logs."
  type        = number
  default     = 30
}

variable "host_settings" {
  description = "More plain host settings by environment variable name (host/config.py), e.g. DAILY_WITHDRAWAL_LIMIT."
  type        = map(string)
  default     = {}
}

variable "alarm_topic_arns" {
  description = "SNS topic ARNs notified by the alarms."
  type        = list(string)
  default     = []
}

variable "protect_data" {
  description = "Deletion protection and a final snapshot for the database and load balancer; false lets terraform destroy remove the database, bucket and images with their data (dev only)."
  type        = bool
  default     = true
}
