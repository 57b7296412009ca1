# The dev environment: one host task behind a Network Load Balancer, RDS PostgreSQL, secrets,
# the statements bucket, logs and alarms. docs/deployment.md walks through it step by step.

locals {
  name = "${var.project}-${var.environment}"
}

# --- Generated secrets (kept in state and in Secrets Manager, never in tfvars) ---------------

resource "random_password" "db" {
  length  = 32
  special = false # it goes into DATABASE_URL unescaped
}

resource "random_password" "secret_key" {
  length  = 48
  special = false
}

# PIN_PEPPER is part of every PIN hash: replacing it locks every customer out. It only
# changes if this resource is replaced (terraform taint / destroy), never on a normal apply.
resource "random_password" "pin_pepper" {
  length  = 48
  special = false
}

resource "random_password" "ops_api_token" {
  length  = 40
  special = false
}

# One terminal master key (TMK, 16 bytes) per terminal: the host sends each terminal its
# working keys encrypted under it at sign-on; the same value is loaded into that ATM's PIN pad
# ("Key management" in docs/deployment.md). Adding a terminal adds a key; the others stay.
resource "random_id" "terminal_master_key" {
  for_each    = toset(var.terminal_ids)
  byte_length = 16
}

# --- Modules ----------------------------------------------------------------------------------

module "networking" {
  source   = "../../modules/networking"
  name     = local.name
  vpc_cidr = var.vpc_cidr
}

module "security" {
  source             = "../../modules/security"
  name               = local.name
  vpc_id             = module.networking.vpc_id
  link_port          = var.link_port
  ops_port           = var.ops_port
  link_allowed_cidrs = var.link_allowed_cidrs
  ops_allowed_cidrs  = var.ops_allowed_cidrs
}

module "ecr" {
  source       = "../../modules/ecr"
  name         = local.name
  kms_key_arn  = module.security.kms_key_arn
  force_delete = !var.protect_data
}

module "rds" {
  source              = "../../modules/rds"
  name                = local.name
  subnet_ids          = module.networking.public_subnet_ids
  security_group_id   = module.security.db_security_group_id
  kms_key_arn         = module.security.kms_key_arn
  instance_class      = var.db_instance_class
  password            = random_password.db.result
  deletion_protection = var.protect_data
}

module "secrets" {
  source      = "../../modules/secrets"
  name        = local.name
  kms_key_arn = module.security.kms_key_arn
  values = {
    DATABASE_URL  = "postgresql+psycopg://${module.rds.username}:${random_password.db.result}@${module.rds.address}:${module.rds.port}/${module.rds.db_name}?sslmode=require"
    SECRET_KEY    = random_password.secret_key.result
    PIN_PEPPER    = random_password.pin_pepper.result
    OPS_API_TOKEN = random_password.ops_api_token.result
    TERMINAL_MASTER_KEYS = join(",", [
      for terminal in sort(var.terminal_ids) : "${terminal}=${upper(random_id.terminal_master_key[terminal].hex)}"
    ])
  }
}

module "s3" {
  source        = "../../modules/s3"
  name          = local.name
  kms_key_arn   = module.security.kms_key_arn
  force_destroy = !var.protect_data
}

module "monitoring" {
  source                       = "../../modules/monitoring"
  name                         = local.name
  kms_key_arn                  = module.security.kms_key_arn
  retention_days               = var.log_retention_days
  alarm_topic_arns             = var.alarm_topic_arns
  cluster_name                 = module.ecs.cluster_name
  service_name                 = module.ecs.service_name
  nlb_arn_suffix               = module.ecs.nlb_arn_suffix
  link_target_group_arn_suffix = module.ecs.link_target_group_arn_suffix
}

module "ecs" {
  source                 = "../../modules/ecs"
  name                   = local.name
  vpc_id                 = module.networking.vpc_id
  subnet_ids             = module.networking.public_subnet_ids
  task_security_group_id = module.security.task_security_group_id
  nlb_security_group_id  = module.security.nlb_security_group_id
  repository_url         = module.ecr.repository_url
  image_tag              = var.image_tag
  link_port              = var.link_port
  ops_port               = var.ops_port
  cpu                    = var.task_cpu
  memory                 = var.task_memory
  desired_count          = var.desired_count
  log_level              = var.log_level
  extra_environment      = var.host_settings
  secret_arns            = module.secrets.arns
  kms_key_arn            = module.security.kms_key_arn
  statements_bucket      = module.s3.bucket_name
  statements_bucket_arn  = module.s3.bucket_arn
  host_log_group         = module.monitoring.host_log_group
  migration_log_group    = module.monitoring.migration_log_group
  ops_certificate_arn    = var.ops_certificate_arn
  deletion_protection    = var.protect_data
}
