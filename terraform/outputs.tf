output "backup_bucket" {
  description = "Name of the bucket that receives the BigQuery exports."
  value       = google_storage_bucket.backup.name
}

output "backup_bucket_url" {
  description = "gs:// URL of the backup bucket."
  value       = google_storage_bucket.backup.url
}

output "function_source_bucket" {
  description = "Name of the private bucket holding the function source zips."
  value       = google_storage_bucket.function_source.name
}

output "backup_trigger_topic" {
  description = "Pub/Sub topic id that starts (and continues) a backup run."
  value       = google_pubsub_topic.backup_trigger.id
}

output "backup_events_topic" {
  description = "Pub/Sub topic id receiving backup.completed / backup.failed events."
  value       = google_pubsub_topic.backup_events.id
}

output "backup_scheduler_job" {
  description = "Cloud Scheduler job id that publishes to the trigger topic."
  value       = google_cloud_scheduler_job.backup.id
}

output "backup_export_function" {
  description = "Deployed backup-export function (name, id, uri, source object)."
  value = {
    name          = module.backup_export.name
    id            = module.backup_export.id
    uri           = module.backup_export.uri
    source_object = module.backup_export.source_object
  }
}

output "health_check_url" {
  description = "HTTPS URL of the health-check function. Callers need roles/run.invoker (via invoker_members) and an identity token: curl -H \"Authorization: Bearer $(gcloud auth print-identity-token)\" \"$(terraform output -raw health_check_url)?mode=full\"."
  value       = module.health_check.uri
}

output "health_check_function" {
  description = "Deployed health-check function (name, id, uri, source object)."
  value = {
    name          = module.health_check.name
    id            = module.health_check.id
    uri           = module.health_check.uri
    source_object = module.health_check.source_object
  }
}

output "service_accounts" {
  description = "Service account emails, by role in the suite."
  value = {
    backup_export = google_service_account.backup_export.email
    health_check  = google_service_account.health_check.email
    event_trigger = google_service_account.event_trigger.email
  }
}
