output "bucket_name" {
  description = "Name of the statements bucket (STATEMENT_S3_BUCKET)."
  value       = aws_s3_bucket.statements.id
}

output "bucket_arn" {
  description = "ARN of the statements bucket."
  value       = aws_s3_bucket.statements.arn
}
