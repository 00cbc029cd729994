# Topics, named in opsuite.yaml (config.tf). Google-managed encryption: no CMEK key is
# managed in this project, and the messages carry no secrets (triggers, events, incidents).

# Cloud Scheduler publishes here to start a backup run (and the weekly restore drill);
# backup_export also republishes continuation messages here when a run does not fit in
# one invocation.
resource "google_pubsub_topic" "backup_trigger" {
  # checkov:skip=CKV_GCP_83:Google-managed encryption is sufficient for trigger messages ("{}", {"action": "restore_drill"} and continuation cursors); no CMEK key is managed in this project.
  name    = local.topics.backup_trigger
  project = local.project_id
  labels  = merge(local.labels, { component = "backup" })

  # Unacknowledged trigger messages are useless after a day (the next scheduled run supersedes them).
  message_retention_duration = "86400s"

  depends_on = [google_project_service.required]
}

# backup.completed / backup.failed / drill events: the alert router listens here.
resource "google_pubsub_topic" "backup_events" {
  # checkov:skip=CKV_GCP_83:Google-managed encryption is sufficient for backup status events; no CMEK key is managed in this project.
  name    = local.topics.backup_events
  project = local.project_id
  labels  = merge(local.labels, { component = "backup" })

  # Keep a week of events so a subscriber created later (or recreated after DR) can seek back.
  message_retention_duration = "604800s"

  depends_on = [google_project_service.required]
}

# Cloud Scheduler publishes here every slos.cadence_minutes to run the SLA evaluator.
resource "google_pubsub_topic" "sla_trigger" {
  # checkov:skip=CKV_GCP_83:Google-managed encryption is sufficient for evaluation triggers ("{}"); no CMEK key is managed in this project.
  name    = local.topics.sla_trigger
  project = local.project_id
  labels  = merge(local.labels, { component = "sla" })

  # An evaluation trigger older than an hour is superseded by the next ones.
  message_retention_duration = "3600s"

  depends_on = [google_project_service.required]
}

# slo.breached / slo.recovered / slo.burn_rate events from the SLA evaluator, and the
# alert router's 5-minute tick (attribute event_type=alerts.tick): the router listens here.
resource "google_pubsub_topic" "alerts" {
  # checkov:skip=CKV_GCP_83:Google-managed encryption is sufficient for SLO events and ticks; no CMEK key is managed in this project.
  name    = local.topics.alerts
  project = local.project_id
  labels  = merge(local.labels, { component = "alerts" })

  message_retention_duration = "604800s"

  depends_on = [google_project_service.required]
}

# Cloud Monitoring's Pub/Sub notification channel publishes incidents here (only the
# Monitoring notification service agent may publish); the alert router listens here.
resource "google_pubsub_topic" "monitoring_incidents" {
  # checkov:skip=CKV_GCP_83:Google-managed encryption is sufficient for incident notifications; no CMEK key is managed in this project.
  name    = "opsuite-monitoring-incidents"
  project = local.project_id
  labels  = merge(local.labels, { component = "alerts" })

  message_retention_duration = "604800s"

  depends_on = [google_project_service.required]
}

# One per trigger topic, replaced when its topic is (its id is unknown while the topic is
# being replaced): the function module's replace_on takes this resource's id, so a
# recreated topic also recreates the function and its Eventarc trigger, which would
# otherwise stay on _deleted-topic_ with no diff. Fallback: docs/runbook.md (-replace).
resource "terraform_data" "backup_trigger_topic" {
  input = google_pubsub_topic.backup_trigger.id

  lifecycle {
    replace_triggered_by = [google_pubsub_topic.backup_trigger.id]
  }
}

resource "terraform_data" "sla_trigger_topic" {
  input = google_pubsub_topic.sla_trigger.id

  lifecycle {
    replace_triggered_by = [google_pubsub_topic.sla_trigger.id]
  }
}

resource "terraform_data" "alerts_topic" {
  input = google_pubsub_topic.alerts.id

  lifecycle {
    replace_triggered_by = [google_pubsub_topic.alerts.id]
  }
}

resource "terraform_data" "backup_events_topic" {
  input = google_pubsub_topic.backup_events.id

  lifecycle {
    replace_triggered_by = [google_pubsub_topic.backup_events.id]
  }
}

resource "terraform_data" "monitoring_incidents_topic" {
  input = google_pubsub_topic.monitoring_incidents.id

  lifecycle {
    replace_triggered_by = [google_pubsub_topic.monitoring_incidents.id]
  }
}
