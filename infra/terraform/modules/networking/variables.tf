variable "name" {
  description = "Name prefix for every resource, e.g. atm-simulator-dev."
  type        = string
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC; the public subnets are its /24s number 1 and 2."
  type        = string
  default     = "10.0.0.0/16"
}

variable "zone_suffixes" {
  description = "Availability zones of the subnets, as letters after the region name (two for RDS and the NLB)."
  type        = list(string)
  default     = ["a", "b"]
}
