# Identities and least-privilege grants. One service account per function (never shared),
# plus one identity that Eventarc uses to invoke event-driven functions. Every grant is on
# the narrowest resource that works; nothing is public (no allUsers/allAuthenticatedUsers).
# Human/script callers of HTTP functions (var.invoker_members) are granted in
# modules/function, on each HTTP function only.

# --- Event trigger identity -------------------------------------------------------------

resource "google_service_account" "event_trigger" {
  project      = var.project_id
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

  # The Pub/Sub service agent exists once the API is enabled and a topic was created.
  depends_on = [google_pubsub_topic.backup_trigger]
}

# --- backup_export ------------------------------------------------------------------------

resource "google_service_account" "backup_export" {
  project      = var.project_id
  account_id   = "opsuite-backup-export"
  display_name = "opsuite backup-export function"
  description  = "Runtime identity of the backup-export function: runs extract jobs, reads the backed-up datasets, writes the backup bucket, publishes continuations and backup events."

  depends_on = [google_project_service.required]
}

# Extract jobs run in this project.
resource "google_project_iam_member" "backup_export_bigquery_job_user" {
  project = var.project_id
  role    = "roles/bigquery.jobUser"
  member  = google_service_account.backup_export.member
}

# Read (and export) only the datasets that are backed up.
resource "google_bigquery_dataset_iam_member" "backup_export_data_viewer" {
  for_each = toset(var.backup_datasets)

  project    = var.project_id
  dataset_id = each.value
  role       = "roles/bigquery.dataViewer"
  member     = google_service_account.backup_export.member
}

# objectAdmin (not objectCreator): extract jobs may delete/rewrite their own output files.
resource "google_storage_bucket_iam_member" "backup_export_object_admin" {
  bucket = google_storage_bucket.backup.name
  role   = "roles/storage.objectAdmin"
  member = google_service_account.backup_export.member
}

# Continuation messages go back to the trigger topic.
resource "google_pubsub_topic_iam_member" "backup_export_trigger_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.backup_trigger.name
  role    = "roles/pubsub.publisher"
  member  = google_service_account.backup_export.member
}

# backup.completed / backup.failed events.
resource "google_pubsub_topic_iam_member" "backup_export_events_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.backup_events.name
  role    = "roles/pubsub.publisher"
  member  = google_service_account.backup_export.member
}

# --- health_check -------------------------------------------------------------------------
# Read-only: it probes, it never writes. No Pub/Sub, no write role on any bucket or dataset.

resource "google_service_account" "health_check" {
  project      = var.project_id
  account_id   = "opsuite-health-check"
  display_name = "opsuite health-check function"
  description  = "Runtime identity of the health-check function: read-only metadata and freshness queries on the probed datasets, reads backup manifests."

  depends_on = [google_project_service.required]
}

# Its metadata queries (INFORMATION_SCHEMA.PARTITIONS) and MAX(loaded_at) queries are query
# jobs, which run in this project. jobUser lets it create jobs; it reads no data by itself.
resource "google_project_iam_member" "health_check_bigquery_job_user" {
  project = var.project_id
  role    = "roles/bigquery.jobUser"
  member  = google_service_account.health_check.member
}

# dataViewer only, no separate metadataViewer grant: dataViewer contains every
# metadataViewer permission (datasets.get, tables.get, tables.list, which
# INFORMATION_SCHEMA.PARTITIONS needs) plus tables.getData, which the full-mode
# MAX(loaded_at) queries need. The metadata-probed and fully-queried datasets are the
# same list, so a second, weaker grant on them would add nothing. dataViewer is read-only.
resource "google_bigquery_dataset_iam_member" "health_check_data_viewer" {
  for_each = toset(var.health_datasets)

  project    = var.project_id
  dataset_id = each.value
  role       = "roles/bigquery.dataViewer"
  member     = google_service_account.health_check.member
}

# Reads the backup manifests (objects.get / objects.list) on the backup bucket only.
resource "google_storage_bucket_iam_member" "health_check_object_viewer" {
  bucket = google_storage_bucket.backup.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.health_check.member
}
