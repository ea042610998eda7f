"""Check that a report renders in headless Chromium (every image loads) and screenshot it."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from habc.errors import HabcError

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync",
                  "--allow-file-access-from-files", "--virtual-time-budget=10000"]


def find_chromium() -> str | None:
    """Path of a Chromium binary, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _run_chromium(index: Path, flags: list[str], timeout: float) -> str:
    """Open ``index`` in headless Chromium with extra ``flags``; return its stdout."""
    chromium = find_chromium()
    if chromium is None:
        raise HabcError("headless Chromium not found (Debian package `chromium`)")
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *flags,
             Path(index).resolve().as_uri()], capture_output=True, text=True,
            timeout=timeout).stdout


def check_in_chromium(index: Path, timeout: float = 120.0) -> tuple[int, int]:
    """Load ``index`` in headless Chromium; return (images loaded, images broken).

    Raises:
        HabcError: when Chromium is missing or the page does not finish loading.
    """
    dom = _run_chromium(index, ["--dump-dom"], timeout)
    loaded = re.search(r'data-images-loaded="(\d+)"', dom)
    broken = re.search(r'data-images-broken="(\d+)"', dom)
    if loaded is None or broken is None:
        raise HabcError(f"{index} did not finish loading in Chromium")
    return int(loaded.group(1)), int(broken.group(1))


def screenshot_in_chromium(index: Path, png: Path, *, width: int = 1280, height: int = 2400,
                           timeout: float = 120.0) -> Path:
    """Render ``index`` in headless Chromium into ``png`` (the top ``height`` pixels).

    Raises:
        HabcError: when Chromium is missing or writes no screenshot.
    """
    png = Path(png).resolve()
    png.unlink(missing_ok=True)
    _run_chromium(index, ["--hide-scrollbars", f"--window-size={width},{height}",
                          f"--screenshot={png}"], timeout)
    if not png.exists():
        raise HabcError(f"Chromium wrote no screenshot of {index}")
    return png
