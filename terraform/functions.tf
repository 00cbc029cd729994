# One module call per function. Adding a function = a service account and its grants
# in iam.tf + one module block here (+ outputs, + the function in the Makefile's FUNCTIONS
# so that `make package` builds its source directory).
#
# No module-level depends_on: it would defer the module's archive_file data source to
# apply time whenever a dependency changes, making the source object name unknown at
# plan. Ordering comes from references (bucket, service accounts and topics depend on
# the APIs). If the first event arrived before the IAM grants propagated, the handler
# raises and Pub/Sub redelivers (RETRY_POLICY_RETRY).

module "backup_export" {
  source = "./modules/function"

  project_id  = var.project_id
  region      = var.region
  name        = "backup-export"
  description = "Exports the configured BigQuery datasets to the backup bucket (Pub/Sub-triggered, daily)."
  entry_point = "backup_export"
  runtime     = var.python_runtime
  source_dir  = "${local.function_source_dir}/backup_export"

  source_bucket         = google_storage_bucket.function_source.name
  service_account_email = google_service_account.backup_export.email
  build_service_account = var.build_service_account

  available_memory   = "1Gi"
  timeout_seconds    = 540
  max_instance_count = 3
  ingress_settings   = "ALLOW_INTERNAL_ONLY"

  environment_variables = {
    OPSUITE_BACKEND = "gcp"
    OPSUITE_CONFIG  = "opsuite.yaml"
    # where a trigger rejected for an unreadable config is still recorded (health reports it);
    # 2nd-gen runtimes set no project variable of their own
    OPSUITE_BACKUP_BUCKET = google_storage_bucket.backup.name
    OPSUITE_PROJECT       = var.project_id
  }

  event_trigger = {
    pubsub_topic          = google_pubsub_topic.backup_trigger.id
    service_account_email = google_service_account.event_trigger.email
    retry_policy          = "RETRY_POLICY_RETRY"
  }

  labels = merge(local.labels, { component = "backup" })
}

# HTTP function, called on demand by operators (curl with an identity token), a status page
# or scripts. No event trigger, no schedule.
module "health_check" {
  # checkov:skip=CKV_GCP_124:ALLOW_ALL ingress is deliberate (operators call it from outside the VPC); every request still needs roles/run.invoker from var.invoker_members, never public. Scoped to this module call only.
  source = "./modules/function"

  project_id  = var.project_id
  region      = var.region
  name        = "health-check"
  description = "Read-only health report of the warehouse, freshness, pipeline and backups (HTTP GET, application/health+json)."
  entry_point = "health_check"
  runtime     = var.python_runtime
  source_dir  = "${local.function_source_dir}/health_check"

  source_bucket         = google_storage_bucket.function_source.name
  service_account_email = google_service_account.health_check.email
  build_service_account = var.build_service_account

  # An HTTP request should fail fast: 60 s (the HTTP maximum is 3600 s) covers the probes,
  # each bounded by health.check_timeout_seconds in opsuite.yaml (keep that well below this).
  available_memory   = "512Mi"
  timeout_seconds    = 60
  min_instance_count = 0
  max_instance_count = 3

  # ALLOW_ALL by default because operators call it from laptops, a status page and scripts
  # outside the VPC. That is a network setting only; access stays IAM-only: the module grants
  # roles/run.invoker + roles/cloudfunctions.invoker to var.invoker_members and to nobody
  # else, and var.invoker_members rejects allUsers/allAuthenticatedUsers, so an
  # unauthenticated request is refused (401/403) by Cloud Run before it reaches the code. Set
  # health_check_ingress = "ALLOW_INTERNAL_AND_GCLB" when fronting it with a load balancer.
  ingress_settings = var.health_check_ingress
  invoker_members  = var.invoker_members

  environment_variables = {
    OPSUITE_BACKEND = "gcp"
    OPSUITE_CONFIG  = "opsuite.yaml"
  }

  labels = merge(local.labels, { component = "health" })
}
