"""The vendored Vega-Lite runtime for `opsuite report` (shared/report_assets).

- Every script ASSETS lists is there with the pinned sha256. VERSIONS says the same, and each
  package's license ships beside its script.
- vega_scripts() gives three inline <script> elements in load order (vega, vega-lite,
  vega-embed). No body can end its element early. Where node is installed, the three bodies
  load together and render a chart to SVG.
- The scripts name only the URLs known here. None of them is fetched when the renderer passes
  inline data and `actions: false`.
- `make package` leaves shared/report_assets out of every Cloud Function, and keeps the rest
  of shared/.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from importlib.resources import files
from pathlib import Path

import pytest

from shared.report_assets import ASSETS, script_body, vega_scripts
from tests.terraform.test_packaging import EXAMPLE_CONFIG, FUNCTIONS, ROOT, _make, needs_make

ASSET_DIR = ROOT / "shared" / "report_assets"
SCRIPT = re.compile(r"<script>(.*?)</script>\n", re.DOTALL)

#: Every URL in each script. None is fetched: the w3.org ones are XML namespaces, the github
#: ones sit in comments or messages, vega-lite writes the schema URL into the Vega spec it
#: compiles, and vega-embed opens its editor URL only from the action menu (`actions: false`).
KNOWN_URLS = {
    "vega": {
        "http://www.w3.org/1999/xlink",
        "http://www.w3.org/2000/svg",
        "http://www.w3.org/2000/xmlns/",
    },
    "vega-lite": {
        "https://github.com/vega/vega-lite/issues/2415",
        "https://vega.github.io/schema/vega/v6.json",
    },
    "vega-embed": {
        "https://github.com/Starcounter-Jack/JSON-Patch",
        "https://vega.github.io/editor/",
    },
}


def _bodies() -> list[str]:
    html = vega_scripts()
    bodies = SCRIPT.findall(html)
    assert "".join(f"<script>{b}</script>\n" for b in bodies) == html, "only script elements"
    return bodies


def _source(filename: str) -> str:
    return (ASSET_DIR / filename).read_text(encoding="utf-8")


def test_every_asset_is_there_with_its_pinned_sha256() -> None:
    assert [a.name for a in ASSETS] == ["vega", "vega-lite", "vega-embed"]
    for asset in ASSETS:
        assert asset.filename == f"{asset.name}-{asset.version}.min.js"
        path = ASSET_DIR / asset.filename
        assert path.is_file(), path
        assert hashlib.sha256(path.read_bytes()).hexdigest() == asset.sha256, asset.filename
        # the package resource is that same file (what vega_scripts reads)
        resource = files("shared.report_assets").joinpath(asset.filename)
        assert resource.read_bytes() == path.read_bytes()


def test_each_script_is_the_version_it_claims() -> None:
    # each UMD build registers its global and carries its own version string
    marks = {
        "vega": (".vega={}", 'version="6.4.0"'),
        "vega-lite": (".vegaLite={}", 'var n="6.5.0"'),
        "vega-embed": (".vegaEmbed=", 'const hn="7.3.0"'),
    }
    for asset in ASSETS:
        text = _source(asset.filename)
        glob, version = marks[asset.name]
        assert glob in text[:400], asset.name
        assert asset.version in version
        assert version in text, (asset.name, version)


def test_versions_file_agrees_with_the_files_and_assets() -> None:
    rows = [
        line.split("\t")
        for line in (ASSET_DIR / "VERSIONS").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert all(len(r) == 8 for r in rows), rows
    listed = {r[3]: r for r in rows}
    assert len(listed) == len(rows) == 2 * len(ASSETS)
    for name, version, license_, filename, size, sha256, shasum, integrity in rows:
        data = (ASSET_DIR / filename).read_bytes()
        assert int(size) == len(data), filename
        assert hashlib.sha256(data).hexdigest() == sha256, filename
        assert license_ == "BSD-3-Clause"
        assert re.fullmatch(r"[0-9a-f]{40}", shasum), shasum
        assert re.fullmatch(r"sha512-[A-Za-z0-9+/]{86}==", integrity), integrity
        assert any((a.name, a.version) == (name, version) for a in ASSETS), (name, version)
    for asset in ASSETS:
        script, license_row = listed[asset.filename], listed[asset.license]
        assert script[:3] == [asset.name, asset.version, "BSD-3-Clause"]
        assert script[5] == asset.sha256
        assert license_row[:3] == script[:3] and license_row[6:] == script[6:]
    # nothing else is vendored here
    shipped = {p.name for p in ASSET_DIR.iterdir() if p.name != "__pycache__"}
    assert shipped == {*listed, "VERSIONS", "__init__.py"}


def test_each_package_license_ships_beside_its_script() -> None:
    for asset in ASSETS:
        assert asset.license == f"LICENSE-{asset.name}"
        text = (ASSET_DIR / asset.license).read_text()
        assert "University of Washington Interactive Data Lab" in text, asset.license
        assert "Redistribution and use in source and binary forms" in text
        assert "Neither the name of the copyright holder nor the names of its" in text  # 3-clause


def test_vega_scripts_are_three_script_elements_in_load_order() -> None:
    bodies = _bodies()
    assert len(bodies) == 3
    for asset, body in zip(ASSETS, bodies, strict=True):
        source = _source(asset.filename)
        assert body == script_body(source)
        # the only change: the trailing source-map comment, which names a .map not shipped
        assert body == re.sub(r"^//# sourceMappingURL=[^\n]*\n?", "", source, flags=re.M)
        assert "sourceMappingURL" not in body
    assert ".vega={}" in bodies[0][:400]
    assert ".vegaLite={}" in bodies[1][:400] and "e.vega)" in bodies[1][:400]  # needs vega
    assert ".vegaEmbed=" in bodies[2][:400] and "e.vega,e.vegaLite" in bodies[2][:400]
    assert vega_scripts() is vega_scripts()  # read once


def test_no_script_body_can_end_its_element_early() -> None:
    for body in _bodies():
        assert not re.search(r"</script", body, re.IGNORECASE)
        # `<!--` then `<script` would stop `</script>` from closing the element
        assert "<!--" not in body
        assert not re.search(r"<script", body, re.IGNORECASE)


def test_script_body_escapes_only_what_would_close_the_element() -> None:
    source = 'a="</script>";b=`</SCRIPT >`;c=/</g;d="</div>"\n//# sourceMappingURL=x.min.js.map\n'
    assert script_body(source) == 'a="<\\/script>";b=`<\\/SCRIPT >`;c=/</g;d="</div>"\n'
    # escaping every `</` would break the scripts: `/</g` is a regex literal in vega and
    # vega-embed, and `/<\/g` never ends
    assert "/</g" in _source("vega-6.4.0.min.js")
    assert "/</g" in _source("vega-embed-7.3.0.min.js")
    with pytest.raises(ValueError, match="<!--"):
        script_body("x = 1; <!-- y\n")


def test_the_scripts_name_only_known_urls() -> None:
    for asset, body in zip(ASSETS, _bodies(), strict=True):
        urls = set(re.findall(r"(?:https?:)?//[A-Za-z0-9-]+\.[A-Za-z0-9.-]+[^\s\"'`)\\]*", body))
        assert urls == KNOWN_URLS[asset.name], asset.name
        for word in ("XMLHttpRequest", "new Worker", "importScripts", "WebSocket", "sendBeacon"):
            assert word not in body, (asset.name, word)
    # vega's loader fetches only data given by URL: the report passes its data inline
    assert [b.count("fetch(") for b in _bodies()] == [1, 0, 0]


RENDER = """
const vm = require("vm"), fs = require("fs");
vm.runInThisContext(fs.readFileSync(process.argv[2], "utf8"), {filename: "vega_scripts.js"});
const spec = {data: {values: [{day: "2026-11-03", n: 7}]}, mark: "bar",
  encoding: {x: {field: "day", type: "ordinal"}, y: {field: "n", type: "quantitative"}}};
const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), {renderer: "none"});
view.toSVG().then(svg => console.log(JSON.stringify({
  versions: [vega.version, vegaLite.version, vegaEmbed.version], embed: typeof vegaEmbed,
  bar: svg.includes('aria-roledescription="bar"'), n: svg.includes("n: 7")})));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node not installed")
def test_the_inlined_scripts_load_in_order_and_render(tmp_path: Path) -> None:
    script = tmp_path / "vega_scripts.js"
    script.write_text("\n;\n".join(_bodies()), encoding="utf-8")
    # a file, not `node -e`: there `module` and `exports` are globals, so the UMD builds
    # would take their CommonJS branch instead of the browser's globals
    runner = tmp_path / "render.js"
    runner.write_text(RENDER)
    result = subprocess.run(
        ["node", str(runner), str(script)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout)
    assert out == {
        "versions": [a.version for a in ASSETS],
        "embed": "function",
        "bar": True,
        "n": True,
    }


def _tree(root: Path) -> set[str]:
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }


@needs_make
def test_package_leaves_the_report_assets_out_of_every_function(tmp_path: Path) -> None:
    build = tmp_path / "build"
    result = _make("package", f"CONFIG={EXAMPLE_CONFIG}", f"BUILD={build}")
    assert result.returncode == 0, result.stderr
    wanted = {p for p in _tree(ROOT / "shared") if not p.startswith("report_assets/")}
    assert "report_assets/__init__.py" in _tree(ROOT / "shared")
    for fn in FUNCTIONS:
        shared = build / fn / "shared"
        assert (shared / "__init__.py").is_file(), fn
        assert (shared / "cli" / "__init__.py").is_file(), fn
        assert not (shared / "report_assets").exists(), fn
        assert not list((build / fn).rglob("*.min.js")), fn
        assert _tree(shared) == wanted, fn
