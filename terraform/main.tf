locals {
  labels = merge(var.labels, {
    app        = "opsuite"
    managed-by = "terraform"
  })

  # A variable default cannot reference path.module, hence the null default.
  function_source_dir = coalesce(var.function_source_dir, "${path.module}/../build")

  source_bucket_name = coalesce(var.source_bucket_name, "${local.project_id}-opsuite-fn-source")

  # The APIs the suite calls or deploys with, nothing more (iam.googleapis.com: the service
  # accounts; cloudbuild + artifactregistry: function builds; eventarc + run: 2nd gen).
  required_apis = toset([
    "artifactregistry.googleapis.com",
    "bigquery.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudscheduler.googleapis.com",
    "eventarc.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ])
}

data "google_project" "this" {
  project_id = local.project_id
}

resource "google_project_service" "required" {
  for_each = local.required_apis

  project = local.project_id
  service = each.value

  # Never switch an API off on destroy: other workloads in the project may use it,
  # and a DR `terraform apply` must not race an API that is being disabled.
  disable_on_destroy         = false
  disable_dependent_services = false
}

# The Pub/Sub and Eventarc service agents exist only once something asks for them; in a
# new project the first trigger would race their creation. Created explicitly (google-beta
# only) so the grants below and the functions' triggers can depend on them. The provider
# notes the API may not return the email: grants build it from the project number.
resource "google_project_service_identity" "pubsub" {
  provider = google-beta

  project = local.project_id
  service = "pubsub.googleapis.com"

  depends_on = [google_project_service.required]
}

resource "google_project_service_identity" "eventarc" {
  provider = google-beta

  project = local.project_id
  service = "eventarc.googleapis.com"

  depends_on = [google_project_service.required]
}

# A service agent created on request gets none of the roles it is normally granted
# automatically ("Create and grant roles to service agents", IAM docs): grant them.
resource "google_project_iam_member" "eventarc_agent" {
  # checkov:skip=CKV_GCP_49:The Eventarc service agent's own role, granted to that Google-managed agent at project level exactly as Google grants it automatically; an agent created on request gets it only this way (IAM docs, "Create and grant roles to service agents").
  project = local.project_id
  role    = "roles/eventarc.serviceAgent"
  member  = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-eventarc.iam.gserviceaccount.com"

  depends_on = [google_project_service_identity.eventarc]
}

resource "google_project_iam_member" "pubsub_agent" {
  # checkov:skip=CKV_GCP_49:The Pub/Sub service agent's own role, granted to that Google-managed agent at project level exactly as Google grants it automatically; an agent created on request gets it only this way (IAM docs, "Create and grant roles to service agents").
  project = local.project_id
  role    = "roles/pubsub.serviceAgent"
  member  = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"

  depends_on = [google_project_service_identity.pubsub]
}

# Newly enabled APIs and new service agents take minutes to propagate: the first function
# create or Eventarc trigger in a brand-new project otherwise fails with "Permission denied
# while using the Eventarc Service Agent" (hashicorp/terraform-provider-google#25294). Every
# function (modules/function's `prerequisites`) and Monitoring resource waits for this.
resource "time_sleep" "apis_ready" {
  create_duration = var.api_propagation_wait

  triggers = {
    apis     = join(",", sort(local.required_apis))
    pubsub   = google_project_service_identity.pubsub.id
    eventarc = google_project_service_identity.eventarc.id
  }

  depends_on = [
    google_project_service.required,
    google_project_service_identity.pubsub,
    google_project_service_identity.eventarc,
    google_project_iam_member.eventarc_agent,
    google_project_iam_member.pubsub_agent,
  ]
}

# IAM grants take a minute to apply: the first build must not run as a build account
# without its roles yet (the function would be tainted), nor the first push before the
# Pub/Sub agent may mint the trigger identity's tokens (the official cloudfunctions2
# builder example waits the same way).
resource "time_sleep" "iam_ready" {
  create_duration = "60s"

  depends_on = [
    google_project_iam_member.build_run_builder,
    google_storage_bucket_iam_member.build_source_viewer,
    google_service_account_iam_member.pubsub_agent_token_creator,
  ]
}
