# One source of truth: the suite's own opsuite.yaml. Project, bucket, datasets, topics,
# schedules, SLOs and receiver secrets come from it, never repeated in tfvars. The same
# file is packaged into every function (`make package CONFIG=...`); a precondition in
# modules/function fails the plan when a packaged copy differs from this one.
#
# The defaults below (try(..., default)) are the Python model's own defaults
# (shared/config.py); tests/terraform/test_suite_wiring.py evaluates these locals with the
# terraform binary (no provider needed) and compares them with what load_settings reads.

variable "config_file" {
  description = "Path of the opsuite.yaml to deploy, the one `make package CONFIG=...` packaged (e.g. \"../build/opsuite.yaml\", which `make package` writes). Required: there is no silent example config for a deployment."
  type        = string

  validation {
    condition     = can(regex("\\.ya?ml$", var.config_file))
    error_message = "config_file must be the path of an opsuite.yaml (a .yaml or .yml file)."
  }
}

locals {
  config = yamldecode(file(var.config_file))

  project_id = local.config.gcp.project
  location   = try(local.config.gcp.location, "US")

  backup_bucket = local.config.backups.bucket
  backup_prefix = try(local.config.backups.prefix, "backups")

  # Every dataset the backup reads: whole datasets and the datasets of the listed tables.
  backup_datasets = sort(distinct(concat(
    [for t in try(local.config.backups.tables, []) : split(".", t)[0]],
    [for d in try(local.config.backups.datasets, []) : d.name],
  )))
  # What the health check probes: the freshness tables (none configured: every explicit
  # backup table, as shared/services/health.py _freshness_tables) and the pipeline's run
  # history (health.pipeline: null switches that check off).
  freshness_tables = [
    for t in try(local.config.health.freshness.tables, []) : t.table
  ]
  probed_tables = (length(local.freshness_tables) > 0
    ? local.freshness_tables
  : try(local.config.backups.tables, []))
  pipeline = try(local.config.health.pipeline, {})
  pipeline_table = (local.pipeline == null ? null
  : try(local.pipeline.table, "nba_orchestration.processor_run_history"))
  health_datasets = sort(distinct(concat(
    [for t in local.probed_tables : split(".", t)[0]],
    local.pipeline_table == null ? [] : [split(".", local.pipeline_table)[0]],
  )))
  # What the SLA evaluator reads: the health probes' datasets and every table an SLI names.
  sla_datasets = sort(distinct(concat(
    local.health_datasets,
    [for s in try(local.config.slos.objectives, []) : split(".", s.sli.table)[0] if can(s.sli.table)],
  )))

  drill_dataset         = try(local.config.backups.drill.scratch_dataset, "opsuite_drill")
  drill_table_expiry_ms = try(local.config.backups.drill.table_expiration_hours, 24) * 3600 * 1000
  ops_dataset           = try(local.config.slos.history.dataset, "opsuite_ops")
  ops_table             = try(local.config.slos.history.table, "slo_evaluations")

  topics = {
    backup_trigger = try(local.config.backups.trigger_topic, "opsuite-backup-trigger")
    backup_events  = try(local.config.backups.events_topic, "opsuite-backup-events")
    sla_trigger    = try(local.config.slos.trigger_topic, "opsuite-sla-trigger")
    alerts         = try(local.config.slos.alerts_topic, "opsuite-alerts")
  }

  # backups.schedule_utc "HH:MM" → the cron Cloud Scheduler fires in Etc/UTC: a past date's
  # run reads the tables as of that time, so the two must agree.
  backup_schedule_utc = try(local.config.backups.schedule_utc, "09:30")
  backup_cron = format(
    "%d %d * * *",
    tonumber(split(":", local.backup_schedule_utc)[1]),
    tonumber(split(":", local.backup_schedule_utc)[0]),
  )
  sla_cadence_minutes = try(local.config.slos.cadence_minutes, 15)
  # cadence_minutes must divide the hour (or be whole hours dividing the day): checked by a
  # precondition on the schedule
  sla_cron = (local.sla_cadence_minutes < 60
    ? "*/${local.sla_cadence_minutes} * * * *"
  : "0 */${floor(local.sla_cadence_minutes / 60)} * * *")

  slos = [
    for s in try(local.config.slos.objectives, []) : {
      name      = s.name
      objective = s.objective
      severity  = lower(s.severity)
    }
  ]

  # Receiver secrets (the *_secret of every integration): a short id is a secret of this
  # project; a full projects/P/secrets/S[/versions/V] name may be in another one.
  secret_names = sort(distinct(flatten([
    for r in try(local.config.alerting.receivers, []) : [
      for kind, integrations in r : [
        for integration in integrations : [
          for key, value in integration : value
          if endswith(key, "_secret") && value != null
        ]
      ] if endswith(kind, "_configs")
    ]
  ])))
  secrets = {
    for name in local.secret_names : name => {
      project   = startswith(name, "projects/") ? split("/", name)[1] : local.project_id
      secret_id = startswith(name, "projects/") ? split("/", name)[3] : name
    }
  }
}
