"""``opsuite`` run as a new user runs it: a subprocess, its exit code and what it prints.

Every hostile or careless invocation must end in one line on stderr and a documented exit
code (64 bad input, 78 configuration), never a traceback.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.cli import EXIT_CONFIG, EXIT_OK, EXIT_USAGE
from shared.manifest import CLAIM
from tests.helpers import BUCKET, ROOT, write_config

_SCRIPT = Path(sys.executable).with_name("opsuite")
OPSUITE = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "shared.cli"]
EXIT_SIGPIPE = 141  # 128 + SIGPIPE: what a shell reports for a writer whose reader left
NO_NETWORK = {
    # google/auth/compute_engine/_metadata.py compares NO_GCE_CHECK to "true" exactly
    "NO_GCE_CHECK": "true",
    "GCE_METADATA_HOST": "127.0.0.1:9",
    "GCE_METADATA_IP": "127.0.0.1:9",
}


def user_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPSUITE_", "GOOGLE_", "CLOUDSDK_")) and k != "STORAGE_EMULATOR_HOST"
    }
    env.update(NO_NETWORK)
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def opsuite(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*OPSUITE, *args],
        cwd=cwd,
        env=user_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == code, (result.returncode, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("opsuite"), result.stderr
    return result.stderr


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path)


@pytest.fixture
def store_dir(tmp_path: Path) -> str:
    """Where the local backend really keeps the backups of ``write_config``."""
    return f"{tmp_path / 'local'}/gcs/{BUCKET}/backups/"


# -- 1. config files that aren't what they should be --------------------------------------


def _deep(levels: int) -> bytes:
    return ("backups: " + "[" * levels + "]" * levels + "\n").encode()


HOSTILE_CONFIGS: dict[str, bytes] = {
    "latin1": b"backups:\n  bucket: bbb\n  tables: [a.b]\n# caf\xe9\n",
    "utf16": "backups: {bucket: bbb, tables: [a.b]}\n".encode("utf-16"),
    "list": b"- a\n- b\n",
    "scalar": b"hello\n",
    "empty": b"",
    "comment-only": b"# nothing here\n",
    "deep-lists": _deep(100_000),
    "deep-maps": ("a: " + "{b: " * 3000 + "1" + "}" * 3000 + "\n").encode(),
    "duplicate-key": (
        b"backups:\n  bucket: bbb\n  tables: [a.b]\nbackups:\n  bucket: ccc\n  tables: [a.b]\n"
    ),
    "duplicate-nested": b"backups:\n  bucket: bbb\n  bucket: ccc\n  tables: [a.b]\n",
    "python-tag": b"backups: !!python/object:os.system {}\n",
    "two-documents": b"a: 1\n---\nb: 2\n",
    "nul": b"backups: {bucket: bbb, tables: [a.b]}\n\x00",
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_CONFIGS))
def test_every_broken_config_names_its_path_and_exits_78(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"{kind}.yaml"
    path.write_bytes(HOSTILE_CONFIGS[kind])
    result = opsuite(tmp_path, "--config", str(path), "backups", "list")
    err = assert_one_line_error(result, EXIT_CONFIG)
    assert err.startswith(f"opsuite: {path}: "), err


def test_config_not_utf8_says_where_the_bad_byte_is(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(HOSTILE_CONFIGS["latin1"])
    err = assert_one_line_error(opsuite(tmp_path, "--config", str(path), "backups", "list"), 78)
    assert f"{path}: not UTF-8 text (byte 0xe9 at offset 44, line 4)" in err


def test_duplicate_key_names_the_key_and_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_bytes(HOSTILE_CONFIGS["duplicate-nested"])
    err = assert_one_line_error(opsuite(tmp_path, "--config", str(path), "backups", "list"), 78)
    assert "'bucket' is defined twice (lines 2 and 3)" in err


@pytest.mark.parametrize("where", ["directory", "missing"])
def test_unreadable_config_path_exits_78(tmp_path: Path, where: str) -> None:
    path = tmp_path / "conf.yaml"
    if where == "directory":
        path.mkdir()
    err = assert_one_line_error(opsuite(tmp_path, "--config", str(path), "backups", "list"), 78)
    assert f"opsuite: {path}: cannot read config" in err


# -- 2. --date ----------------------------------------------------------------------------


@pytest.mark.parametrize("date", ["", " ", "2026-13-01", "2026-02-30", "22-11-2026", "today",
                                  "２０２６-１１-２２", "2026-11-22T00:00"])  # fmt: skip
def test_empty_or_malformed_date_is_bad_input(tmp_path: Path, config: Path, date: str) -> None:
    result = opsuite(tmp_path, "--config", str(config), "backup", "--date", date)
    err = assert_one_line_error(result, EXIT_USAGE)
    assert "--date" in err and "YYYY-MM-DD" in err, err
    assert not (tmp_path / "local" / "gcs").exists()  # refused before anything ran


# -- 3. a run id that isn't there ---------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["verify", "20990101"],
        ["restore", "--run", "20990101"],
        ["restore", "--run", "20990101", "--dry-run", "--json"],
    ],
)
def test_missing_run_is_bad_input(
    tmp_path: Path, config: Path, store_dir: str, args: list[str]
) -> None:
    err = assert_one_line_error(opsuite(tmp_path, "--config", str(config), *args), EXIT_USAGE)
    assert err == (f"opsuite: no backup run 20990101 in {store_dir}; see opsuite backups list\n"), (
        err
    )


@pytest.mark.parametrize(
    "args",
    [
        ["verify", "../x"],
        ["verify", "x" * 300],  # a name too long for the file system
        ["restore", "--run", "2026112" + "2" * 300, "--dry-run"],
        ["verify", "ü"],
        ["restore", "--run", "../x"],
        ["restore", "--run", ""],
        ["backup", "--table", "a.b.c", "--dry-run"],
        ["backup", "--table", "", "--dry-run"],
        ["restore", "--run", "20990101", "--target-dataset", "bad-name"],
        ["restore", "--run", "20990101", "--table", "x; DROP TABLE y"],
        ["health", "--checks", "nope"],
        ["health", "--checks", ""],
        ["backups", "list", "--bogus"],
    ],
)
def test_hostile_arguments_are_one_line_and_64(
    tmp_path: Path, config: Path, store_dir: str, args: list[str]
) -> None:
    Path(store_dir).mkdir(parents=True)  # a store that exists, as after the first backup
    assert_one_line_error(opsuite(tmp_path, "--config", str(config), *args), EXIT_USAGE)


def test_a_run_still_in_progress_is_not_called_missing(
    tmp_path: Path, config: Path, store_dir: str
) -> None:
    claim = Path(store_dir) / "20990101" / CLAIM
    claim.parent.mkdir(parents=True)
    claim.write_text("{}")
    err = assert_one_line_error(
        opsuite(tmp_path, "--config", str(config), "verify", "20990101"), 64
    )
    assert "backup run 20990101 has not finished" in err


def test_nonexistent_config_is_78(tmp_path: Path) -> None:
    err = assert_one_line_error(
        opsuite(tmp_path, "--config", "/nonexistent", "backups", "list"), 78
    )
    assert "/nonexistent" in err


# -- 4. --backend gcp without credentials -------------------------------------------------


def test_gcp_without_credentials_is_a_configuration_error(tmp_path: Path, config: Path) -> None:
    home = tmp_path / "home"  # no ~/.config/gcloud/application_default_credentials.json
    home.mkdir()
    result = opsuite(
        tmp_path, "--backend", "gcp", "--config", str(config), "backups", "list", HOME=str(home)
    )
    err = assert_one_line_error(result, EXIT_CONFIG)
    assert "gcloud auth application-default login" in err or "GOOGLE_APPLICATION_CREDENTIALS" in err


# -- 5. output into a pipe that closes ----------------------------------------------------


@pytest.fixture
def backed_up(tmp_path: Path, config: Path) -> Path:
    assert opsuite(tmp_path, "--config", str(config), "seed").returncode == EXIT_OK
    assert opsuite(tmp_path, "--config", str(config), "backup").returncode == EXIT_OK
    return config


def test_reader_gone_before_output_is_no_traceback(tmp_path: Path, backed_up: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone before opsuite writes a byte: EPIPE for sure
    try:
        result = subprocess.run(
            [*OPSUITE, "--config", str(backed_up), "backups", "list", "--json"],
            cwd=tmp_path,
            env=user_env(),
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)
    assert result.stderr == ""
    assert result.returncode == EXIT_SIGPIPE


def test_json_into_head_is_no_traceback(tmp_path: Path, backed_up: Path, store_dir: str) -> None:
    # GIVEN far more output than a pipe buffers (64 KiB): 400 runs' worth of listing
    runs = Path(store_dir)
    [manifest] = list(runs.glob("*/_manifest.json"))
    for day in range(400):
        copy = runs / f"2025{day // 28 + 1:02d}{day % 28 + 1:02d}-{day:08x}" / "_manifest.json"
        copy.parent.mkdir()
        copy.write_bytes(manifest.read_bytes())
    command = " ".join([*OPSUITE, "--config", str(backed_up), "backups", "list", "--json"])
    result = subprocess.run(
        ["bash", "-c", f'{command} | head -1; echo "exit=${{PIPESTATUS[0]}}" >&2'],
        cwd=tmp_path,
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.stdout == "[\n"
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr
    assert f"exit={EXIT_SIGPIPE}" in result.stderr  # opsuite met the closed pipe, quietly


# -- 6. messages that say what is true ----------------------------------------------------


def test_dry_run_of_a_finished_run_says_nothing_to_do(tmp_path: Path, backed_up: Path) -> None:
    result = opsuite(tmp_path, "--config", str(backed_up), "backup", "--dry-run")
    assert result.returncode == EXIT_OK
    assert "would export 0 tables" not in result.stdout
    assert "is already complete (4 tables); nothing to do" in result.stdout


def test_local_locations_are_where_the_files_are(
    tmp_path: Path, config: Path, store_dir: str
) -> None:
    empty = opsuite(tmp_path, "--config", str(config), "backups", "list")
    assert empty.stdout == f"no backup runs in {store_dir}\n"
    assert opsuite(tmp_path, "--config", str(config), "seed").returncode == EXIT_OK
    plan = opsuite(tmp_path, "--config", str(config), "backup", "--dry-run")
    assert plan.returncode == EXIT_OK
    lines = [line for line in plan.stdout.splitlines() if "->" in line]
    assert len(lines) == 4
    assert all(f"-> {store_dir}" in line for line in lines), plan.stdout
    assert "gs://" not in plan.stdout


def test_verify_problems_point_at_local_files(
    tmp_path: Path, backed_up: Path, store_dir: str
) -> None:
    victim = next(Path(store_dir).rglob("*.avro"))
    victim.write_bytes(victim.read_bytes()[:-10])
    (run_id,) = [p.name for p in Path(store_dir).iterdir()]
    result = opsuite(tmp_path, "--config", str(backed_up), "verify", run_id)
    assert result.returncode == 1
    assert str(victim) in result.stdout
    assert "gs://" not in result.stdout


def test_demo_summary_shows_the_local_manifest(
    tmp_path: Path, config: Path, store_dir: str
) -> None:
    result = opsuite(tmp_path, "--config", str(config), "demo")
    assert result.returncode == EXIT_OK, result.stderr
    (line,) = [x for x in result.stdout.splitlines() if x.startswith("manifest")]
    assert line.split()[1].startswith(store_dir) and line.endswith("/_manifest.json")
    assert Path(line.split()[1]).is_file()


# -- make serve stops with make -------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def _answers(port: int) -> bool:
    """A worker has booted and answers HTTP (the port alone opens before gunicorn's worker
    has set its signal handlers; a signal in that gap is lost until graceful_timeout)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/")
        connection.getresponse().read()
    except OSError:
        return False
    finally:
        connection.close()
    return True


def _wait_for(condition: object, seconds: float) -> bool:
    """Poll ``condition()`` until true or ``seconds`` have passed (a bound, not a timing test)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return bool(condition())  # type: ignore[operator]


@pytest.fixture
def served(config: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    if (
        shutil.which("make") is None
        or not (Path(sys.executable).parent / "functions-framework").exists()
    ):
        pytest.skip("make or functions-framework not installed")
    port = _free_port()
    make = subprocess.Popen(
        [
            "make",
            "-o",
            "install",
            "serve",
            f"PORT={port}",
            f"CONFIG={config}",
            f"BIN={Path(sys.executable).parent}",
        ],
        cwd=ROOT,
        env=user_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    try:
        if not _wait_for(lambda: _answers(port), 60):
            pytest.fail("make serve did not start answering")
        yield make, port
    finally:
        try:
            os.killpg(make.pid, signal.SIGKILL)  # whatever is left of the group
        except ProcessLookupError:
            pass
        make.wait(timeout=30)


def test_sigterm_to_make_serve_stops_the_server(
    served: tuple[subprocess.Popen[bytes], int],
) -> None:
    make, port = served
    make.send_signal(signal.SIGTERM)  # e.g. a supervisor or `kill` stopping make only
    make.wait(timeout=60)
    assert _wait_for(lambda: not _listening(port), 30), f"server still listening on {port}"


def test_ctrl_c_to_make_serve_stops_the_server(served: tuple[subprocess.Popen[bytes], int]) -> None:
    make, port = served
    os.killpg(make.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole group
    make.wait(timeout=60)
    assert _wait_for(lambda: not _listening(port), 30), f"server still listening on {port}"


def _with_closed_stderr(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run opsuite with its stderr a pipe whose reader has gone (``2>&1 | head -1``)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [*OPSUITE, *args],
            cwd=cwd,
            env=user_env(),
            stdout=subprocess.PIPE,
            stderr=write_end,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)


def test_progress_into_a_closed_pipe_does_not_stop_the_backup(tmp_path: Path, config: Path) -> None:
    assert opsuite(tmp_path, "--config", str(config), "seed").returncode == EXIT_OK
    result = _with_closed_stderr(tmp_path, "--config", str(config), "backup", "--json")
    assert result.returncode == EXIT_OK
    assert '"status": "complete"' in result.stdout


def test_progress_into_a_closed_pipe_does_not_stop_the_restore(
    tmp_path: Path, backed_up: Path, store_dir: str
) -> None:
    (run_id,) = [p.name for p in Path(store_dir).iterdir()]
    result = _with_closed_stderr(
        tmp_path, "--config", str(backed_up), "restore", "--run", run_id,
        "--target-dataset", "drill", "--json",
    )  # fmt: skip
    assert result.returncode == EXIT_OK
    assert '"ok": true' in result.stdout


def test_restore_dry_run_that_would_be_refused_says_so_and_is_not_ok(
    tmp_path: Path, backed_up: Path
) -> None:
    run_id = time.strftime("%Y%m%d", time.gmtime())
    args = ["--config", str(backed_up), "restore", "--run", run_id, "--dry-run"]

    result = opsuite(tmp_path, *args)  # every target exists, no --force

    assert result.returncode == 1, result.stdout  # finished with problems: exit 0 would lie
    assert "would be refused: pass --force" in result.stdout
    assert result.stdout.count(": refused") == 4
    assert " ok" not in result.stdout.splitlines()[-1]
    forced = opsuite(tmp_path, *args, "--force")
    assert forced.returncode == EXIT_OK
    assert "would restore" in forced.stdout


def test_backup_dry_run_lists_tables_it_cannot_back_up(tmp_path: Path) -> None:
    config = write_config(tmp_path, tables=[], datasets=[{"name": "odd"}])
    assert opsuite(tmp_path, "--config", str(config), "seed").returncode == EXIT_OK
    import duckdb

    db = duckdb.connect(str(tmp_path / "local" / "warehouse.duckdb"))
    db.execute('CREATE SCHEMA odd; CREATE TABLE odd."fine" (id BIGINT)')
    db.execute(f'CREATE TABLE odd."{"x" * 1100}" (id BIGINT)')  # BigQuery allows 1024 bytes
    db.close()

    result = opsuite(tmp_path, "--config", str(config), "backup", "--dry-run")

    assert result.returncode == 1, result.stderr
    assert "would export 1 tables" in result.stdout
    assert f"CANNOT BACK UP odd.{'x' * 1100}" in result.stdout
