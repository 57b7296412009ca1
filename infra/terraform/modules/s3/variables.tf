variable "name" {
  description = "Prefix of the bucket name."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for server-side encryption."
  type        = string
}

variable "noncurrent_days" {
  description = "Days after which a replaced statement version is deleted."
  type        = number
  default     = 90
}

variable "force_destroy" {
  description = "Let terraform destroy empty a bucket that still holds statements (dev only)."
  type        = bool
  default     = false
}
