# Identities and least-privilege grants. One service account per function (never shared),
# one identity that Eventarc uses to invoke event-driven functions, one that Cloud Build
# builds them as. Every grant is on the narrowest resource that works; nothing is public
# (no allUsers/allAuthenticatedUsers). Human/script callers of HTTP functions
# (var.invoker_members) are granted in modules/function, on each HTTP function only.
# tests/terraform/test_permissions.py maps each adapter call the code makes to the
# permission it needs and checks these grants hold exactly those.

locals {
  backup_bucket_objects = "projects/_/buckets/${local.backup_bucket}/objects"
}

# --- Event trigger identity -------------------------------------------------------------

resource "google_service_account" "event_trigger" {
  project      = local.project_id
  account_id   = "opsuite-event-trigger"
  display_name = "opsuite Eventarc trigger"
  description  = "Identity Eventarc uses to push Pub/Sub events to the opsuite functions; holds roles/run.invoker on each event-driven function's service only."

  depends_on = [google_project_service.required]
}

# Projects whose Pub/Sub service agent was created on or before 2021-04-08 need this for
# Eventarc's authenticated push (Eventarc "roles and permissions" docs). Scoped to the
# trigger service account only.
resource "google_service_account_iam_member" "pubsub_agent_token_creator" {
  count = var.grant_pubsub_token_creator ? 1 : 0

  service_account_id = google_service_account.event_trigger.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"

  # the agent exists once its identity is created (main.tf), not merely once the API is on
  depends_on = [google_project_service_identity.pubsub]
}

# --- Cloud Build identity -----------------------------------------------------------------
# Builds run as this account, not the Compute Engine default service account: in projects
# created since 2024 that one may not exist, or hold no build role (Cloud Build service
# account change). The principal running `terraform apply` needs
# roles/iam.serviceAccountUser on it (and on the runtime accounts) to deploy.

resource "google_service_account" "build" {
  project      = local.project_id
  account_id   = "opsuite-build"
  display_name = "opsuite function builds"
  description  = "Identity Cloud Build uses to build the opsuite functions: writes build logs and the function images, reads the uploaded source."

  depends_on = [google_project_service.required]
}

# Cloud Run Builder: build logs, Artifact Registry images, the staged source.
resource "google_project_iam_member" "build_run_builder" {
  project = local.project_id
  role    = "roles/run.builder"
  member  = google_service_account.build.member
}

resource "google_storage_bucket_iam_member" "build_source_viewer" {
  bucket = google_storage_bucket.function_source.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.build.member
}

# --- backup_export ------------------------------------------------------------------------

resource "google_service_account" "backup_export" {
  project      = local.project_id
  account_id   = "opsuite-backup-export"
  display_name = "opsuite backup-export function"
  description  = "Runtime identity of the backup-export function: runs extract and load jobs, reads the backed-up datasets, writes the backup bucket and the drill's scratch dataset, publishes continuations and backup events."

  depends_on = [google_project_service.required]
}

# Extract (backup) and load (restore drill) jobs run in this project.
resource "google_project_iam_member" "backup_export_bigquery_job_user" {
  project = local.project_id
  role    = "roles/bigquery.jobUser"
  member  = google_service_account.backup_export.member
}

# Read (and export) only the datasets that are backed up. On the pipeline's own datasets
# grants are dataset access entries (READER = dataViewer), never *_iam_member: those
# rewrite the dataset's whole policy and drop its authorized views (provider docs).
resource "google_bigquery_dataset_access" "backup_export_reader" {
  for_each = toset(local.backup_datasets)

  project       = local.project_id
  dataset_id    = google_bigquery_dataset.data[each.value].dataset_id
  role          = "READER"
  user_by_email = google_service_account.backup_export.email
}

# The weekly restore drill loads a sample into its scratch dataset and drops it after.
resource "google_bigquery_dataset_iam_member" "backup_export_drill_editor" {
  project    = local.project_id
  dataset_id = google_bigquery_dataset.drill.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = google_service_account.backup_export.member
}

# objectAdmin (not objectCreator): extract jobs may delete/rewrite their own output files.
# Only under the backup prefix (exports, manifests, drill records) and the rejected-trigger
# records: never the alert router's or the SLA evaluator's state beside them.
resource "google_storage_bucket_iam_member" "backup_export_object_admin" {
  bucket = google_storage_bucket.backup.name
  role   = "roles/storage.objectAdmin"
  member = google_service_account.backup_export.member

  condition {
    title       = "opsuite-backups-only"
    description = "Objects under the backup prefix and _opsuite/rejected/ only."
    expression  = "resource.name.startsWith(\"${local.backup_bucket_objects}/${local.backup_prefix}/\") || resource.name.startsWith(\"${local.backup_bucket_objects}/_opsuite/rejected/\") || api.getAttribute(\"storage.googleapis.com/objectListPrefix\", \"\").startsWith(\"${local.backup_prefix}/\") || api.getAttribute(\"storage.googleapis.com/objectListPrefix\", \"\").startsWith(\"_opsuite/rejected/\")"
  }
}

# Continuation messages go back to the trigger topic.
resource "google_pubsub_topic_iam_member" "backup_export_trigger_publisher" {
  project = local.project_id
  topic   = google_pubsub_topic.backup_trigger.name
  role    = "roles/pubsub.publisher"
  member  = google_service_account.backup_export.member
}

# backup.completed / backup.failed events.
resource "google_pubsub_topic_iam_member" "backup_export_events_publisher" {
  project = local.project_id
  topic   = google_pubsub_topic.backup_events.name
  role    = "roles/pubsub.publisher"
  member  = google_service_account.backup_export.member
}

# --- health_check -------------------------------------------------------------------------
# Read-only: it probes, it never writes. No Pub/Sub, no write role on any bucket or dataset.

resource "google_service_account" "health_check" {
  project      = local.project_id
  account_id   = "opsuite-health-check"
  display_name = "opsuite health-check function"
  description  = "Runtime identity of the health-check function: read-only metadata and freshness queries on the probed datasets, reads backup manifests."

  depends_on = [google_project_service.required]
}

# Its metadata queries (INFORMATION_SCHEMA.PARTITIONS) and MAX(loaded_at) queries are query
# jobs, which run in this project. jobUser lets it create jobs; it reads no data by itself.
resource "google_project_iam_member" "health_check_bigquery_job_user" {
  project = local.project_id
  role    = "roles/bigquery.jobUser"
  member  = google_service_account.health_check.member
}

# READER (dataViewer) only, no separate metadataViewer grant: dataViewer contains every
# metadataViewer permission (datasets.get, tables.get, tables.list, which
# INFORMATION_SCHEMA.PARTITIONS needs) plus tables.getData, which the full-mode
# MAX(loaded_at) queries need. dataViewer is read-only.
resource "google_bigquery_dataset_access" "health_check_reader" {
  for_each = toset(local.health_datasets)

  project       = local.project_id
  dataset_id    = google_bigquery_dataset.data[each.value].dataset_id
  role          = "READER"
  user_by_email = google_service_account.health_check.email
}

# Reads the backup manifests (objects.get / objects.list) on the backup bucket only.
resource "google_storage_bucket_iam_member" "health_check_object_viewer" {
  bucket = google_storage_bucket.backup.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.health_check.member
}

# --- sla_evaluator ------------------------------------------------------------------------

resource "google_service_account" "sla_evaluator" {
  project      = local.project_id
  account_id   = "opsuite-sla-evaluator"
  display_name = "opsuite sla-evaluator function"
  description  = "Runtime identity of the sla-evaluator function: reads what the SLIs measure, writes custom metrics and the evaluation history, its own state in the backup bucket, publishes SLO events."

  depends_on = [google_project_service.required]
}

# The SLI queries (freshness, run history, accuracy) and the history load are jobs here.
resource "google_project_iam_member" "sla_evaluator_bigquery_job_user" {
  project = local.project_id
  role    = "roles/bigquery.jobUser"
  member  = google_service_account.sla_evaluator.member
}

resource "google_bigquery_dataset_access" "sla_evaluator_reader" {
  for_each = toset(local.sla_datasets)

  project       = local.project_id
  dataset_id    = google_bigquery_dataset.data[each.value].dataset_id
  role          = "READER"
  user_by_email = google_service_account.sla_evaluator.email
}

# Appends each evaluation to the history table (load jobs), nothing else.
resource "google_bigquery_dataset_iam_member" "sla_evaluator_history_editor" {
  project    = local.project_id
  dataset_id = google_bigquery_dataset.ops.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = google_service_account.sla_evaluator.member
}

# CreateTimeSeries: the project is the only scope Monitoring offers.
resource "google_project_iam_member" "sla_evaluator_metric_writer" {
  project = local.project_id
  role    = "roles/monitoring.metricWriter"
  member  = google_service_account.sla_evaluator.member
}

resource "google_pubsub_topic_iam_member" "sla_evaluator_alerts_publisher" {
  project = local.project_id
  topic   = google_pubsub_topic.alerts.name
  role    = "roles/pubsub.publisher"
  member  = google_service_account.sla_evaluator.member
}

# Reads manifests, drill records and the alert router's ledger (detection SLI).
resource "google_storage_bucket_iam_member" "sla_evaluator_object_viewer" {
  bucket = google_storage_bucket.backup.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.sla_evaluator.member
}

# Writes only its own state: the announced SLO states and the published-event claims.
resource "google_storage_bucket_iam_member" "sla_evaluator_state_user" {
  bucket = google_storage_bucket.backup.name
  role   = "roles/storage.objectUser"
  member = google_service_account.sla_evaluator.member

  condition {
    title       = "opsuite-slo-state-only"
    description = "Objects under _opsuite/slo/ only (announced states, event claims)."
    expression  = "resource.name.startsWith(\"${local.backup_bucket_objects}/_opsuite/slo/\") || api.getAttribute(\"storage.googleapis.com/objectListPrefix\", \"\").startsWith(\"_opsuite/slo/\")"
  }
}

# --- alert_router -------------------------------------------------------------------------

resource "google_service_account" "alert_router" {
  project      = local.project_id
  account_id   = "opsuite-alert-router"
  display_name = "opsuite alert-router function"
  description  = "Runtime identity of the alert-router function: its state and ledger under _opsuite/alerts/ in the backup bucket, the receivers' secrets."

  depends_on = [google_project_service.required]
}

# Its ledger, claims, active alerts, groups and silences: objects under _opsuite/alerts/
# only (read, write-once, compare-and-swap, delete, and listing those prefixes).
resource "google_storage_bucket_iam_member" "alert_router_state_user" {
  bucket = google_storage_bucket.backup.name
  role   = "roles/storage.objectUser"
  member = google_service_account.alert_router.member

  condition {
    title       = "opsuite-alerts-state-only"
    description = "Objects under _opsuite/alerts/ only."
    expression  = "resource.name.startsWith(\"${local.backup_bucket_objects}/_opsuite/alerts/\") || api.getAttribute(\"storage.googleapis.com/objectListPrefix\", \"\").startsWith(\"_opsuite/alerts/\")"
  }
}

# roles/secretmanager.secretAccessor on each receiver secret individually: secrets.tf.
