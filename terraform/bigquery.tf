# Datasets. The pipeline's own datasets (those the suite backs up, probes and evaluates) are
# declared here so a first apply in a new project (the DR case) creates them before granting
# on them, instead of dying on a 404 for a dataset IAM grant; `opsuite restore` then fills
# them. In a project where they already exist, set adopt_existing_datasets = true: the
# import block below adopts them (a missing one is then a clear "cannot import
# non-existent remote object" at plan). prevent_destroy: Terraform never deletes them.

locals {
  data_datasets = sort(distinct(concat(local.backup_datasets, local.health_datasets, local.sla_datasets)))
}

import {
  for_each = var.adopt_existing_datasets ? toset(local.data_datasets) : toset([])

  to = google_bigquery_dataset.data[each.key]
  id = "projects/${local.project_id}/datasets/${each.key}"
}

resource "google_bigquery_dataset" "data" {
  # checkov:skip=CKV_GCP_81:The pipeline's datasets keep the encryption their owners chose; this suite manages no KMS key and only ensures they exist.
  for_each = toset(local.data_datasets)

  project    = local.project_id
  dataset_id = each.value
  location   = local.location
  # the backup reads past dates through time travel: keep the window the config relies on
  max_time_travel_hours = tostring(try(local.config.backups.time_travel_hours, 168))

  delete_contents_on_destroy = false

  lifecycle {
    prevent_destroy = true
    # Their owners (the pipeline) manage these; the grants come from *_iam_member
    # resources, which the dataset's own access list would otherwise fight.
    # max_time_travel_hours is not ignored: the backup of a past date reads through time
    # travel, so the config's window is enforced on adopted datasets too.
    ignore_changes = [access, labels, description, friendly_name, default_table_expiration_ms,
    default_partition_expiration_ms]
  }

  depends_on = [google_project_service.required]
}

# The restore drill's scratch dataset: tables expire even if a drill dies half-way.
resource "google_bigquery_dataset" "drill" {
  # checkov:skip=CKV_GCP_81:Scratch copies of backed-up sample tables, expiring within a day; no KMS key is managed in this project.
  project                     = local.project_id
  dataset_id                  = local.drill_dataset
  location                    = local.location
  description                 = "opsuite restore drill scratch tables (expire after backups.drill.table_expiration_hours)"
  default_table_expiration_ms = local.drill_table_expiry_ms
  delete_contents_on_destroy  = true
  labels                      = merge(local.labels, { component = "backup" })

  lifecycle {
    ignore_changes = [access]
  }

  depends_on = [google_project_service.required]
}

# The suite's operations dataset: the SLA evaluator's history.
resource "google_bigquery_dataset" "ops" {
  # checkov:skip=CKV_GCP_81:Evaluation history (SLI values and states), no personal or secret data; no KMS key is managed in this project.
  project                    = local.project_id
  dataset_id                 = local.ops_dataset
  location                   = local.location
  description                = "opsuite operations: SLO evaluation history"
  delete_contents_on_destroy = false
  labels                     = merge(local.labels, { component = "sla" })

  lifecycle {
    prevent_destroy = true
    ignore_changes  = [access]
  }

  depends_on = [google_project_service.required]
}

# One row per SLO per evaluation (shared/adapters/history_schema.py: the schema file is
# generated from it by `python -m tools.tf_catalog`, and a test holds the two together).
resource "google_bigquery_table" "slo_evaluations" {
  # checkov:skip=CKV_GCP_80:Evaluation history, no personal or secret data; no KMS key is managed in this project.
  project             = local.project_id
  dataset_id          = google_bigquery_dataset.ops.dataset_id
  table_id            = local.ops_table
  description         = "opsuite SLA evaluator: one row per SLO per evaluation"
  deletion_protection = true
  labels              = merge(local.labels, { component = "sla" })

  schema = file("${path.module}/history_schema.json")

  time_partitioning {
    type          = "DAY"
    field         = "at"
    expiration_ms = var.history_retention_days * 86400000
  }
  clustering = ["slo"]
}
