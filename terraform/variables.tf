# Project, bucket, datasets, topics, schedules, SLOs and receiver secrets come from the
# opsuite.yaml named by var.config_file (config.tf), not from variables.

variable "region" {
  description = "Region for the Cloud Functions, their Eventarc triggers, the Cloud Scheduler jobs and the function source bucket."
  type        = string
  default     = "us-central1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a GCP region such as \"us-central1\" (not a zone, not a multi-region)."
  }
}

variable "source_bucket_name" {
  description = "Name of the private bucket holding the function source zips. null means \"<project>-opsuite-fn-source\"."
  type        = string
  default     = null

  validation {
    condition     = var.source_bucket_name == null || can(regex("^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$", coalesce(var.source_bucket_name, "ok-name")))
    error_message = "source_bucket_name must be null or 3-63 characters of lowercase letters, digits, '-' or '_'."
  }
}

variable "backup_retention_days" {
  description = "Days after which backup objects are deleted by the bucket lifecycle rule."
  type        = number
  default     = 90

  validation {
    condition     = var.backup_retention_days >= 1 && var.backup_retention_days <= 3650 && floor(var.backup_retention_days) == var.backup_retention_days
    error_message = "backup_retention_days must be a whole number between 1 and 3650."
  }
}

variable "ops_history_retention_days" {
  description = "Days the suite's append-only history in the backup bucket (alert ledger and send claims, SLO events, rejected triggers) is kept. At least 35: the detection SLI reads the ledger over the SLO window."
  type        = number
  default     = 400

  validation {
    condition     = var.ops_history_retention_days >= 35 && var.ops_history_retention_days <= 3650 && floor(var.ops_history_retention_days) == var.ops_history_retention_days
    error_message = "ops_history_retention_days must be a whole number between 35 and 3650."
  }
}

variable "backup_project_id" {
  description = "Project that holds the backup bucket. null: the suite's own project (gcp.project). A separate project keeps the backups when the data project is lost or compromised: the functions reach the bucket through bucket-level grants (cross-project IAM); enable storage.googleapis.com there first. See docs/runbook.md."
  type        = string
  default     = null

  validation {
    condition     = var.backup_project_id == null || can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", coalesce(var.backup_project_id, "x")))
    error_message = "backup_project_id must be null or a GCP project ID (6-30 lowercase letters, digits, hyphens)."
  }
}

variable "soft_delete_retention_days" {
  description = "Days a deleted or overwritten backup object stays recoverable (GCS soft delete), on top of object versioning: 7 to 90. A writer that deletes exports (or old versions) can't make them unrecoverable within this window."
  type        = number
  default     = 7

  validation {
    condition     = var.soft_delete_retention_days >= 7 && var.soft_delete_retention_days <= 90 && floor(var.soft_delete_retention_days) == var.soft_delete_retention_days
    error_message = "soft_delete_retention_days must be a whole number between 7 and 90."
  }
}

variable "noncurrent_version_retention_days" {
  description = "Days a noncurrent (overwritten or deleted) object version is kept before the lifecycle rule deletes it. Must be >= 1: the provider does not send 0 for this condition."
  type        = number
  default     = 7

  validation {
    condition     = var.noncurrent_version_retention_days >= 1 && var.noncurrent_version_retention_days <= 365 && floor(var.noncurrent_version_retention_days) == var.noncurrent_version_retention_days
    error_message = "noncurrent_version_retention_days must be a whole number between 1 and 365."
  }
}

variable "health_check_ingress" {
  description = "Ingress of the health-check HTTP function. ALLOW_ALL (default) lets operators call it with an identity token from outside the VPC; access is still IAM-only (invoker_members, never public). Use ALLOW_INTERNAL_AND_GCLB when it is fronted by an external HTTPS load balancer, ALLOW_INTERNAL_ONLY when every caller is inside the VPC."
  type        = string
  default     = "ALLOW_ALL"

  validation {
    condition     = contains(["ALLOW_ALL", "ALLOW_INTERNAL_AND_GCLB", "ALLOW_INTERNAL_ONLY"], var.health_check_ingress)
    error_message = "health_check_ingress must be ALLOW_ALL, ALLOW_INTERNAL_AND_GCLB or ALLOW_INTERNAL_ONLY."
  }
}

variable "function_source_dir" {
  description = "Directory produced by `make package`, holding one sub-directory per function (backup_export/, health_check/, sla_evaluator/, alert_router/). null means \"<this module>/../build\" (a variable default cannot reference path.module)."
  type        = string
  default     = null
}

variable "python_runtime" {
  description = "Cloud Functions Python runtime for every function."
  type        = string
  default     = "python311"

  validation {
    condition     = can(regex("^python3[0-9]{1,2}$", var.python_runtime))
    error_message = "python_runtime must look like \"python311\"."
  }
}

variable "invoker_members" {
  description = "IAM principals allowed to invoke the HTTP functions (health_check), e.g. \"group:oncall@example.com\": each gets roles/run.invoker on those functions' services only. Never public: allUsers and allAuthenticatedUsers are rejected."
  type        = list(string)
  default     = []

  validation {
    condition = alltrue([
      for m in var.invoker_members :
      can(regex("^(user|group|serviceAccount|domain):[^\\s]+$|^principal(Set)?://", m))
    ])
    error_message = "invoker_members entries must be user:, group:, serviceAccount:, domain: or principal(Set):// principals; allUsers and allAuthenticatedUsers are not allowed."
  }
}

variable "grant_pubsub_token_creator" {
  description = "Grant the project's Pub/Sub service agent roles/iam.serviceAccountTokenCreator on the event-trigger service account only. Eventarc needs it in projects whose Pub/Sub service agent dates from on or before 2021-04-08; it is harmless elsewhere."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Extra labels applied to every labelled resource (merged with app=opsuite, managed-by=terraform)."
  type        = map(string)
  default     = {}

  validation {
    condition = alltrue([
      for k, v in var.labels :
      can(regex("^[a-z][a-z0-9_-]{0,62}$", k)) && can(regex("^[a-z0-9_-]{0,63}$", v))
    ])
    error_message = "labels keys must match ^[a-z][a-z0-9_-]{0,62}$ and values ^[a-z0-9_-]{0,63}$."
  }
}

variable "drill_schedule" {
  description = "Cron schedule (5 fields, Etc/UTC) of the weekly restore drill: {\"action\": \"restore_drill\"} on the backup trigger topic. Default Monday 11:00, after the nightly backup."
  type        = string
  default     = "0 11 * * 1"

  validation {
    condition     = can(regex("^[^ ]+( [^ ]+){4}$", var.drill_schedule))
    error_message = "drill_schedule must be a 5-field unix-cron expression with single spaces, e.g. \"0 11 * * 1\"."
  }
}

variable "api_propagation_wait" {
  description = "How long the first apply waits after enabling the APIs and creating the service agents before creating functions and triggers (new projects: the Eventarc service agent takes minutes to work)."
  type        = string
  default     = "120s"

  validation {
    condition     = can(regex("^[0-9]+(s|m)$", var.api_propagation_wait))
    error_message = "api_propagation_wait must be a duration such as \"120s\" or \"3m\"."
  }
}

variable "runbook_url" {
  description = "Where docs/runbook.md is published (alert policy documentation links to its sections: <runbook_url>#<section>)."
  type        = string
  default     = "https://github.com/your-org/opsuite/blob/main/docs/runbook.md"

  validation {
    condition     = can(regex("^https://", var.runbook_url))
    error_message = "runbook_url must be an https URL."
  }
}

variable "adopt_existing_datasets" {
  description = "true in a project where the pipeline's datasets already exist (the usual first deploy): they are imported, never recreated. false (a new project, the DR case): Terraform creates them empty, then `opsuite restore` fills them. Required: either answer is wrong somewhere, so it is a choice, not a default."
  type        = bool
}

variable "history_retention_days" {
  description = "Days of SLO evaluation history kept (partition expiration of the evaluations table). At least the longest SLO window: budgets and burn rates are computed from it."
  type        = number
  default     = 400

  validation {
    condition     = var.history_retention_days >= 35 && var.history_retention_days <= 3650 && floor(var.history_retention_days) == var.history_retention_days
    error_message = "history_retention_days must be a whole number between 35 and 3650."
  }
}

variable "adopt_existing_backup_bucket" {
  description = "true when the backup bucket (backups.bucket) exists but not in this state: a redeploy after losing the project's state or the project itself, with the bucket surviving (e.g. in backup_project_id). It is imported, not created; false creates it."
  type        = bool
  default     = false
}
