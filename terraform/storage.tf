# Backup bucket: receives the BigQuery extract files.
#
# BigQuery may rewrite export files, so this bucket deliberately has NO retention
# policy / Bucket Lock and soft delete switched off (retention 0). Protection against
# accidental overwrite or deletion comes from object versioning, with noncurrent
# versions expiring after var.noncurrent_version_retention_days.
resource "google_storage_bucket" "backup" {
  # checkov:skip=CKV_GCP_62:Usage logs need a separate log bucket; config changes are in Admin Activity audit logs, and object reads are audited by enabling Data Access audit logs for storage.googleapis.com at project/org level.
  name     = var.backup_bucket_name
  project  = var.project_id
  location = var.location

  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false
  labels                      = merge(local.labels, { component = "backup" })

  versioning {
    enabled = true
  }

  # Exports older than the retention window are deleted (they become noncurrent,
  # then the rule below removes them).
  lifecycle_rule {
    condition {
      age        = var.backup_retention_days
      with_state = "LIVE"
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
    retention_duration_seconds = 0
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
  project  = var.project_id
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
