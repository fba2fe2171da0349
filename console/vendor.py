"""``python -m console.vendor``: put htmx, from its npm package, beside the console's own static
files. Run by ``make`` at set-up, never at run time: the tarball's SHA-512 must match the pinned
integrity, and a file already in place is kept."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import sys
import tarfile
import urllib.request
from pathlib import Path

PACKAGE = "htmx.org"
VERSION = "2.0.8"
INTEGRITY = (
    "sha512-fm297iru0iWsNJlBrjvtN7V9zjaxd+69Oqjh4F/Vq9Wwi2kF"
    "isLcrLCiv5oBX0KLfOX/zG8AUo9ROMU5XUB44Q=="
)
REGISTRY = os.environ.get("REFUNDS_NPM_REGISTRY", "https://registry.npmjs.org").rstrip("/")
"""An npm registry mirror may stand in; the integrity check is the same."""
TARBALL = f"{REGISTRY}/{PACKAGE}/-/{PACKAGE}-{VERSION}.tgz"
MEMBER = "package/dist/htmx.min.js"
TARGET = Path(__file__).parent / "static" / "vendor" / "htmx.min.js"


def fetch(url: str = TARBALL) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:
        data: bytes = response.read()
    digest = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    if digest != INTEGRITY:
        raise SystemExit(f"{url}: integrity {digest} is not the pinned {INTEGRITY}")
    return data


def install(target: Path = TARGET) -> Path:
    if target.exists():
        return target
    with tarfile.open(fileobj=io.BytesIO(fetch()), mode="r:gz") as archive:
        member = archive.extractfile(MEMBER)
        if member is None:
            raise SystemExit(f"{MEMBER} is missing from {PACKAGE} {VERSION}")
        script = member.read()
    target.parent.mkdir(parents=True, exist_ok=True)
    draft = target.with_suffix(".part")
    draft.write_bytes(script)
    draft.replace(target)
    return target


if __name__ == "__main__":
    print(f"{PACKAGE} {VERSION} -> {install()}", file=sys.stderr)
