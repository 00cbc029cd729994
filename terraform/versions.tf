terraform {
  # 1.7: import blocks with for_each (bigquery.tf); terraform_data carries replace_triggered_by.
  required_version = ">= 1.7.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 7.0"
    }
    # google_project_service_identity (the Pub/Sub and Eventarc service agents) is beta-only
    google-beta = {
      source  = "hashicorp/google-beta"
      version = "~> 7.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = "~> 2.5"
    }
    time = {
      source  = "hashicorp/time"
      version = "~> 0.12"
    }
  }

  # State: configure a remote backend for shared use (see README.md), e.g.
  #   backend "gcs" { bucket = "<state-bucket>" prefix = "opsuite" }
  # It is left out here so that `terraform init` works without one.
}

provider "google" {
  project = local.project_id
  region  = var.region
}

provider "google-beta" {
  project = local.project_id
  region  = var.region
}
