# Cloud Monitoring for the suite: the custom metric descriptors (from shared/metrics.py via
# metrics.json), the Pub/Sub notification channel the alert router listens to, the alert
# policies, the log-based metrics and the uptime check of the health-check function.
# The dashboard is in dashboard.tf. Tests: tests/terraform/test_monitoring.py.
#
# Why custom metrics and not google_monitoring_custom_service + google_monitoring_slo +
# select_slo_burn_rate(): the suite's SLIs are computed by the SLA evaluator, one verdict per
# cadence slot (windows-based; request-based for `ratio`/`detection`), from the warehouse and
# the backup manifests, and the error-budget accounting lives in the code
# (shared/services/sla_budget.py: unknown slots charged to the budget, missing slots only lower
# coverage, windows-based budgets as shares of the window's slots so a new deployment's first
# bad slot spends 15 min instead of the whole budget, redeliveries counted once). A native SLO
# would need its own good/total time series and would compute a second, different budget and
# burn rate from them; two budgets that disagree are worse than one. So Monitoring alerts on
# the numbers the evaluator already writes: slo/budget_remaining, slo/burn_rate, slo/good.
#
# Dead-letter topics: the event-driven functions are triggered through Eventarc, whose
# managed Pub/Sub subscriptions can't be given a dead_letter_policy from Terraform
# (hashicorp/terraform-provider-google #25069 "google_cloudfunctions2_function Dead
# Lettering", #17697 "Eventarc dead_letter_topic configuration", both open). No DLQ exists,
# so there is no DLQ alert policy here; what a DLQ alert would catch (messages that are not
# getting through) is caught on the Eventarc subscriptions themselves: the
# undelivered_messages policy below pages when a trigger's oldest unacknowledged message is
# older than an hour (a poison message, a function that keeps failing, a broken trigger),
# beside the 5xx policies. Add a policy on
# pubsub.googleapis.com/subscription/dead_letter_message_count once a DLQ exists.

locals {
  mon_metric_prefix = "custom.googleapis.com/opsuite/"

  # Monitoring's severity per suite severity (user_labels.severity is what the router reads).
  mon_severity = { p0 = "CRITICAL", p1 = "CRITICAL", p2 = "ERROR", p3 = "WARNING" }

  mon_slos            = { for s in try(local.config.slos.objectives, []) : s.name => s }
  mon_cadence_seconds = try(local.config.slos.cadence_minutes, 15) * 60
  # The evaluator writes one point per series per cadence slot: an alignment of two cadences
  # always holds the newest point, and ALIGN_NEXT_OLDER takes it (the evaluator has already
  # done the windowing; Monitoring only compares its latest verdict).
  mon_slo_alignment = "${2 * local.mon_cadence_seconds}s"

  # The burn-rate pairs, as the evaluator labels them (shared/services/sla_assess.py
  # duration_label: 15 min -> "15m", 1 h -> "1h", 3 d -> "3d"). Taken from the config's
  # slos.burn_rates when set, else the code's defaults (shared/config.py
  # _default_burn_rates, held equal to these by a test): a window label the evaluator doesn't
  # write would make a policy that never fires. The SRE workbook's 5 min short window can't
  # exist here: the evaluator runs every 15 min and the config refuses a short window below
  # the cadence, so the fast pair is 1 h & 15 min at 14.4x and the slow one 6 h & 1 h at 6x.
  mon_period_seconds = { minute = 60, hour = 3600, day = 86400 }
  mon_default_burn_rates = [
    { long_window = { count = 1, period = "hour" }, short_window = { count = 15, period = "minute" }, rate = 14.4, notify = "page" },
    { long_window = { count = 6, period = "hour" }, short_window = { count = 1, period = "hour" }, rate = 6, notify = "page" },
    { long_window = { count = 3, period = "day" }, short_window = { count = 6, period = "hour" }, rate = 1, notify = "ticket" },
  ]
  mon_burn_seconds = [
    for t in try(local.config.slos.burn_rates, local.mon_default_burn_rates) : {
      long   = t.long_window.count * local.mon_period_seconds[t.long_window.period]
      short  = t.short_window.count * local.mon_period_seconds[t.short_window.period]
      rate   = t.rate
      notify = try(t.notify, "page")
    }
  ]
  mon_burn_tiers = [
    for t in local.mon_burn_seconds : {
      long   = t.long % 86400 == 0 ? "${t.long / 86400}d" : t.long % 3600 == 0 ? "${t.long / 3600}h" : t.long % 60 == 0 ? "${t.long / 60}m" : "${t.long}s"
      short  = t.short % 86400 == 0 ? "${t.short / 86400}d" : t.short % 3600 == 0 ? "${t.short / 3600}h" : t.short % 60 == 0 ? "${t.short / 60}m" : "${t.short}s"
      rate   = t.rate
      notify = t.notify
    }
  ]
  # One policy per SLO and pair. Page pairs carry the SLO's severity; the slow "ticket" pair
  # (3 d & 6 h) is a p3, routed to Slack outside quiet hours like every ticket.
  mon_burn_policies = merge([
    for name, slo in local.mon_slos : {
      for t in local.mon_burn_tiers : "${name}-${t.long}-${t.short}" => {
        slo      = name
        long     = t.long
        short    = t.short
        rate     = t.rate
        urgency  = t.notify
        severity = t.notify == "ticket" ? "p3" : lower(slo.severity)
        # docs/runbook.md: the workbook's fast pair (>= 10x) vs the slow and ticket ones
        anchor = t.rate >= 10 ? "fast-burn" : "slow-burn"
      }
    }
  ]...)

  # recovery_time SLOs (bigquery_recovery_time): the restore-drill policy.
  mon_drill_slos = { for name, s in local.mon_slos : name => s if try(s.sli.kind, "") == "recovery_time" }

  # The four functions. `name` is the deployed function's name, which is also its Cloud Run
  # service's name (tf-contract.md). The health check answers 503 when the pipeline fails
  # (its verdict, not a fault: the uptime check alerts on that), so its 5xx policy leaves
  # 503 out; its own crashes are logged at ERROR and also fail the uptime check.
  mon_functions = {
    backup_export = {
      service = module.backup_export.name
      extra   = ""
      first   = "opsuite --backend gcp backups list"
    }
    health_check = {
      service = module.health_check.name
      extra   = " AND metric.labels.response_code!=\"503\""
      first   = "opsuite --backend gcp health --mode full"
    }
    sla_evaluator = {
      service = module.sla_evaluator.name
      extra   = ""
      first   = "opsuite --backend gcp sla status"
    }
    alert_router = {
      service = module.alert_router.name
      extra   = ""
      first   = "opsuite --backend gcp alerts log --since 1h"
    }
  }
  mon_log_services = join(" OR ", [for f in values(local.mon_functions) : "resource.labels.service_name=\"${f.service}\""])
  # The suite's own lines only (JSON on stdout; tracebacks on stderr), not Cloud Run's
  # request log, whose 5xx entries the request_count policies already cover.
  mon_log_base = "resource.type=\"cloud_run_revision\" AND (${local.mon_log_services}) AND (log_id(\"run.googleapis.com/stdout\") OR log_id(\"run.googleapis.com/stderr\"))"

}

# --------------------------------------------------------------------------------------
# Metric descriptors: one per shared/metrics.py METRICS entry (python -m tools.tf_catalog)
# --------------------------------------------------------------------------------------

resource "google_monitoring_metric_descriptor" "opsuite" {
  for_each = jsondecode(file("${path.module}/metrics.json"))

  type         = each.key
  metric_kind  = each.value.metric_kind
  value_type   = each.value.value_type
  unit         = each.value.unit
  display_name = each.value.display_name
  description  = each.value.description

  dynamic "labels" {
    for_each = each.value.labels
    content {
      key         = labels.key
      value_type  = "STRING"
      description = labels.value
    }
  }

  depends_on = [time_sleep.apis_ready]
}

# --------------------------------------------------------------------------------------
# Notification channel: incidents go to Pub/Sub, the alert router routes them
# --------------------------------------------------------------------------------------

resource "google_monitoring_notification_channel" "incidents" {
  display_name = "opsuite incidents (Pub/Sub, alert router)"
  description  = "Cloud Monitoring incidents for the alert router (functions/alert_router)"
  type         = "pubsub"
  labels = {
    topic = google_pubsub_topic.monitoring_incidents.id
  }
  user_labels = local.labels

  depends_on = [time_sleep.apis_ready]
}

# The Monitoring notification service agent publishes the incidents. It is created with the
# project's first notification channel, hence the depends_on. On this topic only.
# The Monitoring notification service agent comes into being with the project's first
# notification channel; a grant to it right after may find no such account yet.
resource "time_sleep" "monitoring_agent_ready" {
  create_duration = "60s"

  depends_on = [google_monitoring_notification_channel.incidents]
}

resource "google_pubsub_topic_iam_member" "monitoring_incidents_publisher" {
  topic  = google_pubsub_topic.monitoring_incidents.id
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-monitoring-notification.iam.gserviceaccount.com"

  depends_on = [time_sleep.monitoring_agent_ready]
}

# --------------------------------------------------------------------------------------
# SLO policies (custom metrics written by the SLA evaluator)
# --------------------------------------------------------------------------------------

# Breach = the window's error budget is spent: slo/budget_remaining <= 0, the evaluator's own
# `exhausted` (sla_budget.Budget.exhausted) and, for ratio-stated SLOs, its `breaching`.
# Not slo/compliance < objective: that is the same condition only at full coverage. With
# sparse history (a new deployment; availability, recovery time and detection can't be
# back-filled, so for 28 days) compliance is good/evaluated, and one bad slot of the first
# day is compliance 0 -- a P0 page for pipeline_availability while the evaluator, whose
# windows-based budget is the window's allowed bad time (28 d at 99 % = 403 min), says 15 of
# 403 minutes are spent. budget_remaining <= 0 implies compliance < objective (the budget's
# base is never below the evaluated slots), so nothing the brief's condition catches at full
# coverage is lost. The dashboard shows compliance next to the objective.
resource "google_monitoring_alert_policy" "slo_breach" {
  for_each = local.mon_slos

  display_name = "opsuite SLO ${each.key}: error budget exhausted"
  combiner     = "OR"
  severity     = local.mon_severity[lower(each.value.severity)]
  # The SLA evaluator publishes this breach itself (slo.* events on the alerts topic, routed
  # by the alert router): a notification channel here would page twice for one breach under
  # two fingerprints. The incident still shows in Cloud Monitoring; the page is the event's.
  notification_channels = []
  user_labels = {
    severity  = lower(each.value.severity)
    component = "slo"
    slo       = each.key
  }

  conditions {
    display_name = "${each.key}: budget remaining <= 0 (objective ${each.value.objective})"
    condition_threshold {
      filter          = "metric.type=\"${local.mon_metric_prefix}slo/budget_remaining\" AND resource.type=\"global\" AND metric.labels.slo=\"${each.key}\""
      comparison      = "COMPARISON_LE"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period   = local.mon_slo_alignment
        per_series_aligner = "ALIGN_NEXT_OLDER"
      }
      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = <<-EOT
      **SLO `${each.key}` has spent its error budget** (objective ${each.value.objective}): ${try(each.value.description, each.key)}.
      Over the SLO's window more intervals were bad or unknown than the objective allows.
      First: `opsuite --backend gcp sla status --slo ${each.key}`, then
      `opsuite --backend gcp sla history ${each.key} --days 2` for when it went bad.
    EOT
    links {
      display_name = "Runbook"
      url          = "${var.runbook_url}#slo-breach-${replace(each.key, "_", "-")}"
    }
  }

  alert_strategy {
    auto_close = "86400s"
  }

  depends_on = [
    time_sleep.apis_ready,
    google_monitoring_metric_descriptor.opsuite,
    google_pubsub_topic_iam_member.monitoring_incidents_publisher,
  ]
}

# Multiwindow, multi-burn-rate (SRE workbook ch. 5): both the long and the short window burn
# at the pair's rate. The evaluator fires at ">= rate" with a relative tolerance of 1e-9 (written out: checkov's HCL parser refuses the exponent)
# (1 - 0.999 is not 0.001 in binary floating point); the threshold keeps that tolerance.
resource "google_monitoring_alert_policy" "slo_burn" {
  for_each = local.mon_burn_policies

  display_name = "opsuite SLO ${each.value.slo}: burn rate ${each.value.long} & ${each.value.short} >= ${each.value.rate}x"
  combiner     = "AND"
  severity     = local.mon_severity[each.value.severity]
  # The SLA evaluator publishes this breach itself (slo.* events on the alerts topic, routed
  # by the alert router): a notification channel here would page twice for one breach under
  # two fingerprints. The incident still shows in Cloud Monitoring; the page is the event's.
  notification_channels = []
  user_labels = {
    severity  = each.value.severity
    component = "slo"
    slo       = each.value.slo
    burn_pair = "${each.value.long}-${each.value.short}"
    urgency   = each.value.urgency
  }

  conditions {
    display_name = "${each.value.slo}: burn rate over ${each.value.long} >= ${each.value.rate}"
    condition_threshold {
      filter          = "metric.type=\"${local.mon_metric_prefix}slo/burn_rate\" AND resource.type=\"global\" AND metric.labels.slo=\"${each.value.slo}\" AND metric.labels.window=\"${each.value.long}\""
      comparison      = "COMPARISON_GE"
      threshold_value = each.value.rate * (1 - 0.000000001)
      duration        = "0s"
      aggregations {
        alignment_period   = local.mon_slo_alignment
        per_series_aligner = "ALIGN_NEXT_OLDER"
      }
      trigger {
        count = 1
      }
    }
  }

  conditions {
    display_name = "${each.value.slo}: burn rate over ${each.value.short} >= ${each.value.rate}"
    condition_threshold {
      filter          = "metric.type=\"${local.mon_metric_prefix}slo/burn_rate\" AND resource.type=\"global\" AND metric.labels.slo=\"${each.value.slo}\" AND metric.labels.window=\"${each.value.short}\""
      comparison      = "COMPARISON_GE"
      threshold_value = each.value.rate * (1 - 0.000000001)
      duration        = "0s"
      aggregations {
        alignment_period   = local.mon_slo_alignment
        per_series_aligner = "ALIGN_NEXT_OLDER"
      }
      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = <<-EOT
      **SLO `${each.value.slo}` is burning its error budget at ${each.value.rate}x or more** over
      both ${each.value.long} and ${each.value.short} (urgency: ${each.value.urgency}). At this rate
      the budget runs out before the window ends.
      First: `opsuite --backend gcp sla status --slo ${each.value.slo}` (the burn rates per window).
    EOT
    links {
      display_name = "Runbook"
      url          = "${var.runbook_url}#${each.value.anchor}"
    }
  }

  alert_strategy {
    auto_close = "86400s"
  }

  depends_on = [
    time_sleep.apis_ready,
    google_monitoring_metric_descriptor.opsuite,
    google_pubsub_topic_iam_member.monitoring_incidents_publisher,
  ]
}

# Restore drill failed or too old. The signal is slo/good == 0 for the recovery_time SLO:
# sla_sli.sli_recovery_time is good only when the newest drill passed, is not older than
# max_drill_age (8 days), and projects a full restore under max_hours -- and bad when no
# drill exists. slo/sli can't say it: it is the projected restore hours only (absent when
# the drill projected nothing) and carries neither the pass/fail nor the age.
resource "google_monitoring_alert_policy" "restore_drill" {
  for_each = local.mon_drill_slos

  display_name = "opsuite restore drill (${each.key}): failed, missing or too old"
  combiner     = "OR"
  severity     = local.mon_severity[lower(each.value.severity)]
  # The SLA evaluator publishes this breach itself (slo.* events on the alerts topic, routed
  # by the alert router): a notification channel here would page twice for one breach under
  # two fingerprints. The incident still shows in Cloud Monitoring; the page is the event's.
  notification_channels = []
  user_labels = {
    severity  = lower(each.value.severity)
    component = "drill"
    slo       = each.key
  }

  conditions {
    display_name = "${each.key}: newest evaluation bad (slo/good = 0)"
    condition_threshold {
      filter          = "metric.type=\"${local.mon_metric_prefix}slo/good\" AND resource.type=\"global\" AND metric.labels.slo=\"${each.key}\""
      comparison      = "COMPARISON_LT"
      threshold_value = 1
      duration        = "0s"
      aggregations {
        alignment_period   = local.mon_slo_alignment
        per_series_aligner = "ALIGN_NEXT_OLDER"
      }
      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = <<-EOT
      **The newest restore drill failed, is missing, is too old, or projects a full restore
      over the limit** (SLO `${each.key}`): a restore of the backups is not proven.
      First: `opsuite --backend gcp sla status --slo ${each.key}` (its detail names the problem),
      then `opsuite --backend gcp drill` to run a drill now.
    EOT
    links {
      display_name = "Runbook"
      url          = "${var.runbook_url}#restore-drill"
    }
  }

  alert_strategy {
    auto_close = "86400s"
  }

  depends_on = [
    time_sleep.apis_ready,
    google_monitoring_metric_descriptor.opsuite,
    google_pubsub_topic_iam_member.monitoring_incidents_publisher,
  ]
}

# Backup older than health.backups.warn_after (26 h by default: the health check's own
# warn threshold, read from the config). No backup at all writes no point here: that is
# the availability SLO's `backups` check (P0).
locals {
  mon_period_hours = { minute = 1 / 60, hour = 1, day = 24 }
  mon_backup_warn  = try(local.config.health.backups.warn_after, { count = 26, period = "hour" })
  mon_backup_warn_hours = (local.mon_backup_warn == null ? 26
  : local.mon_backup_warn.count * local.mon_period_hours[local.mon_backup_warn.period])
}

resource "google_monitoring_alert_policy" "backup_age" {
  display_name          = "opsuite backup: newest complete backup older than ${local.mon_backup_warn_hours} h"
  combiner              = "OR"
  severity              = local.mon_severity["p1"]
  notification_channels = [google_monitoring_notification_channel.incidents.id]
  user_labels = {
    severity  = "p1"
    component = "backup"
  }

  conditions {
    display_name = "backup/hours_since_complete > ${local.mon_backup_warn_hours}"
    condition_threshold {
      filter          = "metric.type=\"${local.mon_metric_prefix}backup/hours_since_complete\" AND resource.type=\"global\""
      comparison      = "COMPARISON_GT"
      threshold_value = local.mon_backup_warn_hours
      duration        = "0s"
      aggregations {
        alignment_period   = local.mon_slo_alignment
        per_series_aligner = "ALIGN_NEXT_OLDER"
      }
      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = <<-EOT
      **The newest complete backup is more than ${local.mon_backup_warn_hours} hours old**: last night's run did not
      complete (failed, partial, or never triggered).
      First: `opsuite --backend gcp backups list`, then `opsuite --backend gcp health --checks backups`.
    EOT
    links {
      display_name = "Runbook"
      url          = "${var.runbook_url}#backup-stale"
    }
  }

  alert_strategy {
    auto_close = "86400s"
  }

  depends_on = [
    time_sleep.apis_ready,
    google_monitoring_metric_descriptor.opsuite,
    google_pubsub_topic_iam_member.monitoring_incidents_publisher,
  ]
}

# The evaluator writes evaluator/heartbeat = 1 on every evaluation, even when the history
# can't be read; an hour without it (four missed 15-min slots) means nothing measures the
# SLOs, so every other SLO policy is blind.
# Messages not getting through to a function: the oldest unacknowledged message of any of
# the functions' Eventarc subscriptions (named eventarc-<region>-<trigger>-sub-<n>) is more
# than an hour old. The closest there is to "messages in a dead-letter topic" (above).
resource "google_monitoring_alert_policy" "undelivered_messages" {
  display_name          = "opsuite triggers: messages undelivered for more than 1 h"
  combiner              = "OR"
  severity              = local.mon_severity["p2"]
  notification_channels = [google_monitoring_notification_channel.incidents.id]
  user_labels = {
    severity  = "p2"
    component = "triggers"
  }

  conditions {
    display_name = "oldest unacked message age > 3600 s, per Eventarc subscription"
    condition_threshold {
      filter          = "metric.type=\"pubsub.googleapis.com/subscription/oldest_unacked_message_age\" AND resource.type=\"pubsub_subscription\" AND resource.labels.subscription_id=starts_with(\"eventarc-\")"
      comparison      = "COMPARISON_GT"
      threshold_value = 3600
      duration        = "300s"
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_MAX"
      }
      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = <<-EOT
      **A trigger's messages have been waiting for more than an hour**: the function behind
      this Eventarc subscription keeps failing (a poison message is redelivered until the
      subscription's retention ends) or its trigger is broken (e.g. a topic recreated under it).
      First: `opsuite --backend gcp alerts log --since 2h`, then the function's logs:
      `gcloud functions logs read FUNCTION --region ${var.region} --limit 50`.
    EOT
    links {
      display_name = "Runbook"
      url          = "${var.runbook_url}#undelivered-messages"
    }
  }

  alert_strategy {
    auto_close = "86400s"
  }

  depends_on = [
    time_sleep.apis_ready,
    google_pubsub_topic_iam_member.monitoring_incidents_publisher,
  ]
}

resource "google_monitoring_alert_policy" "evaluator_heartbeat" {
  display_name          = "opsuite SLA evaluator: no heartbeat for 1 h"
  combiner              = "OR"
  severity              = local.mon_severity["p1"]
  notification_channels = [google_monitoring_notification_channel.incidents.id]
  user_labels = {
    severity  = "p1"
    component = "evaluator"
  }

  conditions {
    display_name = "evaluator/heartbeat absent for 3600s"
    condition_absent {
      filter   = "metric.type=\"${local.mon_metric_prefix}evaluator/heartbeat\" AND resource.type=\"global\""
      duration = "3600s"
      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = <<-EOT
      **The SLA evaluator has not written its heartbeat for an hour**: the SLOs are not being
      measured, so their alerts can't fire. Either the 15-min schedule stopped, the function
      fails before writing (5xx, ERROR lines), or it lost roles/monitoring.metricWriter.
      First: `opsuite --backend gcp sla evaluate --dry-run`, then
      `gcloud functions logs read ${module.sla_evaluator.name} --region ${var.region} --limit 50`.
    EOT
    links {
      display_name = "Runbook"
      url          = "${var.runbook_url}#evaluator-heartbeat"
    }
  }

  alert_strategy {
    auto_close = "86400s"
  }

  depends_on = [
    time_sleep.apis_ready,
    google_monitoring_metric_descriptor.opsuite,
    google_pubsub_topic_iam_member.monitoring_incidents_publisher,
  ]
}

# --------------------------------------------------------------------------------------
# Function errors: Cloud Run 5xx per function
# --------------------------------------------------------------------------------------

# A crash (an uncaught exception, an out-of-memory kill, a timeout) is a 5xx too, and so is
# an event function raising to ask Pub/Sub for redelivery after a transient fault.
resource "google_monitoring_alert_policy" "function_5xx" {
  for_each = local.mon_functions

  display_name          = "opsuite ${each.key}: HTTP 5xx"
  combiner              = "OR"
  severity              = local.mon_severity["p2"]
  notification_channels = [google_monitoring_notification_channel.incidents.id]
  user_labels = {
    severity  = "p2"
    component = each.key
  }

  conditions {
    display_name = "${each.key}: 5xx responses in 5 min > 0"
    condition_threshold {
      filter          = "metric.type=\"run.googleapis.com/request_count\" AND resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"${each.value.service}\" AND metric.labels.response_code_class=\"5xx\"${each.value.extra}"
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.service_name"]
      }
      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = <<-EOT
      **`${each.value.service}` answered HTTP 5xx in the last 5 minutes**: it crashed, timed out,
      ran out of memory, or (event functions) raised to have Pub/Sub redeliver after a
      transient fault. One redelivered transient fault is noise; repeats are not.
      First: `${each.value.first}`, then
      `gcloud functions logs read ${each.value.service} --region ${var.region} --limit 50`.
    EOT
    links {
      display_name = "Runbook"
      url          = "${var.runbook_url}#function-errors"
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  depends_on = [
    time_sleep.apis_ready,
    google_pubsub_topic_iam_member.monitoring_incidents_publisher,
  ]
}

# --------------------------------------------------------------------------------------
# Log-based metrics and their policies
# --------------------------------------------------------------------------------------

resource "google_logging_metric" "error_lines" {
  name        = "opsuite_error_lines"
  description = "ERROR (and worse) log lines of the suite's four functions"
  # a malformed message (trigger_rejected="bad_input") is counted by its own, p2 metric
  # below, not here: junk published to a topic must not page p1. A configuration error
  # (trigger_rejected="configuration") stays: the nightly backup did nothing.
  filter = "${local.mon_log_base} AND severity>=ERROR AND NOT jsonPayload.trigger_rejected=\"bad_input\""

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "opsuite ERROR log lines"
    labels {
      key         = "service_name"
      value_type  = "STRING"
      description = "The function's Cloud Run service"
    }
  }
  label_extractors = {
    service_name = "EXTRACT(resource.labels.service_name)"
  }

  depends_on = [time_sleep.apis_ready]
}

resource "google_logging_metric" "trigger_rejected" {
  name        = "opsuite_trigger_rejected"
  description = "Triggers acknowledged without being acted on (jsonPayload.trigger_rejected)"
  filter      = "${local.mon_log_base} AND jsonPayload.trigger_rejected:*"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "opsuite rejected triggers"
    labels {
      key         = "function"
      value_type  = "STRING"
      description = "The function's Cloud Run service"
    }
    labels {
      key         = "reason"
      value_type  = "STRING"
      description = "configuration, bad_input or permanent"
    }
  }
  label_extractors = {
    function = "EXTRACT(resource.labels.service_name)"
    reason   = "EXTRACT(jsonPayload.trigger_rejected)"
  }

  depends_on = [time_sleep.apis_ready]
}

# p1: a configuration error makes the nightly backup acknowledge its trigger and do nothing
# (backup_event.py logs it at ERROR); that must page someone, not wait for the 26-h backup
# age alert the next morning.
# A policy on a log-based metric created moments ago is refused with 404 "Cannot find
# metric(s) ... it could take up to 10 minutes" (hashicorp/terraform-provider-google#11102):
# the reference orders them, this waits until the metric is queryable.
resource "time_sleep" "log_metrics_ready" {
  create_duration = "180s"

  depends_on = [google_logging_metric.error_lines, google_logging_metric.trigger_rejected]
}

resource "google_monitoring_alert_policy" "error_lines" {
  display_name          = "opsuite functions: ERROR log lines"
  combiner              = "OR"
  severity              = local.mon_severity["p1"]
  notification_channels = [google_monitoring_notification_channel.incidents.id]
  user_labels = {
    severity  = "p1"
    component = "functions"
  }

  conditions {
    display_name = "ERROR lines in 5 min > 0, per service"
    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.error_lines.name}\" AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.service_name"]
      }
      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = <<-EOT
      **A function of the suite logged an ERROR line.** The one that must not wait: the backup
      function could not read its configuration and acknowledged the nightly trigger without
      backing anything up (`trigger_rejected = configuration`).
      First: `opsuite --backend gcp health --checks backups` (it reports a rejected backup
      trigger), then `gcloud logging read 'severity>=ERROR AND resource.type="cloud_run_revision"' --freshness 1h --limit 20`.
    EOT
    links {
      display_name = "Runbook"
      url          = "${var.runbook_url}#error-logs"
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  depends_on = [
    time_sleep.apis_ready,
    time_sleep.log_metrics_ready,
    google_pubsub_topic_iam_member.monitoring_incidents_publisher,
  ]
}

resource "google_monitoring_alert_policy" "trigger_rejected" {
  display_name          = "opsuite functions: rejected triggers"
  combiner              = "OR"
  severity              = local.mon_severity["p2"]
  notification_channels = [google_monitoring_notification_channel.incidents.id]
  user_labels = {
    severity  = "p2"
    component = "functions"
  }

  conditions {
    display_name = "rejected triggers in 5 min > 0, per function and reason"
    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.trigger_rejected.name}\" AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.function", "metric.label.reason"]
      }
      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = <<-EOT
      **A function acknowledged a trigger without acting on it** (`jsonPayload.trigger_rejected`:
      `configuration`, `bad_input` or `permanent`). Redelivery can't fix these; the message
      is gone.
      First: `gcloud logging read 'jsonPayload.trigger_rejected:*' --freshness 1h --limit 20`,
      then `opsuite --backend gcp health` for what it left undone.
    EOT
    links {
      display_name = "Runbook"
      url          = "${var.runbook_url}#rejected-triggers"
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  depends_on = [
    time_sleep.apis_ready,
    time_sleep.log_metrics_ready,
    google_pubsub_topic_iam_member.monitoring_incidents_publisher,
  ]
}

# --------------------------------------------------------------------------------------
# Uptime check of the health-check function (IAM-protected: OIDC as the Monitoring agent)
# --------------------------------------------------------------------------------------

# The uptime checkers call with an OIDC token of the Monitoring service agent; it may invoke
# the health-check service and nothing else. The agent exists once a channel does.
resource "google_cloud_run_v2_service_iam_member" "uptime_invoker" {
  project  = local.project_id
  location = var.region
  name     = module.health_check.name
  role     = "roles/run.invoker"
  member   = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-monitoring-notification.iam.gserviceaccount.com"

  depends_on = [time_sleep.monitoring_agent_ready]
}

resource "google_monitoring_uptime_check_config" "health_check" {
  display_name       = "opsuite health-check"
  timeout            = "10s"
  period             = "300s"
  log_check_failures = true

  http_check {
    request_method = "GET"
    path           = "/"
    port           = 443
    use_ssl        = true
    validate_ssl   = true
    service_agent_authentication {
      type = "OIDC_TOKEN"
    }
  }

  # 200 already means pass or warn (fail is a 503); the matcher also refuses a 200 that is
  # not the health document (application/health+json, top-level status).
  content_matchers {
    content = "^(pass|warn)$"
    matcher = "MATCHES_JSON_PATH"
    json_path_matcher {
      json_path    = "$.status"
      json_matcher = "REGEX_MATCH"
    }
  }

  monitored_resource {
    type = "uptime_url"
    labels = {
      project_id = local.project_id
      host       = regex("^https://([^/:]+)", module.health_check.uri)[0]
    }
  }

  depends_on = [
    time_sleep.apis_ready,
    google_cloud_run_v2_service_iam_member.uptime_invoker,
  ]
}

resource "google_monitoring_alert_policy" "health_check_uptime" {
  display_name          = "opsuite health-check: uptime check failing"
  combiner              = "OR"
  severity              = local.mon_severity["p2"]
  notification_channels = [google_monitoring_notification_channel.incidents.id]
  user_labels = {
    severity  = "p2"
    component = "health_check"
  }

  conditions {
    display_name = "check_passed false in more than one region for 10 min"
    condition_threshold {
      filter          = "metric.type=\"monitoring.googleapis.com/uptime_check/check_passed\" AND resource.type=\"uptime_url\" AND metric.labels.check_id=\"${google_monitoring_uptime_check_config.health_check.uptime_check_id}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 1
      duration        = "600s"
      aggregations {
        alignment_period     = "1200s"
        per_series_aligner   = "ALIGN_NEXT_OLDER"
        cross_series_reducer = "REDUCE_COUNT_FALSE"
        group_by_fields      = ["resource.label.host"]
      }
      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = <<-EOT
      **The health check is failing from more than one uptime-check region**: it answers
      503 (the pipeline fails a check: stale tables, no backup, a dependency down), a
      document without status pass/warn, or nothing (down, or the agent lost run.invoker).
      First: `opsuite --backend gcp health --mode full`.
    EOT
    links {
      display_name = "Runbook"
      url          = "${var.runbook_url}#uptime-check"
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  depends_on = [
    time_sleep.apis_ready,
    google_pubsub_topic_iam_member.monitoring_incidents_publisher,
  ]
}
