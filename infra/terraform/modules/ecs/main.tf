# The ATM host on ECS Fargate behind a Network Load Balancer, plus the one-shot migration task.
#
# Why an NLB and not the task's public IP (docs/deployment.md, "Exposing the ISO link"): ATMs
# are configured with one host address and keep a TCP connection open; a task's public IP
# changes on every deployment and every restart, the NLB's DNS name never does. The NLB also
# health-checks the ops API and drains connections when a new task replaces the old one.
# Tasks still get a public IP, for egress only (no NAT gateway); their security group admits
# nothing but the NLB.

data "aws_region" "current" {}

locals {
  image = "${var.repository_url}:${var.image_tag}"

  # Plain settings of the host (host/config.py); secrets come from var.secret_arns.
  # tests/deploy checks these names and commands against the application.
  base_environment = {
    LINK_HOST            = "0.0.0.0"
    LINK_PORT            = tostring(var.link_port)
    OPS_HOST             = "0.0.0.0"
    OPS_PORT             = tostring(var.ops_port)
    ENVIRONMENT          = "production"
    LOG_LEVEL            = var.log_level
    STATEMENT_OUTPUT_DIR = "/app/statements"
    STATEMENT_S3_BUCKET  = var.statements_bucket
  }
  host_environment  = merge(local.base_environment, var.extra_environment)
  host_command      = ["atm", "host"]
  migration_command = ["atm", "db", "upgrade"]

  environment = [for name in sort(keys(local.host_environment)) : {
    name  = name
    value = local.host_environment[name]
  }]
  secrets = [for name in sort(keys(var.secret_arns)) : {
    name      = name
    valueFrom = var.secret_arns[name]
  }]

  # Fargate scratch volumes: the root filesystem is read-only, these are writable.
  scratch = {
    tmp        = "/tmp"
    var        = "/app/var"
    statements = "/app/statements"
  }
  mount_points = [for volume, path in local.scratch : {
    sourceVolume  = volume
    containerPath = path
    readOnly      = false
  }]

  # The ops API serves HTTPS when OPS_TLS_CERT is set (always here: production requires it).
  # Its certificate names the NLB, not 127.0.0.1, and this asks only whether the process
  # answers on its own loopback, so the check does not verify it (nothing secret travels).
  health_command = "import os, ssl, urllib.request; tls = bool(os.environ.get('OPS_TLS_CERT')); urllib.request.urlopen(('https' if tls else 'http') + '://127.0.0.1:' + os.environ.get('OPS_PORT', '8080') + '/health', timeout=4, context=ssl._create_unverified_context() if tls else None)"
}

resource "aws_ecs_cluster" "main" {
  # checkov:skip=CKV_AWS_65:Container Insights bills per metric; the service's basic CPU/memory metrics and the alarms in the monitoring module cover a single-task dev stack.
  name = var.name

  setting {
    name  = "containerInsights"
    value = "disabled"
  }
}

# --- IAM ------------------------------------------------------------------------------------

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

# Execution role: used by ECS itself to pull the image, write logs and read the secrets.
resource "aws_iam_role" "execution" {
  name               = "${var.name}-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "execution_secrets" {
  statement {
    sid       = "ReadHostSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = values(var.secret_arns)
  }
  statement {
    sid       = "DecryptHostSecrets"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "execution_secrets" {
  name   = "read-host-secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution_secrets.json
}

# Task role: what the host process itself may do (write and read statements).
resource "aws_iam_role" "task" {
  name               = "${var.name}-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "task" {
  statement {
    sid       = "Statements"
    actions   = ["s3:PutObject", "s3:GetObject"]
    resources = ["${var.statements_bucket_arn}/*"]
  }
  statement {
    sid       = "ListStatements"
    actions   = ["s3:ListBucket"]
    resources = [var.statements_bucket_arn]
  }
  statement {
    sid       = "StatementsKey"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "task" {
  name   = "host-statements"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}

# --- Task definitions -----------------------------------------------------------------------

resource "aws_ecs_task_definition" "host" {
  family                   = "${var.name}-host"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  dynamic "volume" {
    for_each = local.scratch
    content {
      name = volume.key
    }
  }

  container_definitions = jsonencode([{
    name                   = "host"
    image                  = local.image
    essential              = true
    command                = local.host_command
    readonlyRootFilesystem = var.readonly_root_filesystem
    portMappings = [
      { containerPort = var.link_port, protocol = "tcp", name = "iso-link" },
      { containerPort = var.ops_port, protocol = "tcp", name = "ops" },
    ]
    environment = local.environment
    secrets     = local.secrets
    mountPoints = local.mount_points
    healthCheck = {
      command     = ["CMD", "python", "-c", local.health_command]
      interval    = 30
      timeout     = 5
      retries     = 3
      startPeriod = 20
    }
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = var.host_log_group
        awslogs-region        = data.aws_region.current.name
        awslogs-stream-prefix = "host"
      }
    }
  }])
}

# One-shot: `atm db upgrade` by default; the seed runs with a command override
# (["atm", "db", "seed", "--allow-production"]: the seed cards have published PINs). Same
# image, settings and secrets as the host, no ports.
resource "aws_ecs_task_definition" "migration" {
  family                   = "${var.name}-migration"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 256
  memory                   = 512
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  dynamic "volume" {
    for_each = local.scratch
    content {
      name = volume.key
    }
  }

  container_definitions = jsonencode([{
    name                   = "migration"
    image                  = local.image
    essential              = true
    command                = local.migration_command
    readonlyRootFilesystem = var.readonly_root_filesystem
    environment            = local.environment
    secrets                = local.secrets
    mountPoints            = local.mount_points
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = var.migration_log_group
        awslogs-region        = data.aws_region.current.name
        awslogs-stream-prefix = "migration"
      }
    }
  }])
}

# --- Network Load Balancer ------------------------------------------------------------------

resource "aws_lb" "host" {
  # checkov:skip=CKV_AWS_91:NLB access logs only cover TLS listeners and need a log bucket; the host logs every connection and message itself.
  name                             = substr(var.name, 0, 32)
  load_balancer_type               = "network"
  internal                         = false
  subnets                          = var.subnet_ids
  security_groups                  = [var.nlb_security_group_id]
  enable_cross_zone_load_balancing = true
  enable_deletion_protection       = var.deletion_protection
}

resource "aws_lb_target_group" "link" {
  name                 = substr("${var.name}-link", 0, 32)
  port                 = var.link_port
  protocol             = "TCP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = 30
  # On deployment the old task's ATM connections are closed so that the ATMs reconnect (and
  # sign on again) to the new task instead of hanging on a half-open connection.
  connection_termination = true

  health_check {
    protocol            = "HTTPS" # the ops API serves HTTPS (OPS_TLS_CERT)
    port                = tostring(var.ops_port)
    path                = "/health"
    healthy_threshold   = 2
    unhealthy_threshold = 2
    interval            = 10
  }
}

# With an ACM certificate the ops listener terminates TLS and this group re-encrypts to the
# host's HTTPS; without one the host's HTTPS passes through untouched.
resource "aws_lb_target_group" "ops" {
  name                 = substr("${var.name}-ops", 0, 32)
  port                 = var.ops_port
  protocol             = var.ops_certificate_arn == "" ? "TCP" : "TLS"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = 30

  health_check {
    protocol            = "HTTPS"
    port                = "traffic-port"
    path                = "/health"
    healthy_threshold   = 2
    unhealthy_threshold = 2
    interval            = 10
  }
}

# TCP, not TLS: the NLB passes the link's TLS through to the host untouched, so the host
# holds the certificate and sees each terminal's client certificate (mutual TLS binds it to
# DE 41). Terminating TLS here would hide that certificate and leave the NLB-to-task hop in
# clear (docs/deployment.md, "TLS on the host link").
resource "aws_lb_listener" "link" {
  load_balancer_arn = aws_lb.host.arn
  port              = var.link_port
  protocol          = "TCP"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.link.arn
  }
}

# The ops API carries a bearer token, so the host serves it over HTTPS only (OPS_TLS_CERT: the
# link's certificate, from the private link CA; production refuses plain HTTP). By default this
# listener is TCP and passes that HTTPS through, as the link listener does. Give an ACM
# certificate (ops_certificate_arn) for a publicly trusted name: the listener then terminates
# TLS with it and the target group opens a new TLS connection to the host, so no hop is clear.
resource "aws_lb_listener" "ops" {
  load_balancer_arn = aws_lb.host.arn
  port              = var.ops_port
  protocol          = var.ops_certificate_arn == "" ? "TCP" : "TLS"
  certificate_arn   = var.ops_certificate_arn == "" ? null : var.ops_certificate_arn
  ssl_policy        = var.ops_certificate_arn == "" ? null : "ELBSecurityPolicy-TLS13-1-2-2021-06"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.ops.arn
  }
}

# --- Service --------------------------------------------------------------------------------

resource "aws_ecs_service" "host" {
  # checkov:skip=CKV_AWS_333:No NAT gateway (~$33/month): the task needs a public IP to reach ECR, Secrets Manager and CloudWatch; its security group admits only the NLB.
  name                              = "${var.name}-host"
  cluster                           = aws_ecs_cluster.main.id
  task_definition                   = aws_ecs_task_definition.host.arn
  desired_count                     = var.desired_count
  launch_type                       = "FARGATE"
  platform_version                  = "LATEST"
  health_check_grace_period_seconds = 60
  propagate_tags                    = "SERVICE"
  enable_execute_command            = false
  # A new task is healthy before the old one stops: ATMs always find a host.
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [var.task_security_group_id]
    assign_public_ip = true
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.link.arn
    container_name   = "host"
    container_port   = var.link_port
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.ops.arn
    container_name   = "host"
    container_port   = var.ops_port
  }

  # The deploy workflow registers a new task definition revision per commit and points the
  # service at it; Terraform must not roll that back on its next apply.
  lifecycle {
    ignore_changes = [task_definition]
  }

  depends_on = [aws_lb_listener.link, aws_lb_listener.ops]
}
