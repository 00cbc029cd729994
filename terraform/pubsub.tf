# Cloud Scheduler publishes here to start a backup run; backup_export also republishes
# continuation messages here when a run does not fit in one invocation.
resource "google_pubsub_topic" "backup_trigger" {
  # checkov:skip=CKV_GCP_83:Google-managed encryption is sufficient for trigger messages ("{}" and continuation cursors); no CMEK key is managed in this project.
  name    = "opsuite-backup-trigger"
  project = var.project_id
  labels  = merge(local.labels, { component = "backup" })

  # Unacknowledged trigger messages are useless after a day (the next scheduled run supersedes them).
  message_retention_duration = "86400s"

  depends_on = [google_project_service.required]
}

# backup.completed / backup.failed events for the alert router (added later).
resource "google_pubsub_topic" "backup_events" {
  # checkov:skip=CKV_GCP_83:Google-managed encryption is sufficient for backup status events; no CMEK key is managed in this project.
  name    = "opsuite-backup-events"
  project = var.project_id
  labels  = merge(local.labels, { component = "backup" })

  # Keep a week of events so a subscriber created later (or recreated after DR) can seek back.
  message_retention_duration = "604800s"

  depends_on = [google_project_service.required]
}
