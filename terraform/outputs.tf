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

output "sla_evaluator_function" {
  description = "Deployed sla-evaluator function (name, id, source object)."
  value = {
    name          = module.sla_evaluator.name
    id            = module.sla_evaluator.id
    source_object = module.sla_evaluator.source_object
  }
}

output "alert_router_function" {
  description = "Deployed alert-router function (name, id, source object, the Eventarc triggers delivering to it)."
  value = {
    name          = module.alert_router.name
    id            = module.alert_router.id
    source_object = module.alert_router.source_object
    triggers      = module.alert_router.triggers
  }
}

output "topics" {
  description = "Pub/Sub topic ids, by role in the suite."
  value = {
    backup_trigger       = google_pubsub_topic.backup_trigger.id
    backup_events        = google_pubsub_topic.backup_events.id
    sla_trigger          = google_pubsub_topic.sla_trigger.id
    alerts               = google_pubsub_topic.alerts.id
    monitoring_incidents = google_pubsub_topic.monitoring_incidents.id
  }
}

output "receiver_secrets" {
  description = "Secret Manager secrets the alert router reads (add their versions out of band: see README.md)."
  value       = sort(keys(local.secrets))
}

output "service_accounts" {
  description = "Service account emails, by role in the suite."
  value = {
    backup_export = google_service_account.backup_export.email
    health_check  = google_service_account.health_check.email
    sla_evaluator = google_service_account.sla_evaluator.email
    alert_router  = google_service_account.alert_router.email
    event_trigger = google_service_account.event_trigger.email
    build         = google_service_account.build.email
  }
}
