"""One service module per job."""
