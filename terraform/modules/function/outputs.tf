output "name" {
  description = "Deployed function name (also the name of its Cloud Run service)."
  value       = google_cloudfunctions2_function.this.name
}

output "id" {
  description = "Function resource id, projects/P/locations/R/functions/NAME."
  value       = google_cloudfunctions2_function.this.id
}

output "uri" {
  description = "HTTPS URI of the function's Cloud Run service: the URL HTTP callers use with an identity token (reachable only as far as ingress_settings allows)."
  value       = google_cloudfunctions2_function.this.service_config[0].uri
}

output "source_object" {
  description = "gs:// URI of the uploaded source zip."
  value       = "gs://${google_storage_bucket_object.source.bucket}/${google_storage_bucket_object.source.name}"
}

output "source_md5" {
  description = "MD5 of the packaged source; changes exactly when the code changes."
  value       = data.archive_file.source.output_md5
}

output "service" {
  description = "Name of the function's Cloud Run service (the function's name): where roles/run.invoker is granted."
  value       = google_cloudfunctions2_function.this.name
}

output "triggers" {
  description = "Eventarc trigger names delivering to the function: its own, then the extra topics'."
  value = concat(
    [for t in google_cloudfunctions2_function.this.event_trigger : t.trigger],
    [for t in google_eventarc_trigger.extra : t.name],
  )
}
