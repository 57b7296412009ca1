terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.60"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
    tls = {
      source  = "hashicorp/tls"
      version = "~> 4.0"
    }
  }

  # State holds the generated secrets: keep it in an encrypted, private S3 bucket for any
  # shared use (docs/deployment.md, "Remote state"). Local state is fine for one person.
  # backend "s3" {
  #   bucket       = "my-terraform-state"
  #   key          = "atm-simulator/dev/terraform.tfstate"
  #   region       = "us-east-1"
  #   encrypt      = true
  #   use_lockfile = true
  # }
}

provider "aws" {
  region = var.aws_region

  default_tags {
    tags = {
      Project     = "atm-simulator"
      Environment = var.environment
      ManagedBy   = "terraform"
    }
  }
}
