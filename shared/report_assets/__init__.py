"""The Vega-Lite runtime that `opsuite report` inlines into its self-contained HTML page.

The three minified scripts come byte for byte from the npm tarballs that VERSIONS names
(BSD-3-Clause, their LICENSE-* files beside them). Nothing is fetched at run time. The renderer
must pass specs as objects with inline data and call `vegaEmbed(el, spec, {actions: false})`,
because vega-embed's action menu links to the online Vega Editor. The Cloud Function builds
leave this directory out (`make package`): the functions never render reports.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib.resources import files


@dataclass(frozen=True)
class Asset:
    """One vendored script: its npm package, the file here and that file's sha256."""

    name: str
    version: str
    filename: str
    sha256: str
    license: str


#: In load order: vega-lite needs vega, and vega-embed needs both.
ASSETS: tuple[Asset, ...] = (
    Asset(
        name="vega",
        version="6.4.0",
        filename="vega-6.4.0.min.js",
        sha256="8f6a3587cf8d4f42c7e08120e3eb05d067e746d554e39d2dcf52acc0bd5ba28f",
        license="LICENSE-vega",
    ),
    Asset(
        name="vega-lite",
        version="6.5.0",
        filename="vega-lite-6.5.0.min.js",
        sha256="83e215e84e308ee8688fa6503ba0f1cf8a3c05c0d61df2841a0b92bf86809e00",
        license="LICENSE-vega-lite",
    ),
    Asset(
        name="vega-embed",
        version="7.3.0",
        filename="vega-embed-7.3.0.min.js",
        sha256="b1455caba2fb1a72fb46025ba0ba1316e2dbc7f0dd40a3f6040172bf9c08ba91",
        license="LICENSE-vega-embed",
    ),
)

# Only `</script` can end the element early. Escaping every `</` would break the scripts:
# both vega and vega-embed contain the regex literal `/</g`.
_SCRIPT_END = re.compile(r"</(script)", re.IGNORECASE)
# A source-map comment makes an open DevTools request a .map file that isn't there.
_SOURCE_MAP = re.compile(r"^//# sourceMappingURL=[^\n]*\n?", re.MULTILINE)


def script_body(source: str) -> str:
    """JavaScript `source` made safe as the body of an inline `<script>` element."""
    if "<!--" in source:
        # `<!--` followed by `<script` puts the HTML parser where `</script>` no longer closes
        raise ValueError("script contains '<!--': it can't be inlined safely as it is")
    # the HTML parser turns CR LF and CR into LF before the script runs (and before a
    # Content-Security-Policy hash is checked): the body is what the browser will see
    source = source.replace("\r\n", "\n").replace("\r", "\n")
    return _SCRIPT_END.sub(r"<\\/\1", _SOURCE_MAP.sub("", source))


@functools.cache
def vega_script_bodies() -> tuple[str, ...]:
    """The three scripts in load order, each the body of an inline `<script>` element."""
    package = files(__name__)
    return tuple(
        script_body(package.joinpath(a.filename).read_text(encoding="utf-8")) for a in ASSETS
    )


@functools.cache
def vega_scripts() -> str:
    """The three scripts in load order, each as one `<script>...</script>` element."""
    return "".join(f"<script>{body}</script>\n" for body in vega_script_bodies())
