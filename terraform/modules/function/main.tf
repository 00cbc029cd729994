# One Cloud Function (2nd gen) built from a packaged source directory.
#
# The zip is content-addressed: its MD5 is part of the object name, so any code change
# creates a new object, which changes build_config and redeploys the function.

data "archive_file" "source" {
  type        = "zip"
  source_dir  = var.source_dir
  output_path = "${path.root}/.build/${var.name}.zip"
  # Fixed permissions (the archiver already zeroes timestamps) so the same source gives
  # the same MD5 on every machine: no spurious redeploys from a different checkout.
  output_file_mode = "0644"
  excludes = [
    "__pycache__",
    "**/__pycache__",
    "*.pyc",
    "**/*.pyc",
    ".pytest_cache",
    "**/.pytest_cache",
  ]
}

resource "google_storage_bucket_object" "source" {
  name         = "${var.name}/${var.name}-${data.archive_file.source.output_md5}.zip"
  bucket       = var.source_bucket
  source       = data.archive_file.source.output_path
  content_type = "application/zip"

  lifecycle {
    precondition {
      # The function runs with the opsuite.yaml packaged into it; Terraform deploys from
      # var.config_file. Two different files would deploy topics, datasets and grants for
      # one configuration and run the code with another.
      condition     = try(filesha256("${var.source_dir}/opsuite.yaml"), "") == var.config_sha256
      error_message = "${var.source_dir}/opsuite.yaml is missing or differs from config_file: run `make package CONFIG=<the same file>` before planning."
    }
  }
}

# What the function must wait for (the APIs and service agents to propagate: time_sleep in
# the root module). A module-level depends_on would defer archive_file to apply time.
resource "terraform_data" "prerequisites" {
  input = var.prerequisites
}

# Changes whenever the trigger topic is replaced (the root passes an id that is new each
# time): a recreated topic otherwise leaves the Eventarc subscription on
# _deleted-topic_ with no diff, and the function silently receives nothing.
resource "terraform_data" "trigger_topic" {
  input = var.replace_on
}

resource "google_cloudfunctions2_function" "this" {
  name        = var.name
  project     = var.project_id
  location    = var.region
  description = var.description
  labels      = var.labels

  build_config {
    runtime         = var.runtime
    entry_point     = var.entry_point
    service_account = var.build_service_account

    source {
      storage_source {
        bucket = var.source_bucket
        object = google_storage_bucket_object.source.name
        # the uploaded object's generation: a re-upload of the same name is a new build
        generation = google_storage_bucket_object.source.generation
      }
    }
  }

  service_config {
    available_memory               = var.available_memory
    timeout_seconds                = var.timeout_seconds
    max_instance_count             = var.max_instance_count
    min_instance_count             = var.min_instance_count
    ingress_settings               = var.ingress_settings
    all_traffic_on_latest_revision = true
    service_account_email          = var.service_account_email
    environment_variables          = var.environment_variables
  }

  dynamic "event_trigger" {
    for_each = var.event_trigger == null ? [] : [var.event_trigger]
    content {
      event_type            = "google.cloud.pubsub.topic.v1.messagePublished"
      pubsub_topic          = event_trigger.value.pubsub_topic
      retry_policy          = event_trigger.value.retry_policy
      trigger_region        = var.region
      service_account_email = event_trigger.value.service_account_email
    }
  }

  lifecycle {
    precondition {
      # Cloud Functions limits: 540 s for event-driven functions, 3600 s for HTTP.
      condition     = var.timeout_seconds <= (var.event_trigger == null ? 3600 : 540)
      error_message = "timeout_seconds exceeds the Cloud Functions maximum (540 s for event-driven functions, 3600 s for HTTP functions)."
    }
    precondition {
      condition     = var.min_instance_count <= var.max_instance_count
      error_message = "min_instance_count must not exceed max_instance_count."
    }
    replace_triggered_by = [terraform_data.trigger_topic]
  }

  depends_on = [terraform_data.prerequisites]
}

# More Pub/Sub topics delivered to the same function (the alert router listens on several):
# Eventarc triggers on the function's Cloud Run service, as the same trigger identity,
# with the same CloudEvent the function's own trigger delivers.
resource "google_eventarc_trigger" "extra" {
  for_each = var.event_trigger == null ? {} : var.extra_pubsub_topics

  project  = var.project_id
  location = var.region
  name     = "${var.name}-${each.key}"
  labels   = var.labels

  matching_criteria {
    attribute = "type"
    value     = "google.cloud.pubsub.topic.v1.messagePublished"
  }

  transport {
    pubsub {
      topic = each.value
    }
  }

  destination {
    cloud_run_service {
      service = google_cloudfunctions2_function.this.name
      region  = var.region
    }
  }

  service_account = var.event_trigger.service_account_email

  lifecycle {
    replace_triggered_by = [terraform_data.trigger_topic]
  }

  depends_on = [google_cloud_run_service_iam_member.trigger_invoker]
}

# Eventarc invokes the function's Cloud Run service as the trigger service account:
# it gets roles/run.invoker on this service only, never project-wide.
resource "google_cloud_run_service_iam_member" "trigger_invoker" {
  count = var.event_trigger == null ? 0 : 1

  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.this.name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${var.event_trigger.service_account_email}"
}

# Callers of HTTP functions: roles/run.invoker on this function's service only. (A 2nd gen
# function is invoked through Cloud Run: roles/cloudfunctions.invoker grants nothing there.)
resource "google_cloud_run_service_iam_member" "invoker" {
  for_each = toset(var.invoker_members)

  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.this.name
  role     = "roles/run.invoker"
  member   = each.value
}
