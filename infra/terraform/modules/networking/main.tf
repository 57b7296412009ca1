# VPC with two public subnets in two availability zones (RDS and the NLB need two). No NAT
# gateway (about $33/month): tasks reach ECR, Secrets Manager, CloudWatch and S3 through the
# internet gateway with a public IP, and the security groups admit no inbound traffic except
# from the load balancer. RDS sits in the same subnets but is not publicly accessible.

data "aws_region" "current" {}

# Exactly the zones named in var.zone_suffixes (a, b): a zone AWS adds later never moves a
# subnet.
data "aws_availability_zones" "available" {
  state = "available"

  filter {
    name   = "zone-name"
    values = [for suffix in var.zone_suffixes : "${data.aws_region.current.name}${suffix}"]
  }
}

locals {
  azs = sort(data.aws_availability_zones.available.names)
}

resource "aws_vpc" "main" {
  # checkov:skip=CKV2_AWS_11:Flow logs cost CloudWatch ingestion on a dev simulator; add an aws_flow_log before production.
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = { Name = "${var.name}-vpc" }
}

resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id

  tags = { Name = "${var.name}-igw" }
}

resource "aws_subnet" "public" {
  count = length(local.azs)

  vpc_id            = aws_vpc.main.id
  cidr_block        = cidrsubnet(var.vpc_cidr, 8, count.index + 1)
  availability_zone = local.azs[count.index]
  # Tasks get a public IP from their service's network configuration, not from the subnet.
  map_public_ip_on_launch = false

  tags = { Name = "${var.name}-public-${local.azs[count.index]}" }
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.main.id

  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.main.id
  }

  tags = { Name = "${var.name}-public" }
}

resource "aws_route_table_association" "public" {
  count = length(aws_subnet.public)

  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public.id
}

# The default security group admits nothing, so that nothing can use it by accident.
resource "aws_default_security_group" "default" {
  vpc_id = aws_vpc.main.id

  tags = { Name = "${var.name}-default-deny" }
}
