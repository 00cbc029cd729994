variable "project_id" {
  description = "Project that hosts the function."
  type        = string
}

variable "region" {
  description = "Region of the function (its Cloud Run service takes the same region)."
  type        = string
}

variable "name" {
  description = "Deployed function name, kebab-case (e.g. \"backup-export\"); the Cloud Run service takes the same name."
  type        = string

  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,47}[a-z0-9])?$", var.name))
    error_message = "name must be kebab-case: lowercase letters, digits and '-', starting with a letter, at most 49 characters."
  }
}

variable "description" {
  description = "Human-readable description of the function."
  type        = string
  default     = ""
}

variable "entry_point" {
  description = "Python function (in main.py) that the Functions Framework calls."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z_][A-Za-z0-9_]*$", var.entry_point))
    error_message = "entry_point must be a Python identifier."
  }
}

variable "runtime" {
  description = "Cloud Functions runtime, e.g. \"python311\"."
  type        = string
}

variable "source_dir" {
  description = "Packaged source directory of this function (main.py, requirements.txt, shared/, opsuite.yaml); zipped and uploaded as is."
  type        = string
}

variable "source_bucket" {
  description = "Name of the private bucket the source zip is uploaded to."
  type        = string
}

variable "service_account_email" {
  description = "Runtime identity of the function: a dedicated service account for this function only. Required, so the function never falls back to the default compute service account."
  type        = string

  validation {
    condition     = can(regex("@[a-z0-9.-]+\\.iam\\.gserviceaccount\\.com$", var.service_account_email))
    error_message = "service_account_email must be a user-managed service account (...@PROJECT.iam.gserviceaccount.com), not a default compute or App Engine account."
  }
}

variable "build_service_account" {
  description = "Service account Cloud Build builds the function as, \"projects/PROJECT/serviceAccounts/EMAIL\" (google_service_account.x.id). Required: in projects created since 2024 the default (the Compute Engine default service account) may not exist or may hold no build role."
  type        = string

  validation {
    condition     = can(regex("^projects/[^/]+/serviceAccounts/[^/]+@[^/]+$", var.build_service_account))
    error_message = "build_service_account must be \"projects/PROJECT/serviceAccounts/EMAIL\"."
  }
}

variable "config_sha256" {
  description = "SHA-256 of the opsuite.yaml Terraform deploys from (filesha256(var.config_file)): the packaged source_dir/opsuite.yaml must be the same file (checked by a precondition)."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-f]{64}$", var.config_sha256))
    error_message = "config_sha256 must be 64 lowercase hex digits."
  }
}

variable "prerequisites" {
  description = "Values the function must wait for (e.g. time_sleep.apis_ready.id): the function is created after them."
  type        = list(string)
  default     = []
}

variable "replace_on" {
  description = "Ids that change when a topic the function listens on is replaced (the root's terraform_data replaced with each topic): the function and its Eventarc triggers are then replaced too."
  type        = list(string)
  default     = []
}

variable "extra_pubsub_topics" {
  description = "More Pub/Sub topics delivered to this event-driven function, key (short, kebab-case: part of the Eventarc trigger's name) → topic id; each gets an Eventarc trigger on the function's service, as event_trigger.service_account_email."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.extra_pubsub_topics) : can(regex("^[a-z][a-z0-9-]{0,13}$", k))])
    error_message = "extra_pubsub_topics keys must be kebab-case, at most 14 characters."
  }
}

variable "available_memory" {
  description = "Memory of one instance, e.g. \"1Gi\"."
  type        = string
  default     = "256Mi"
}

variable "timeout_seconds" {
  description = "Request timeout. At most 540 for event-driven functions and 3600 for HTTP functions (checked by a precondition)."
  type        = number
  default     = 60

  validation {
    condition     = var.timeout_seconds >= 1 && var.timeout_seconds <= 3600
    error_message = "timeout_seconds must be between 1 and 3600."
  }
}

variable "max_instance_count" {
  description = "Upper bound on concurrently running instances."
  type        = number
  default     = 1

  validation {
    condition     = var.max_instance_count >= 1 && floor(var.max_instance_count) == var.max_instance_count
    error_message = "max_instance_count must be a positive whole number."
  }
}

variable "min_instance_count" {
  description = "Instances kept warm. 0 scales to zero (a cold start on the first request); anything higher is billed while idle."
  type        = number
  default     = 0

  validation {
    condition     = var.min_instance_count >= 0 && floor(var.min_instance_count) == var.min_instance_count
    error_message = "min_instance_count must be a whole number >= 0."
  }
}

variable "ingress_settings" {
  description = "Network ingress. ALLOW_INTERNAL_ONLY keeps the function off the public internet (Eventarc/Pub/Sub pushes are internal). Ingress is a network filter only: every request still needs an IAM invoker, since the module never grants allUsers/allAuthenticatedUsers."
  type        = string
  default     = "ALLOW_INTERNAL_ONLY"

  validation {
    condition     = contains(["ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB", "ALLOW_ALL"], var.ingress_settings)
    error_message = "ingress_settings must be ALLOW_INTERNAL_ONLY, ALLOW_INTERNAL_AND_GCLB or ALLOW_ALL."
  }
}

variable "environment_variables" {
  description = "Runtime environment variables. Never put secrets here: secrets come from Secret Manager at run time."
  type        = map(string)
  default     = {}
}

variable "event_trigger" {
  description = <<-EOT
    Pub/Sub trigger, or null for an HTTP function.
    pubsub_topic: topic id ("projects/P/topics/T"); service_account_email: the identity Eventarc
    uses to invoke the function (it gets roles/run.invoker on this function's service only);
    retry_policy: RETRY_POLICY_RETRY makes a raised exception redeliver the message.
  EOT
  type = object({
    pubsub_topic          = string
    service_account_email = string
    retry_policy          = optional(string, "RETRY_POLICY_RETRY")
  })
  default = null

  validation {
    condition     = var.event_trigger == null || contains(["RETRY_POLICY_RETRY", "RETRY_POLICY_DO_NOT_RETRY"], try(var.event_trigger.retry_policy, ""))
    error_message = "event_trigger.retry_policy must be RETRY_POLICY_RETRY or RETRY_POLICY_DO_NOT_RETRY."
  }
}

variable "invoker_members" {
  description = "Principals allowed to call the function (HTTP functions); they get roles/run.invoker on this function's service only. Never allUsers/allAuthenticatedUsers."
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

variable "labels" {
  description = "Labels for the function and its extra Eventarc triggers."
  type        = map(string)
  default     = {}
}
