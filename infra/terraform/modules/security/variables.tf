variable "name" {
  description = "Name prefix for every resource."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the security groups."
  type        = string
}

variable "link_port" {
  description = "ISO-8583 link port of the host (LINK_PORT)."
  type        = number
}

variable "ops_port" {
  description = "Ops API port of the host (OPS_PORT)."
  type        = number
}

variable "link_allowed_cidrs" {
  description = "IPv4 CIDR blocks of the ATMs that may open the ISO-8583 link."
  type        = list(string)
}

variable "ops_allowed_cidrs" {
  description = "IPv4 CIDR blocks of the operators that may reach the ops API (keep this narrow)."
  type        = list(string)
}
