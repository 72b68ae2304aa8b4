"""Screenshot a heatmap page in headless Chromium (for docs/img/heatmap.png).

    python scripts/screenshot_page.py data/heatmaps/BTCUSDT/latest.html docs/img/heatmap.png \
        [--range 7d] [--width 1400 --height 800]

The PNG is reduced to a 256-colour palette so it stays small enough for the README.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path, help="a heatmap page (HTML file)")
    parser.add_argument("output", type=Path, help="PNG to write")
    parser.add_argument("--range", default="3d", choices=["12h", "24h", "3d", "7d", "30d"])
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=800)
    arguments = parser.parse_args()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": arguments.width, "height": arguments.height})
        page.goto(arguments.page.resolve().as_uri())
        page.wait_for_selector('#liqheat-plot[data-ready="1"]', timeout=60_000)
        page.click(f'button[data-range="{arguments.range}"]')
        page.wait_for_function(
            f"document.getElementById('liqheat-plot').dataset.range === '{arguments.range}'"
        )
        page.wait_for_timeout(300)
        png = page.screenshot()
        browser.close()
    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256, dither=Image.NONE)
    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    image.save(arguments.output, optimize=True)
    print(f"{arguments.output}: {arguments.output.stat().st_size / 1e3:.0f} kB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
