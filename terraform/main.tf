locals {
  labels = merge(var.labels, {
    app        = "opsuite"
    managed-by = "terraform"
  })

  # A variable default cannot reference path.module, hence the null default.
  function_source_dir = coalesce(var.function_source_dir, "${path.module}/../build")

  source_bucket_name = coalesce(var.source_bucket_name, "${var.project_id}-opsuite-fn-source")

  required_apis = toset([
    "artifactregistry.googleapis.com",
    "bigquery.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudscheduler.googleapis.com",
    "eventarc.googleapis.com",
    "iam.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ])
}

data "google_project" "this" {
  project_id = var.project_id
}

resource "google_project_service" "required" {
  for_each = local.required_apis

  project = var.project_id
  service = each.value

  # Never switch an API off on destroy: other workloads in the project may use it,
  # and a DR `terraform apply` must not race an API that is being disabled.
  disable_on_destroy         = false
  disable_dependent_services = false
}
