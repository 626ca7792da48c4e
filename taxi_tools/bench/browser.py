"""Headless Chromium as a person's browser on this machine, for the UI bench and the
deployment tests: Debian's build (deploy/ci/install-chromium.sh), driven by playwright."""

from __future__ import annotations

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
# No sandbox as root, and nothing phoning home.
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip


def launch_chromium(playwright, profile: Path, height: int = 1000):
    """A headless Chromium context on the profile folder (a fresh one: a first visit), 1600
    pixels wide; the caller closes it. `playwright` is sync_playwright()'s."""
    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} is missing: run deploy/ci/install-chromium.sh as root")
    return playwright.chromium.launch_persistent_context(
        str(profile),
        executable_path=str(CHROMIUM),
        headless=True,
        args=CHROMIUM_FLAGS,
        viewport={"width": 1600, "height": height},
    )
