output "address" {
  description = "Host name of the database."
  value       = aws_db_instance.main.address
}

output "port" {
  description = "Port of the database."
  value       = aws_db_instance.main.port
}

output "db_name" {
  description = "Database name."
  value       = aws_db_instance.main.db_name
}

output "username" {
  description = "Master user name."
  value       = aws_db_instance.main.username
}
