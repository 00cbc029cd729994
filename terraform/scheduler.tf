# Cloud Scheduler jobs: each publishes to a topic; the functions behind the topics are
# idempotent, so a job that fires twice (Scheduler retries, at-least-once) does no harm.

locals {
  scheduler_retry = {
    retry_count          = 3
    min_backoff_duration = "30s"
    max_backoff_duration = "600s"
    max_doublings        = 3
  }
}

# The nightly backup, at backups.schedule_utc (a past date's run reads the tables as of
# that time on that date, so the two must agree: both come from opsuite.yaml).
resource "google_cloud_scheduler_job" "backup" {
  name        = "opsuite-backup-daily"
  project     = local.project_id
  region      = var.region
  description = "Starts the daily BigQuery backup run by publishing to ${google_pubsub_topic.backup_trigger.name}."
  schedule    = local.backup_cron
  time_zone   = "Etc/UTC"
  paused      = false

  retry_config {
    retry_count          = local.scheduler_retry.retry_count
    min_backoff_duration = local.scheduler_retry.min_backoff_duration
    max_backoff_duration = local.scheduler_retry.max_backoff_duration
    max_doublings        = local.scheduler_retry.max_doublings
  }

  pubsub_target {
    topic_name = google_pubsub_topic.backup_trigger.id
    data       = base64encode("{}")
  }

  depends_on = [time_sleep.apis_ready]
}

# The weekly restore drill: the same trigger topic, {"action": "restore_drill"}.
resource "google_cloud_scheduler_job" "restore_drill" {
  name        = "opsuite-restore-drill-weekly"
  project     = local.project_id
  region      = var.region
  description = "Runs the weekly restore drill (restores a sample of the newest backup into ${local.drill_dataset} and measures it) via ${google_pubsub_topic.backup_trigger.name}."
  schedule    = var.drill_schedule
  time_zone   = "Etc/UTC"
  paused      = false

  retry_config {
    retry_count          = local.scheduler_retry.retry_count
    min_backoff_duration = local.scheduler_retry.min_backoff_duration
    max_backoff_duration = local.scheduler_retry.max_backoff_duration
    max_doublings        = local.scheduler_retry.max_doublings
  }

  pubsub_target {
    topic_name = google_pubsub_topic.backup_trigger.id
    data       = base64encode(jsonencode({ action = "restore_drill" }))
  }

  depends_on = [time_sleep.apis_ready]
}

# The SLA evaluation, every slos.cadence_minutes.
resource "google_cloud_scheduler_job" "sla" {
  name        = "opsuite-sla-evaluation"
  project     = local.project_id
  region      = var.region
  description = "Runs the SLA evaluator every ${local.sla_cadence_minutes} minutes via ${google_pubsub_topic.sla_trigger.name}."
  schedule    = local.sla_cron
  time_zone   = "Etc/UTC"
  paused      = false

  # a missed evaluation is caught up by the next one: a short retry only
  retry_config {
    retry_count          = 1
    min_backoff_duration = "30s"
    max_backoff_duration = "120s"
    max_doublings        = 1
  }

  pubsub_target {
    topic_name = google_pubsub_topic.sla_trigger.id
    data       = base64encode("{}")
  }

  lifecycle {
    precondition {
      condition = (
        (local.sla_cadence_minutes < 60 && 60 % local.sla_cadence_minutes == 0) ||
        (local.sla_cadence_minutes % 60 == 0 && 1440 % local.sla_cadence_minutes == 0)
      )
      error_message = "slos.cadence_minutes must divide the hour (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30) or be whole hours dividing the day (60, 120, 180, 240, 360, 480, 720, 1440): Cloud Scheduler's cron fires on those."
    }
  }

  depends_on = [time_sleep.apis_ready]
}

# The alert router's tick, every 5 minutes: repeats, group flushes, held-back
# notifications, expiring silences (attribute event_type=alerts.tick; body {}).
resource "google_cloud_scheduler_job" "alert_tick" {
  name        = "opsuite-alert-tick"
  project     = local.project_id
  region      = var.region
  description = "The alert router's 5-minute tick on ${google_pubsub_topic.alerts.name} (event_type=alerts.tick)."
  schedule    = "*/5 * * * *"
  time_zone   = "Etc/UTC"
  paused      = false

  # the next tick is the retry
  retry_config {
    retry_count = 0
  }

  pubsub_target {
    topic_name = google_pubsub_topic.alerts.id
    data       = base64encode("{}")
    attributes = {
      event_type = "alerts.tick"
    }
  }

  depends_on = [time_sleep.apis_ready]
}
