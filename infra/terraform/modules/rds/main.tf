# PostgreSQL for the host's ledger: the smallest Graviton instance, single-AZ, encrypted with
# the project key, reachable only from the task security group.

resource "aws_db_subnet_group" "main" {
  name       = var.name
  subnet_ids = var.subnet_ids
}

resource "aws_db_parameter_group" "main" {
  name   = "${var.name}-pg16"
  family = "postgres16"

  # Connections must use TLS; the host's psycopg URL adds sslmode=require.
  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  # Slow statements (over 500 ms) go to the PostgreSQL log exported to CloudWatch.
  parameter {
    name  = "log_min_duration_statement"
    value = "500"
  }
}

resource "aws_db_instance" "main" {
  # checkov:skip=CKV_AWS_157:Multi-AZ doubles the instance cost (~$13/month more); single-AZ is the documented dev choice, set multi_az for production.
  # checkov:skip=CKV_AWS_118:Enhanced monitoring is an extra charge; CloudWatch's basic RDS metrics and the exported PostgreSQL log cover a dev simulator.
  # checkov:skip=CKV_AWS_161:The host connects with a password from Secrets Manager (DATABASE_URL); IAM database tokens expire every 15 minutes and the app does not refresh them.
  # checkov:skip=CKV_AWS_353:Performance Insights is not offered on every micro class and is billed beyond its free tier; enable it with a larger instance.
  # checkov:skip=CKV_AWS_354:Performance Insights is off (see CKV_AWS_353), so there is no PI data to encrypt.
  # checkov:skip=CKV2_AWS_30:Statement logging of every query would put PANs in query parameters into the log; only slow statements are logged (log_min_duration_statement).
  identifier     = var.name
  engine         = "postgres"
  engine_version = var.engine_version
  instance_class = var.instance_class

  allocated_storage     = var.allocated_storage
  max_allocated_storage = var.allocated_storage * 2
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = var.kms_key_arn

  db_name  = var.db_name
  username = var.username
  password = var.password
  port     = 5432

  db_subnet_group_name   = aws_db_subnet_group.main.name
  vpc_security_group_ids = [var.security_group_id]
  parameter_group_name   = aws_db_parameter_group.main.name
  publicly_accessible    = false
  multi_az               = false

  backup_retention_period    = var.backup_retention_days
  copy_tags_to_snapshot      = true
  auto_minor_version_upgrade = true
  deletion_protection        = var.deletion_protection
  skip_final_snapshot        = !var.deletion_protection
  final_snapshot_identifier  = var.deletion_protection ? "${var.name}-final" : null

  enabled_cloudwatch_logs_exports = ["postgresql", "upgrade"]
  performance_insights_enabled    = false
}
