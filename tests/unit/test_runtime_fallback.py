"""Where a backup function with an unreadable config still records its rejected trigger."""

from __future__ import annotations

from pathlib import Path

from shared.runtime import fallback_backup_store


def test_gcp_function_without_a_config_finds_bucket_and_project_in_its_environment(
    tmp_path: Path,
) -> None:
    garbage = tmp_path / "opsuite.yaml"
    garbage.write_bytes(b"\xff\xfe: [")
    env = {
        "OPSUITE_CONFIG": str(garbage),
        "OPSUITE_BACKEND": "gcp",
        "OPSUITE_BACKUP_BUCKET": "nba-props-backups",
        "OPSUITE_PROJECT": "nba-props-platform",  # what Terraform sets on the function
    }

    found = fallback_backup_store(env)

    assert found is not None
    store, bucket = found
    assert bucket == "nba-props-backups"
    assert type(store).__name__ == "GcsObjectStore"
    assert store.project == "nba-props-platform"  # type: ignore[attr-defined]


def test_without_a_project_there_is_nowhere_to_record_on_gcp(tmp_path: Path) -> None:
    env = {
        "OPSUITE_CONFIG": str(tmp_path / "missing.yaml"),
        "OPSUITE_BACKEND": "gcp",
        "OPSUITE_BACKUP_BUCKET": "nba-props-backups",
    }
    assert fallback_backup_store(env) is None


def test_the_bucket_can_come_from_what_still_parses_of_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "opsuite.yaml"
    broken.write_text("backups:\n  bucket: from-the-file\n  colour: blue\nlocal:\n  root: x\n")

    found = fallback_backup_store({"OPSUITE_CONFIG": str(broken), "OPSUITE_BACKEND": "local"})

    assert found is not None and found[1] == "from-the-file"
