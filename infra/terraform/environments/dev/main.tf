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

# --- TLS on the host link (docs/deployment.md, "TLS on the host link") ----------------------
# The NLB passes the link's TLS through to the host (a TCP listener), so the host holds the
# certificate and sees each terminal's client certificate (mutual TLS binds it to DE 41). A
# private CA for the link: terminals trust only it, and it issues one client certificate per
# terminal (outputs below). Keys live in state and Secrets Manager, like the other secrets.

resource "tls_private_key" "link_ca" {
  algorithm   = "ECDSA"
  ecdsa_curve = "P256"
}

resource "tls_self_signed_cert" "link_ca" {
  private_key_pem       = tls_private_key.link_ca.private_key_pem
  is_ca_certificate     = true
  validity_period_hours = 24 * 365 * 5
  allowed_uses          = ["cert_signing", "crl_signing"]

  subject {
    common_name  = "${local.name} link CA"
    organization = "atm-simulator"
  }
}

resource "tls_private_key" "link_host" {
  algorithm   = "ECDSA"
  ecdsa_curve = "P256"
}

resource "tls_cert_request" "link_host" {
  private_key_pem = tls_private_key.link_host.private_key_pem
  dns_names       = [module.ecs.nlb_dns_name]

  subject {
    common_name  = module.ecs.nlb_dns_name
    organization = "atm-simulator"
  }
}

resource "tls_locally_signed_cert" "link_host" {
  cert_request_pem      = tls_cert_request.link_host.cert_request_pem
  ca_private_key_pem    = tls_private_key.link_ca.private_key_pem
  ca_cert_pem           = tls_self_signed_cert.link_ca.cert_pem
  validity_period_hours = 24 * 397
  early_renewal_hours   = 24 * 30
  allowed_uses          = ["digital_signature", "key_agreement", "server_auth"]
}

resource "tls_private_key" "link_terminal" {
  for_each    = toset(var.terminal_ids)
  algorithm   = "ECDSA"
  ecdsa_curve = "P256"
}

resource "tls_cert_request" "link_terminal" {
  for_each        = toset(var.terminal_ids)
  private_key_pem = tls_private_key.link_terminal[each.key].private_key_pem

  subject {
    common_name  = each.key # the terminal ID: the host checks it against DE 41
    organization = "atm-simulator"
  }
}

resource "tls_locally_signed_cert" "link_terminal" {
  for_each              = toset(var.terminal_ids)
  cert_request_pem      = tls_cert_request.link_terminal[each.key].cert_request_pem
  ca_private_key_pem    = tls_private_key.link_ca.private_key_pem
  ca_cert_pem           = tls_self_signed_cert.link_ca.cert_pem
  validity_period_hours = 24 * 397
  early_renewal_hours   = 24 * 30
  allowed_uses          = ["digital_signature", "key_agreement", "client_auth"]
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

# OPS_TLS_CERT/OPS_TLS_KEY: the ops API serves HTTPS itself with the link's host certificate
# (it names the NLB's DNS name, which is the ops endpoint's name too), so the bearer token
# never crosses a network in clear.
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
    LINK_TLS_CERT = tls_locally_signed_cert.link_host.cert_pem
    LINK_TLS_KEY  = tls_private_key.link_host.private_key_pem
    OPS_TLS_CERT  = tls_locally_signed_cert.link_host.cert_pem
    OPS_TLS_KEY   = tls_private_key.link_host.private_key_pem
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
  extra_environment      = merge(var.host_settings, { LINK_TLS_CLIENT_CA = tls_self_signed_cert.link_ca.cert_pem })
  secret_arns            = module.secrets.arns
  kms_key_arn            = module.security.kms_key_arn
  statements_bucket      = module.s3.bucket_name
  statements_bucket_arn  = module.s3.bucket_arn
  host_log_group         = module.monitoring.host_log_group
  migration_log_group    = module.monitoring.migration_log_group
  ops_certificate_arn    = var.ops_certificate_arn
  deletion_protection    = var.protect_data
}
