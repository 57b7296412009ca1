variable "name" {
  description = "Repository name."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the images."
  type        = string
}

variable "keep_images" {
  description = "How many images to keep; older ones expire."
  type        = number
  default     = 20
}

variable "force_delete" {
  description = "Let terraform destroy delete a repository that still holds images (dev only)."
  type        = bool
  default     = false
}
