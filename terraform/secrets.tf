# The alert router's receiver secrets (every *_secret named in alerting.receivers of
# opsuite.yaml): webhook URLs, PagerDuty routing keys, HMAC keys. Declared without a
# version: values never enter Terraform state or code. Add them out of band (README):
#   printf '%s' "$SLACK_WEBHOOK_URL" | gcloud secrets versions add slack-webhook-nba-incidents --data-file=-
# A secret named with a full projects/P/secrets/S name in another project is that
# project's to create: only its accessor grant is made here.

locals {
  managed_secrets = { for name, s in local.secrets : name => s if s.project == local.project_id }
}

resource "google_secret_manager_secret" "receiver" {
  for_each = local.managed_secrets

  project   = local.project_id
  secret_id = each.value.secret_id
  labels    = merge(local.labels, { component = "alerts" })

  replication {
    auto {}
  }

  depends_on = [google_project_service.required]
}

# roles/secretmanager.secretAccessor on each receiver secret individually, to the alert
# router alone (no project-wide accessor: another function can read no secret).
resource "google_secret_manager_secret_iam_member" "alert_router_accessor" {
  for_each = local.secrets

  project   = each.value.project
  secret_id = each.value.project == local.project_id ? google_secret_manager_secret.receiver[each.key].secret_id : each.value.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.alert_router.member
}
