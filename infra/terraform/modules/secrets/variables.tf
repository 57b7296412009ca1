variable "name" {
  description = "Prefix of the secret names (name/VARIABLE)."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the secrets."
  type        = string
}

variable "values" {
  description = "Secret values keyed by the environment variable the host reads."
  type        = map(string)
  sensitive   = true
}

variable "recovery_window_days" {
  description = "Days a deleted secret can be restored (0 deletes at once)."
  type        = number
  default     = 7
}
