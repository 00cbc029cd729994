"""What deploys the suite besides the HCL: `make package`, the Terraform/checkov targets and
the on-call runbook the alerts link to.

- `make package` packages only a config named on purpose (CONFIG=...), validated by the
  suite's own loader, into BUILD (a temporary directory here, so build/ is never touched):
  the four function directories, `opsuite.yaml` for Terraform and its digest.
- `make tf-validate` / `make tf-plan` say so clearly when terraform is missing, and tf-plan
  when its variables file or the packaged config is.
- docs/runbook.md: every anchor the monitoring's documentation links use exists, and every
  `opsuite ...` command line it quotes parses with the CLI's real argument parser (parsed
  only: nothing runs).
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
import unicodedata
from pathlib import Path

import pytest
import yaml

from shared.cli import _parser

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "docs" / "runbook.md"
EXAMPLE_CONFIG = ROOT / "config" / "opsuite.example.yaml"
FUNCTIONS = ("backup_export", "health_check", "sla_evaluator", "alert_router")

# The sections the Terraform alert policies link to ("${var.runbook_url}#<anchor>").
ANCHORS = (
    "slo-breach",
    "fast-burn",
    "slow-burn",
    "backup-stale",
    "restore-drill",
    "evaluator-heartbeat",
    "function-errors",
    "error-logs",
    "rejected-triggers",
    "uptime-check",
    "dr-dataset-loss",
    "dr-bucket-corruption",
    "dr-state-loss",
    "dr-complete-outage",
    "dr-processor-failures",
)

needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")


_NOT_INHERITED = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "CONFIG", "BUILD", "TFVARS"}


def _make(*args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`make -C ROOT ARGS` as a person would type it: nothing inherited from an outer make
    (`make test` exports its command-line variables through MAKEFLAGS) or the shell."""
    env = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}
    env.update(extra_env or {})
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


# --- make package ----------------------------------------------------------------------------


@needs_make
def test_package_without_an_explicit_config_fails_and_builds_nothing(tmp_path: Path) -> None:
    build = tmp_path / "build"
    result = _make("package", f"BUILD={build}")
    assert result.returncode != 0
    assert "make package: name the config to deploy" in result.stderr
    assert "CONFIG=config/opsuite.yaml" in result.stderr
    assert not build.exists()


@needs_make
def test_package_with_an_empty_config_fails(tmp_path: Path) -> None:
    build = tmp_path / "build"
    result = _make("package", "CONFIG=", f"BUILD={build}")
    assert result.returncode != 0
    assert "name the config to deploy" in result.stderr
    assert not build.exists()


@needs_make
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: 1\ngcp: {project: p, location: US}\nno_such_key: 1\n", "no_such_key"),
        ("version: 1\ngcp: [unclosed\n", "not valid YAML"),
    ],
)
def test_package_refuses_an_invalid_config(tmp_path: Path, text: str, expected: str) -> None:
    config = tmp_path / "opsuite.yaml"
    config.write_text(text)
    build = tmp_path / "build"
    result = _make("package", f"CONFIG={config}", f"BUILD={build}")
    assert result.returncode != 0
    # (a line of its own: an out-of-date install may print before it)
    assert any(line.startswith(f"make package: {config}: ") for line in result.stderr.splitlines())
    assert expected in result.stderr
    assert "make package: nothing packaged" in result.stderr
    assert "Traceback" not in result.stderr
    assert not build.exists()


@needs_make
def test_package_refuses_a_missing_config(tmp_path: Path) -> None:
    build = tmp_path / "build"
    result = _make("package", f"CONFIG={tmp_path / 'absent.yaml'}", f"BUILD={build}")
    assert result.returncode != 0
    assert "absent.yaml" in result.stderr
    assert not build.exists()


@needs_make
def test_package_builds_every_function_with_the_given_config(tmp_path: Path) -> None:
    config = tmp_path / "deploy.yaml"
    shutil.copyfile(EXAMPLE_CONFIG, config)
    with config.open("a") as f:
        f.write("# deployment copy\n")  # not the example's bytes: the copy must be this file
    build = tmp_path / "build"
    result = _make("package", f"CONFIG={config}", f"BUILD={build}")
    assert result.returncode == 0, result.stderr
    wanted = config.read_bytes()
    assert sorted(p.name for p in build.iterdir() if p.is_dir()) == sorted(FUNCTIONS)
    for fn in FUNCTIONS:
        out = build / fn
        assert (out / "main.py").read_bytes() == (ROOT / "functions" / fn / "main.py").read_bytes()
        assert (out / "requirements.txt").is_file()
        assert (out / "shared" / "__init__.py").is_file()
        assert (out / "shared" / "cli" / "__init__.py").is_file()
        assert (out / "opsuite.yaml").read_bytes() == wanted
        assert not list(out.rglob("__pycache__")), fn
        assert not list(out.rglob("*.pyc")), fn
        assert f"packaged {out}" in result.stdout
    assert (build / "opsuite.yaml").read_bytes() == wanted
    digest = hashlib.sha256(wanted).hexdigest()
    assert (build / "config.sha256").read_text() == f"{digest}  opsuite.yaml\n"


@needs_make
def test_package_again_replaces_what_was_packaged(tmp_path: Path) -> None:
    build = tmp_path / "build"
    stale = build / "health_check" / "stale.py"
    stale.parent.mkdir(parents=True)
    stale.write_text("x = 1\n")
    result = _make("package", f"CONFIG={EXAMPLE_CONFIG}", f"BUILD={build}")
    assert result.returncode == 0, result.stderr
    assert not stale.exists()


# --- Terraform targets ----------------------------------------------------------------------


@needs_make
@pytest.mark.parametrize("target", ["tf-validate", "tf-plan"])
def test_terraform_targets_say_when_terraform_is_missing(tmp_path: Path, target: str) -> None:
    result = _make(target, f"TERRAFORM={tmp_path / 'no-terraform'}", "TFVARS=x.tfvars")
    assert result.returncode != 0
    assert f"make {target}: terraform is not installed" in result.stderr


@needs_make
def test_tf_plan_requires_tfvars(tmp_path: Path) -> None:
    result = _make("tf-plan", "TERRAFORM=true", f"BUILD={tmp_path}")
    assert result.returncode != 0
    assert "make tf-plan: name the variables file" in result.stderr


@needs_make
def test_tf_plan_requires_the_packaged_config(tmp_path: Path) -> None:
    tfvars = tmp_path / "t.tfvars"
    tfvars.write_text('project_id = "p"\n')
    result = _make("tf-plan", "TERRAFORM=true", f"TFVARS={tfvars}", f"BUILD={tmp_path / 'b'}")
    assert result.returncode != 0
    assert "opsuite.yaml is missing: run make package CONFIG=" in result.stderr


def test_checkov_is_part_of_make_test_and_pinned() -> None:
    makefile = (ROOT / "Makefile").read_text()
    test_rule = re.search(r"^test:(.*)$", makefile, re.MULTILINE)
    assert test_rule is not None and "checkov" in test_rule.group(1).split()
    assert "--skip-download" in makefile and "--soft-fail" not in makefile
    # checkov exits 0 when it can't parse a file (then unchecked): the target counts those
    assert '"parsing_errors"' in makefile and "$$CHECKOV_PARSED" in makefile
    lock = [
        line
        for line in (ROOT / "requirements-checkov.lock").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert "checkov==3.3.30" in lock
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[A-Za-z0-9_.+\-]+", x) for x in lock), lock
    # checkov's hcl2 fork must stay out of the dev environment that python-hcl2 serves
    dev_lock = (ROOT / "requirements-dev.lock").read_text().lower()
    assert "bc-python-hcl2" not in dev_lock and "checkov" not in dev_lock


# --- docs/runbook.md ------------------------------------------------------------------------


def _github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`([^`]*)`", r"\1", heading.strip()).lower()
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in ("L", "N", "M"))
    return kept.replace(" ", "-")


def _anchors(markdown: str) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    in_fence = False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
            continue
        found = None if in_fence else re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if found:
            base = _github_anchor(found.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.append(base if n == 0 else f"{base}-{n}")
    return out


def _words(line: str) -> list[str]:
    """A shell line's words; an unquoted `#` starting a word starts a comment, as in sh."""
    quote = ""
    escaped = False
    for i, c in enumerate(line):
        if escaped:
            escaped = False
        elif c == "\\" and quote != "'":
            escaped = True
        elif quote:
            quote = "" if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1].isspace()):
            line = line[:i]
            break
    return shlex.split(line)


def _commands(words: list[str]) -> list[list[str]]:
    """Split at `&&`, `||`, `|`, `;`: each simple command's words."""
    commands: list[list[str]] = [[]]
    for word in words:
        if word in ("&&", "||", "|", ";"):
            commands.append([])
        else:
            commands[-1].append(word)
    return [c for c in commands if c]


def _is_opsuite(word: str) -> bool:
    return word == "opsuite" or word.endswith("/bin/opsuite")


def _quoted_opsuite_commands(markdown: str) -> list[list[str]]:
    """Every `opsuite ...` command in code blocks (continuations joined) and inline code."""
    found: list[list[str]] = []
    prose: list[str] = []
    block: list[str] | None = None
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            if block is None:
                block = []
            else:
                joined = "\n".join(block).replace("\\\n", " ")
                for shell_line in joined.splitlines():
                    for command in _commands(_words(shell_line)):
                        if _is_opsuite(command[0]):
                            found.append(command)
                block = None
            continue
        if block is not None:
            block.append(line)
        else:
            prose.append(line)
    text = " ".join(prose)  # an inline span may wrap across lines
    for span in re.findall(r"`([^`]+)`", text):
        if not re.match(r"\s*(\S*/bin/)?opsuite\s", span):
            continue  # not a command line (a name, a path, a heading's word...)
        words = _words(span)
        if len(words) > 1 and _is_opsuite(words[0]):
            found.extend(c for c in _commands(words) if _is_opsuite(c[0]))
    return found


def test_runbook_has_every_linked_anchor() -> None:
    anchors = _anchors(RUNBOOK.read_text())
    missing = [a for a in ANCHORS if a not in anchors]
    assert not missing, f"docs/runbook.md lacks sections for {missing} (has {anchors})"
    assert len(anchors) == len(set(anchors))


def test_runbook_links_point_at_its_own_sections() -> None:
    text = RUNBOOK.read_text()
    anchors = set(_anchors(text))
    links = re.findall(r"\]\(#([^)]+)\)", text)
    assert links
    assert not [x for x in links if x not in anchors]


def test_anchor_rule_matches_github() -> None:
    assert _github_anchor("DR: dataset loss") == "dr-dataset-loss"
    assert _github_anchor("SLO breach: data freshness") == "slo-breach-data-freshness"
    assert _github_anchor("`opsuite` and `make`") == "opsuite-and-make"


def test_command_extraction() -> None:
    sample = (
        "Run `opsuite sla status\n--slo x` then\n\n```sh\nopsuite backups list  # runs\n"
        "opsuite restore --run 20261122 \\\n    --dry-run && opsuite health | head\n"
        "gcloud storage cp gs://b/f#1 gs://b/f\n```\n`opsuite` alone is a name.\n"
    )
    assert _quoted_opsuite_commands(sample) == [
        ["opsuite", "backups", "list"],
        ["opsuite", "restore", "--run", "20261122", "--dry-run"],
        ["opsuite", "health"],
        ["opsuite", "sla", "status", "--slo", "x"],
    ]


def test_every_quoted_opsuite_command_parses(capsys: pytest.CaptureFixture[str]) -> None:
    commands = _quoted_opsuite_commands(RUNBOOK.read_text())
    assert len(commands) >= 40, commands
    bad = []
    for command in commands:
        try:
            args = _parser().parse_args(command[1:])  # parse only: the handler is not called
        except SystemExit:
            bad.append((" ".join(command), capsys.readouterr().err.strip().splitlines()[-1:]))
            continue
        if not callable(getattr(args, "handler", None)):
            bad.append((" ".join(command), ["no command selected"]))
    assert not bad, bad
    # the first commands each alert section relies on are really there
    lines = {" ".join(c) for c in commands}
    for wanted in (
        "opsuite health",
        "opsuite sla status",
        "opsuite alerts active",
        "opsuite alerts log --since 6h",
        "opsuite backups list",
        "opsuite drill",
        "opsuite sla status --slo bigquery_recovery_time",
    ):
        assert wanted in lines, wanted
    for prefix in ("opsuite silence add ", "opsuite restore --run ", "opsuite verify "):
        assert any(x.startswith(prefix) for x in lines), prefix


def test_runbook_redeploys_with_an_explicit_config() -> None:
    text = RUNBOOK.read_text()
    assert "make package CONFIG=config/opsuite.yaml && terraform -chdir=terraform" in text
    assert "-var config_file=" in text
    assert "terraform -chdir=terraform import" in text
    assert "-replace=" in text and "_deleted-topic_" in text
    assert "make package\n" not in text and "make package &&" not in text


@needs_make
def test_package_refuses_a_config_terraform_would_refuse(tmp_path: Path) -> None:
    body = yaml.safe_load((ROOT / "config" / "opsuite.example.yaml").read_text())
    del body["gcp"]
    config = tmp_path / "opsuite.yaml"
    config.write_text(yaml.safe_dump(body))
    build = tmp_path / "build"
    result = _make("package", f"CONFIG={config}", f"BUILD={build}")
    assert result.returncode != 0
    assert f"make package: {config}: gcp: section required" in result.stderr
    assert not build.exists()
