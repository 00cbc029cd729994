# The suite's Cloud Monitoring dashboard. Only metric types that exist: the custom ones of
# shared/metrics.py (metrics.json), the two log-based metrics of monitoring.tf, Cloud Run's
# request_count and the uptime check's check_passed (tests/terraform/test_monitoring.py).
# Backup size: no metric carries it (shared/metrics.py has only backup/hours_since_complete),
# so there is no size chart; `opsuite backups list` shows each run's bytes.
# One chart per signal, one line per label value (slo, window, table, phase, service), so a
# new SLO or table appears without editing this file.

locals {
  dash_services = join(",", [for f in values(local.mon_functions) : "\"${f.service}\""])

  dash_opsuite = {
    displayName = "opsuite"
    mosaicLayout = {
      columns = 12
      tiles = [
        {
          xPos = 0, yPos = 0, width = 6, height = 4
          widget = {
            title = "SLO compliance (good / evaluated intervals in the window)"
            xyChart = {
              dataSets = [{
                plotType = "LINE"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter      = "metric.type=\"${local.mon_metric_prefix}slo/compliance\" AND resource.type=\"global\""
                    aggregation = { alignmentPeriod = local.mon_slo_alignment, perSeriesAligner = "ALIGN_NEXT_OLDER", crossSeriesReducer = "REDUCE_MEAN", groupByFields = ["metric.label.slo"] }
                  }
                }
              }]
            }
          }
        },
        {
          xPos = 6, yPos = 0, width = 6, height = 4
          widget = {
            title = "SLO error budget remaining (1 = all, < 0 = overspent)"
            xyChart = {
              dataSets = [{
                plotType = "LINE"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter      = "metric.type=\"${local.mon_metric_prefix}slo/budget_remaining\" AND resource.type=\"global\""
                    aggregation = { alignmentPeriod = local.mon_slo_alignment, perSeriesAligner = "ALIGN_NEXT_OLDER", crossSeriesReducer = "REDUCE_MEAN", groupByFields = ["metric.label.slo"] }
                  }
                }
              }]
              thresholds = [{ value = 0 }]
            }
          }
        },
        {
          xPos = 0, yPos = 4, width = 6, height = 4
          widget = {
            title = "SLO burn rate per window (14.4x / 6x / 1x alert)"
            xyChart = {
              dataSets = [{
                plotType = "LINE"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter      = "metric.type=\"${local.mon_metric_prefix}slo/burn_rate\" AND resource.type=\"global\""
                    aggregation = { alignmentPeriod = local.mon_slo_alignment, perSeriesAligner = "ALIGN_NEXT_OLDER", crossSeriesReducer = "REDUCE_MEAN", groupByFields = ["metric.label.slo", "metric.label.window"] }
                  }
                }
              }]
              thresholds = [{ value = 14.4 }, { value = 6 }, { value = 1 }]
            }
          }
        },
        {
          xPos = 6, yPos = 4, width = 6, height = 4
          widget = {
            title = "SLO error budget remaining (minutes)"
            xyChart = {
              dataSets = [{
                plotType = "LINE"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter      = "metric.type=\"${local.mon_metric_prefix}slo/budget_remaining_minutes\" AND resource.type=\"global\""
                    aggregation = { alignmentPeriod = local.mon_slo_alignment, perSeriesAligner = "ALIGN_NEXT_OLDER", crossSeriesReducer = "REDUCE_MEAN", groupByFields = ["metric.label.slo"] }
                  }
                }
              }]
            }
          }
        },
        {
          xPos = 0, yPos = 8, width = 6, height = 4
          widget = {
            title = "Freshness: hours since each table's last load"
            xyChart = {
              dataSets = [{
                plotType = "LINE"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter      = "metric.type=\"${local.mon_metric_prefix}freshness/age_hours\" AND resource.type=\"global\""
                    aggregation = { alignmentPeriod = local.mon_slo_alignment, perSeriesAligner = "ALIGN_NEXT_OLDER", crossSeriesReducer = "REDUCE_MAX", groupByFields = ["metric.label.table"] }
                  }
                }
              }]
              thresholds = [{ value = 24 }]
            }
          }
        },
        {
          xPos = 6, yPos = 8, width = 6, height = 4
          widget = {
            title = "SLIs not computable (slo/unknown = 1)"
            xyChart = {
              dataSets = [{
                plotType = "STACKED_BAR"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter      = "metric.type=\"${local.mon_metric_prefix}slo/unknown\" AND resource.type=\"global\""
                    aggregation = { alignmentPeriod = local.mon_slo_alignment, perSeriesAligner = "ALIGN_MAX", crossSeriesReducer = "REDUCE_MAX", groupByFields = ["metric.label.slo"] }
                  }
                }
              }]
            }
          }
        },
        {
          xPos = 0, yPos = 12, width = 6, height = 4
          widget = {
            title = "Backup: hours since the newest complete backup (alert > 26 h)"
            xyChart = {
              dataSets = [{
                plotType = "LINE"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter      = "metric.type=\"${local.mon_metric_prefix}backup/hours_since_complete\" AND resource.type=\"global\""
                    aggregation = { alignmentPeriod = local.mon_slo_alignment, perSeriesAligner = "ALIGN_NEXT_OLDER" }
                  }
                }
              }]
              thresholds = [{ value = 26 }]
            }
          }
        },
        {
          xPos = 6, yPos = 12, width = 6, height = 4
          widget = {
            title = "SLA evaluator heartbeat (evaluations per hour)"
            xyChart = {
              dataSets = [{
                plotType = "STACKED_BAR"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter      = "metric.type=\"${local.mon_metric_prefix}evaluator/heartbeat\" AND resource.type=\"global\""
                    aggregation = { alignmentPeriod = "3600s", perSeriesAligner = "ALIGN_COUNT" }
                  }
                }
              }]
            }
          }
        },
        {
          xPos = 0, yPos = 16, width = 6, height = 4
          widget = {
            title = "Function errors: HTTP 5xx per service"
            xyChart = {
              dataSets = [{
                plotType = "STACKED_BAR"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter      = "metric.type=\"run.googleapis.com/request_count\" AND resource.type=\"cloud_run_revision\" AND metric.labels.response_code_class=\"5xx\" AND resource.labels.service_name=one_of(${local.dash_services})"
                    aggregation = { alignmentPeriod = "300s", perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["resource.label.service_name", "metric.label.response_code"] }
                  }
                }
              }]
            }
          }
        },
        {
          xPos = 6, yPos = 16, width = 6, height = 4
          widget = {
            title = "Pipeline phase success ratio"
            xyChart = {
              dataSets = [{
                plotType = "LINE"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter      = "metric.type=\"${local.mon_metric_prefix}pipeline/phase_success\" AND resource.type=\"global\""
                    aggregation = { alignmentPeriod = local.mon_slo_alignment, perSeriesAligner = "ALIGN_NEXT_OLDER", crossSeriesReducer = "REDUCE_MEAN", groupByFields = ["metric.label.phase"] }
                  }
                }
              }]
              thresholds = [{ value = 0.95 }]
            }
          }
        },
        {
          xPos = 0, yPos = 20, width = 6, height = 4
          widget = {
            title = "Alert volume: ERROR log lines per service"
            xyChart = {
              dataSets = [{
                plotType = "STACKED_BAR"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter      = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.error_lines.name}\" AND resource.type=\"cloud_run_revision\""
                    aggregation = { alignmentPeriod = "300s", perSeriesAligner = "ALIGN_SUM", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["metric.label.service_name"] }
                  }
                }
              }]
            }
          }
        },
        {
          xPos = 6, yPos = 20, width = 6, height = 4
          widget = {
            title = "Alert volume: rejected triggers per function and reason"
            xyChart = {
              dataSets = [{
                plotType = "STACKED_BAR"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter      = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.trigger_rejected.name}\" AND resource.type=\"cloud_run_revision\""
                    aggregation = { alignmentPeriod = "300s", perSeriesAligner = "ALIGN_SUM", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["metric.label.function", "metric.label.reason"] }
                  }
                }
              }]
            }
          }
        },
        {
          xPos = 0, yPos = 24, width = 6, height = 4
          widget = {
            title = "Health-check uptime: failing regions"
            xyChart = {
              dataSets = [{
                plotType = "LINE"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter      = "metric.type=\"monitoring.googleapis.com/uptime_check/check_passed\" AND resource.type=\"uptime_url\" AND metric.labels.check_id=\"${google_monitoring_uptime_check_config.health_check.uptime_check_id}\""
                    aggregation = { alignmentPeriod = "1200s", perSeriesAligner = "ALIGN_NEXT_OLDER", crossSeriesReducer = "REDUCE_COUNT_FALSE", groupByFields = ["resource.label.host"] }
                  }
                }
              }]
              thresholds = [{ value = 1 }]
            }
          }
        },
      ]
    }
  }
}

resource "google_monitoring_dashboard" "opsuite" {
  dashboard_json = jsonencode(local.dash_opsuite)

  depends_on = [
    time_sleep.apis_ready,
    google_monitoring_metric_descriptor.opsuite,
  ]
}
