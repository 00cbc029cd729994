resource "google_cloud_scheduler_job" "backup" {
  name        = "opsuite-backup-daily"
  project     = var.project_id
  region      = var.region
  description = "Starts the daily BigQuery backup run by publishing to ${google_pubsub_topic.backup_trigger.name}."
  schedule    = var.backup_schedule
  time_zone   = var.backup_time_zone
  paused      = false

  retry_config {
    retry_count          = 3
    min_backoff_duration = "30s"
    max_backoff_duration = "600s"
    max_doublings        = 3
  }

  pubsub_target {
    topic_name = google_pubsub_topic.backup_trigger.id
    data       = base64encode("{}")
  }

  depends_on = [google_project_service.required]
}
