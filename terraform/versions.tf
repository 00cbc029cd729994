terraform {
  # 1.5: import blocks and check blocks; nothing newer is required.
  required_version = ">= 1.5.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 7.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = "~> 2.4"
    }
  }

  # State: configure a remote backend for shared use (see README.md), e.g.
  #   backend "gcs" { bucket = "<state-bucket>" prefix = "opsuite" }
  # It is left out here so that `terraform init` works without one.
}

provider "google" {
  project = var.project_id
  region  = var.region
}
