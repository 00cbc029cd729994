# Backup bucket: receives the BigQuery extract files (backups.bucket in opsuite.yaml),
# optionally in a project of its own (var.backup_project_id).
#
# BigQuery may rewrite export files, so this bucket deliberately has NO retention
# policy / Bucket Lock. Protection against accidental overwrite or deletion: object
# versioning (noncurrent versions expire after var.noncurrent_version_retention_days)
# and soft delete (var.soft_delete_retention_days, at least 7): a writer that deletes an
# export, or an old version of it, can't make it unrecoverable inside that window.
# A fresh state (DR) with a surviving backup bucket: adopt it instead of failing on 409
# "already exists" (the backups are what the restore needs).
import {
  for_each = var.adopt_existing_backup_bucket ? toset([local.backup_bucket]) : toset([])

  to = google_storage_bucket.backup
  id = "${coalesce(var.backup_project_id, local.project_id)}/${each.value}"
}

resource "google_storage_bucket" "backup" {
  # checkov:skip=CKV_GCP_62:Usage logs need a separate log bucket; config changes are in Admin Activity audit logs, and object reads are audited by enabling Data Access audit logs for storage.googleapis.com at project/org level.
  name     = local.backup_bucket
  project  = coalesce(var.backup_project_id, local.project_id)
  location = local.location

  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false
  labels                      = merge(local.labels, { component = "backup" })

  versioning {
    enabled = true
  }

  # Exports older than the retention window are deleted (they become noncurrent,
  # then the noncurrent rule below removes them). Only under the backup prefix: the
  # suite's own state lives beside it under _opsuite/ (silences, firing alerts, groups,
  # announced SLO states), managed by the code, and must never age out: a 60-day silence
  # deleted on day 30 would lift silently.
  lifecycle_rule {
    condition {
      age            = var.backup_retention_days
      with_state     = "LIVE"
      matches_prefix = ["${local.backup_prefix}/"]
    }
    action {
      type = "Delete"
    }
  }

  # The suite's history (alert ledger and send claims, published SLO events, rejected
  # triggers) is append-only: kept var.ops_history_retention_days, then deleted.
  lifecycle_rule {
    condition {
      age        = var.ops_history_retention_days
      with_state = "LIVE"
      matches_prefix = [
        "_opsuite/alerts/ledger/",
        "_opsuite/alerts/claims/",
        "_opsuite/slo/events/",
        "_opsuite/rejected/",
      ]
    }
    action {
      type = "Delete"
    }
  }

  # Noncurrent versions (rewritten, overwritten or deleted exports) expire.
  # send_age_if_zero = false: without it the provider adds "age = 0" to this rule,
  # which would make it match every object (hashicorp/terraform-provider-google#17990).
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_version_retention_days
      with_state                 = "ARCHIVED"
      send_age_if_zero           = false
    }
    action {
      type = "Delete"
    }
  }

  soft_delete_policy {
    retention_duration_seconds = var.soft_delete_retention_days * 86400
  }

  lifecycle {
    # The bucket holds the backups: Terraform must never destroy or replace it.
    prevent_destroy = true
  }

  depends_on = [google_project_service.required]
}

# Private bucket for the function source zips uploaded by Terraform.
resource "google_storage_bucket" "function_source" {
  # checkov:skip=CKV_GCP_62:Holds only build artefacts reproducible from git; access logging not needed.
  name     = local.source_bucket_name
  project  = local.project_id
  location = var.region

  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false
  labels                      = merge(local.labels, { component = "function-source" })

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 7
      with_state                 = "ARCHIVED"
      send_age_if_zero           = false
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.required]
}
