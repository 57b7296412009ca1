# Security groups (who may talk to whom) and the customer-managed KMS key that encrypts the
# secrets, the statements bucket, the log groups and the database.
#
#   internet --8583--> NLB --8583--> task      (ISO-8583 link, from var.link_allowed_cidrs)
#   operator --8080--> NLB --8080--> task      (ops API, from var.ops_allowed_cidrs only)
#   task --5432--> RDS;  task --443--> AWS APIs (ECR, Secrets Manager, CloudWatch, S3)

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

resource "aws_security_group" "nlb" {
  # checkov:skip=CKV2_AWS_5:Attached to the load balancer in the ecs module; checkov does not follow it across modules.
  name        = "${var.name}-nlb"
  description = "Network load balancer in front of the ATM host"
  vpc_id      = var.vpc_id

  tags = { Name = "${var.name}-nlb" }
}

resource "aws_vpc_security_group_ingress_rule" "nlb_link" {
  for_each = toset(var.link_allowed_cidrs)

  security_group_id = aws_security_group.nlb.id
  description       = "ISO-8583 link from ATMs in ${each.value}"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = var.link_port
  to_port           = var.link_port
}

resource "aws_vpc_security_group_ingress_rule" "nlb_ops" {
  for_each = toset(var.ops_allowed_cidrs)

  security_group_id = aws_security_group.nlb.id
  description       = "Ops API from operators in ${each.value}"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = var.ops_port
  to_port           = var.ops_port
}

resource "aws_vpc_security_group_egress_rule" "nlb_to_task" {
  for_each = toset([tostring(var.link_port), tostring(var.ops_port)])

  security_group_id            = aws_security_group.nlb.id
  description                  = "Forward to the host tasks on ${each.value}"
  referenced_security_group_id = aws_security_group.task.id
  ip_protocol                  = "tcp"
  from_port                    = tonumber(each.value)
  to_port                      = tonumber(each.value)
}

resource "aws_security_group" "task" {
  # checkov:skip=CKV2_AWS_5:Attached to the ECS service and the migration run-task; checkov does not follow it across modules.
  name        = "${var.name}-task"
  description = "ATM host and migration tasks on Fargate"
  vpc_id      = var.vpc_id

  tags = { Name = "${var.name}-task" }
}

resource "aws_vpc_security_group_ingress_rule" "task_from_nlb" {
  for_each = toset([tostring(var.link_port), tostring(var.ops_port)])

  security_group_id            = aws_security_group.task.id
  description                  = "From the load balancer on ${each.value} (traffic and health checks)"
  referenced_security_group_id = aws_security_group.nlb.id
  ip_protocol                  = "tcp"
  from_port                    = tonumber(each.value)
  to_port                      = tonumber(each.value)
}

resource "aws_vpc_security_group_egress_rule" "task_https" {
  security_group_id = aws_security_group.task.id
  description       = "HTTPS to AWS APIs (ECR, Secrets Manager, CloudWatch Logs, S3)"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "task_db" {
  security_group_id            = aws_security_group.task.id
  description                  = "PostgreSQL on RDS"
  referenced_security_group_id = aws_security_group.db.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

resource "aws_security_group" "db" {
  # checkov:skip=CKV2_AWS_5:Attached to the RDS instance in the rds module; checkov does not follow it across modules.
  name        = "${var.name}-db"
  description = "RDS PostgreSQL, reachable from the host tasks only"
  vpc_id      = var.vpc_id

  tags = { Name = "${var.name}-db" }
}

resource "aws_vpc_security_group_ingress_rule" "db_from_task" {
  security_group_id            = aws_security_group.db.id
  description                  = "PostgreSQL from the host and migration tasks"
  referenced_security_group_id = aws_security_group.task.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

# One customer-managed key ($1/month) for secrets, statements, logs and the database, with
# yearly rotation. CloudWatch Logs must be allowed to use it explicitly.
resource "aws_kms_key" "main" {
  description             = "${var.name}: secrets, statements bucket, logs, database"
  enable_key_rotation     = true
  deletion_window_in_days = 7
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "main" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.main.key_id
}

data "aws_iam_policy_document" "kms" {
  # checkov:skip=CKV_AWS_111:A key policy's resource "*" means this key only; the account-root statement is AWS's default key policy, which lets IAM policies grant use.
  # checkov:skip=CKV_AWS_356:As CKV_AWS_111: in a key policy "*" is the key itself.
  # checkov:skip=CKV_AWS_109:As CKV_AWS_111: without the account-root statement the key becomes unmanageable.
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }

  statement {
    sid = "CloudWatchLogsUse"
    actions = [
      "kms:Encrypt*",
      "kms:Decrypt*",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
      "kms:Describe*",
    ]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${data.aws_region.current.name}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:aws:logs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:log-group:/ecs/${var.name}/*"]
    }
  }
}
