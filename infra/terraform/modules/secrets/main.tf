# Secrets Manager: one secret per sensitive setting, injected into the host's container as the
# environment variable of the same name (ECS task definition `secrets`). Values come from the
# environment (generated there with the random provider), never from a tfvars file.

resource "aws_secretsmanager_secret" "this" {
  # checkov:skip=CKV2_AWS_57:No automatic rotation: PIN_PEPPER and TERMINAL_MASTER_KEYS must not change under live data (every PIN hash and terminal would break); rotate by a planned procedure (docs/deployment.md).
  for_each = nonsensitive(toset(keys(var.values)))

  name                    = "${var.name}/${each.value}"
  description             = "${var.name}: ${each.value} for the ATM host"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.recovery_window_days
}

resource "aws_secretsmanager_secret_version" "this" {
  for_each = nonsensitive(toset(keys(var.values)))

  secret_id     = aws_secretsmanager_secret.this[each.value].id
  secret_string = var.values[each.value]
}
