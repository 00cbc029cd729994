# One module call per function. Adding a function = a service account and its grants
# in iam.tf + one module block here (+ outputs, + the function in the Makefile's FUNCTIONS
# so that `make package` builds its source directory).
#
# No module-level depends_on: it would defer the module's archive_file data source to
# apply time whenever a dependency changes, making the source object name unknown at
# plan. Ordering comes from references and from `prerequisites` (the APIs and service
# agents, after their propagation wait). If the first event arrived before the IAM grants
# propagated, the handler raises and Pub/Sub redelivers (RETRY_POLICY_RETRY).

locals {
  config_sha256          = filesha256(var.config_file)
  function_prerequisites = [time_sleep.apis_ready.id, time_sleep.iam_ready.id]
}

module "backup_export" {
  source = "./modules/function"

  project_id  = local.project_id
  region      = var.region
  name        = "backup-export"
  description = "Exports the configured BigQuery tables to the backup bucket (daily) and runs the weekly restore drill (Pub/Sub-triggered)."
  entry_point = "backup_export"
  runtime     = var.python_runtime
  source_dir  = "${local.function_source_dir}/backup_export"

  source_bucket         = google_storage_bucket.function_source.name
  service_account_email = google_service_account.backup_export.email
  build_service_account = google_service_account.build.id
  config_sha256         = local.config_sha256
  prerequisites         = local.function_prerequisites
  replace_on            = [terraform_data.backup_trigger_topic.id]

  available_memory   = "1Gi"
  timeout_seconds    = 540
  max_instance_count = 3
  ingress_settings   = "ALLOW_INTERNAL_ONLY"

  # Every function reads its packaged config and builds the GCP adapters (OPSUITE_CONFIG,
  # OPSUITE_BACKEND); tests/terraform/test_suite_wiring.py maps every variable the code reads.
  environment_variables = {
    OPSUITE_BACKEND = "gcp"
    OPSUITE_CONFIG  = "opsuite.yaml"
    # where a trigger rejected for an unreadable config is still recorded (health reports it);
    # 2nd-gen runtimes set no project variable of their own
    OPSUITE_BACKUP_BUCKET = google_storage_bucket.backup.name
    OPSUITE_PROJECT       = local.project_id
  }

  event_trigger = {
    pubsub_topic          = google_pubsub_topic.backup_trigger.id
    service_account_email = google_service_account.event_trigger.email
    retry_policy          = "RETRY_POLICY_RETRY"
  }

  labels = merge(local.labels, { component = "backup" })
}

# HTTP function, called on demand by operators (curl with an identity token), a status page,
# scripts and the uptime check. No event trigger, no schedule.
module "health_check" {
  # checkov:skip=CKV_GCP_124:ALLOW_ALL ingress is deliberate (operators and the uptime check call it from outside the VPC); every request still needs roles/run.invoker from var.invoker_members (or the uptime check's service agent), never public. Scoped to this module call only.
  source = "./modules/function"

  project_id  = local.project_id
  region      = var.region
  name        = "health-check"
  description = "Read-only health report of the warehouse, freshness, pipeline and backups (HTTP GET, application/health+json)."
  entry_point = "health_check"
  runtime     = var.python_runtime
  source_dir  = "${local.function_source_dir}/health_check"

  source_bucket         = google_storage_bucket.function_source.name
  service_account_email = google_service_account.health_check.email
  build_service_account = google_service_account.build.id
  config_sha256         = local.config_sha256
  prerequisites         = local.function_prerequisites

  # An HTTP request should fail fast: 60 s (the HTTP maximum is 3600 s) covers the probes,
  # each bounded by health.check_timeout_seconds in opsuite.yaml (keep that well below this).
  available_memory   = "512Mi"
  timeout_seconds    = 60
  min_instance_count = 0
  max_instance_count = 3

  # ALLOW_ALL by default because operators call it from laptops, a status page and scripts
  # outside the VPC. That is a network setting only; access stays IAM-only: the module grants
  # roles/run.invoker to var.invoker_members and to nobody else, and var.invoker_members
  # rejects allUsers/allAuthenticatedUsers, so an unauthenticated request is refused
  # (401/403) by Cloud Run before it reaches the code. Set health_check_ingress =
  # "ALLOW_INTERNAL_AND_GCLB" when fronting it with a load balancer.
  ingress_settings = var.health_check_ingress
  invoker_members  = var.invoker_members

  environment_variables = {
    OPSUITE_BACKEND = "gcp"
    OPSUITE_CONFIG  = "opsuite.yaml"
  }

  labels = merge(local.labels, { component = "health" })
}

# Every slos.cadence_minutes (Cloud Scheduler → opsuite-sla-trigger): computes the SLIs,
# writes the custom metrics and the evaluation history, publishes breaches to
# opsuite-alerts. Its retries stop at slos.time_budget_seconds (300 s by default), well
# inside the 540 s timeout; then Pub/Sub redelivers.
module "sla_evaluator" {
  source = "./modules/function"

  project_id  = local.project_id
  region      = var.region
  name        = "sla-evaluator"
  description = "Evaluates the SLOs every cadence: SLIs, budgets, burn rates → Cloud Monitoring metrics, history in BigQuery, breach events (Pub/Sub-triggered)."
  entry_point = "sla_evaluator"
  runtime     = var.python_runtime
  source_dir  = "${local.function_source_dir}/sla_evaluator"

  source_bucket         = google_storage_bucket.function_source.name
  service_account_email = google_service_account.sla_evaluator.email
  build_service_account = google_service_account.build.id
  config_sha256         = local.config_sha256
  prerequisites         = local.function_prerequisites
  replace_on            = [terraform_data.sla_trigger_topic.id]

  available_memory   = "512Mi"
  timeout_seconds    = 540
  max_instance_count = 2
  ingress_settings   = "ALLOW_INTERNAL_ONLY"

  environment_variables = {
    OPSUITE_BACKEND = "gcp"
    OPSUITE_CONFIG  = "opsuite.yaml"
  }

  event_trigger = {
    pubsub_topic          = google_pubsub_topic.sla_trigger.id
    service_account_email = google_service_account.event_trigger.email
    retry_policy          = "RETRY_POLICY_RETRY"
  }

  labels = merge(local.labels, { component = "sla" })
}

# The alert router: SLO events and the 5-min tick (opsuite-alerts, its own trigger), backup
# events and Cloud Monitoring incidents (extra Eventarc triggers on the same service). A
# delivery spends at most 45 s on its receivers (plus up to 20 s waiting for a concurrent
# one's claim): 120 s leaves room; several instances so an incident storm isn't queued.
module "alert_router" {
  source = "./modules/function"

  project_id  = local.project_id
  region      = var.region
  name        = "alert-router"
  description = "Routes SLO breaches, backup failures and Cloud Monitoring incidents to Slack, PagerDuty and webhooks, once, with silences and inhibition (Pub/Sub-triggered)."
  entry_point = "alert_router"
  runtime     = var.python_runtime
  source_dir  = "${local.function_source_dir}/alert_router"

  source_bucket         = google_storage_bucket.function_source.name
  service_account_email = google_service_account.alert_router.email
  build_service_account = google_service_account.build.id
  config_sha256         = local.config_sha256
  prerequisites         = local.function_prerequisites
  replace_on = [
    terraform_data.alerts_topic.id,
    terraform_data.backup_events_topic.id,
    terraform_data.monitoring_incidents_topic.id,
  ]

  available_memory   = "512Mi"
  timeout_seconds    = 120
  max_instance_count = 10
  ingress_settings   = "ALLOW_INTERNAL_ONLY"

  environment_variables = {
    OPSUITE_BACKEND = "gcp"
    OPSUITE_CONFIG  = "opsuite.yaml"
  }

  event_trigger = {
    pubsub_topic          = google_pubsub_topic.alerts.id
    service_account_email = google_service_account.event_trigger.email
    retry_policy          = "RETRY_POLICY_RETRY"
  }
  extra_pubsub_topics = {
    backup-events = google_pubsub_topic.backup_events.id
    incidents     = google_pubsub_topic.monitoring_incidents.id
  }

  labels = merge(local.labels, { component = "alerts" })
}
