variable "project_id" {
  description = "GCP project that hosts the ops suite, the backed-up BigQuery datasets and the backup bucket."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a GCP project ID: 6-30 characters, lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "region" {
  description = "Region for the Cloud Functions, their Eventarc triggers, the Cloud Scheduler job and the function source bucket."
  type        = string
  default     = "us-central1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a GCP region such as \"us-central1\" (not a zone, not a multi-region)."
  }
}

variable "location" {
  description = "BigQuery location of the backed-up datasets (e.g. \"US\"). The backup bucket is created here: extract jobs need the bucket co-located with the dataset."
  type        = string
  default     = "US"

  validation {
    condition     = can(regex("^[A-Za-z]+[A-Za-z0-9-]*$", var.location))
    error_message = "location must be a BigQuery/GCS location such as \"US\", \"EU\" or \"us-central1\"."
  }
}

variable "backup_bucket_name" {
  description = "Globally unique name of the GCS bucket that receives the BigQuery exports."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$", var.backup_bucket_name)) && !can(regex("goog", var.backup_bucket_name))
    error_message = "backup_bucket_name must be 3-63 characters of lowercase letters, digits, '-' or '_', start and end with a letter or digit, and not contain \"goog\"."
  }
}

variable "source_bucket_name" {
  description = "Name of the private bucket holding the function source zips. null means \"<project_id>-opsuite-fn-source\"."
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

variable "noncurrent_version_retention_days" {
  description = "Days a noncurrent (overwritten or deleted) object version is kept before the lifecycle rule deletes it. Must be >= 1: the provider does not send 0 for this condition."
  type        = number
  default     = 7

  validation {
    condition     = var.noncurrent_version_retention_days >= 1 && var.noncurrent_version_retention_days <= 365 && floor(var.noncurrent_version_retention_days) == var.noncurrent_version_retention_days
    error_message = "noncurrent_version_retention_days must be a whole number between 1 and 365."
  }
}

variable "backup_schedule" {
  description = "Cron schedule (5 fields, unix-cron) of the Cloud Scheduler job that starts a backup run."
  type        = string
  default     = "30 9 * * *"

  validation {
    condition     = length(split(" ", trimspace(var.backup_schedule))) == 5
    error_message = "backup_schedule must be a 5-field unix-cron expression such as \"30 9 * * *\"."
  }
}

variable "backup_time_zone" {
  description = "IANA time zone in which backup_schedule is interpreted."
  type        = string
  default     = "Etc/UTC"

  validation {
    condition     = can(regex("^[A-Za-z_]+(/[A-Za-z0-9_+-]+)*$", var.backup_time_zone))
    error_message = "backup_time_zone must be an IANA time zone name such as \"Etc/UTC\" or \"America/New_York\"."
  }
}

variable "backup_datasets" {
  description = "BigQuery dataset IDs (in project_id) that backup_export exports; its service account gets roles/bigquery.dataViewer on each of them and nothing wider."
  type        = list(string)
  default     = ["nba_analytics", "nba_precompute", "nba_orchestration", "nba_predictions"]

  validation {
    condition     = length(var.backup_datasets) > 0 && alltrue([for d in var.backup_datasets : can(regex("^[A-Za-z0-9_]+$", d)) && length(d) <= 1024])
    error_message = "backup_datasets must be a non-empty list of dataset IDs (letters, digits and underscores, at most 1024 characters)."
  }

  validation {
    condition     = length(distinct(var.backup_datasets)) == length(var.backup_datasets)
    error_message = "backup_datasets must not contain duplicates."
  }
}

variable "health_datasets" {
  description = "BigQuery dataset IDs (in project_id) that health_check probes: freshness tables, the pipeline run history, INFORMATION_SCHEMA.PARTITIONS. Its service account gets roles/bigquery.dataViewer on each of them and nothing wider. Separate from backup_datasets so probing a dataset that is not backed up (or the reverse) never widens the other function's access; the default is the same list."
  type        = list(string)
  default     = ["nba_analytics", "nba_precompute", "nba_orchestration", "nba_predictions"]

  validation {
    condition     = length(var.health_datasets) > 0 && alltrue([for d in var.health_datasets : can(regex("^[A-Za-z0-9_]+$", d)) && length(d) <= 1024])
    error_message = "health_datasets must be a non-empty list of dataset IDs (letters, digits and underscores, at most 1024 characters)."
  }

  validation {
    condition     = length(distinct(var.health_datasets)) == length(var.health_datasets)
    error_message = "health_datasets must not contain duplicates."
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
  description = "Directory produced by `make package`, holding one sub-directory per function (backup_export/, health_check/). null means \"<this module>/../build\" (a variable default cannot reference path.module)."
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
  description = "IAM principals allowed to invoke the HTTP functions (health_check), e.g. \"group:oncall@example.com\": each gets roles/cloudfunctions.invoker and roles/run.invoker on those functions only. Never public: allUsers and allAuthenticatedUsers are rejected."
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

variable "build_service_account" {
  description = "Optional service account Cloud Build uses to build the functions, as \"projects/PROJECT/serviceAccounts/EMAIL\". null uses the project's default build service account (which, in projects created after mid-2024, may lack the roles a build needs: see README.md)."
  type        = string
  default     = null

  validation {
    condition     = var.build_service_account == null || can(regex("^projects/[^/]+/serviceAccounts/[^/]+@[^/]+$", coalesce(var.build_service_account, "x")))
    error_message = "build_service_account must be null or \"projects/PROJECT/serviceAccounts/EMAIL\"."
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
