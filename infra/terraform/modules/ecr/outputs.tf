output "repository_url" {
  description = "URL to tag and push images to."
  value       = aws_ecr_repository.app.repository_url
}

output "repository_arn" {
  description = "ARN of the repository."
  value       = aws_ecr_repository.app.arn
}

output "repository_name" {
  description = "Name of the repository."
  value       = aws_ecr_repository.app.name
}
