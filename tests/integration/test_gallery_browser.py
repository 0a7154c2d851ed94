"""The gallery in headless Chromium: what a person does on the page, end to end.

Debian's chromium and chromium-driver (installed by scripts/_browser.sh) through Selenium,
pointed at fixed paths so Selenium Manager never tries to download a browser.
"""

from __future__ import annotations

import base64
import io
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from blurhash_rs import blurhash_decode
from PIL import Image, ImageDraw
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = [pytest.mark.integration, pytest.mark.browser]

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,900",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    for path in (CHROMIUM, CHROMEDRIVER):
        assert Path(path).exists(), f"{path} missing: apt-get install -y chromium chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    with tempfile.TemporaryDirectory(prefix="gallery-chromium-") as profile:
        for flag in (*FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        try:
            yield driver
        finally:
            driver.quit()


def wait_for(driver: WebDriver, condition: Any, timeout: float = 90) -> Any:
    """Waits for a truthy value; the page redraws its cards, so stale elements are retried."""
    ignored = (StaleElementReferenceException,)
    return WebDriverWait(driver, timeout, 0.25, ignored_exceptions=ignored).until(condition)


def card(driver: WebDriver, name: str) -> Any:
    found = driver.find_elements(By.CSS_SELECTOR, "article.card")
    return next((c for c in found if c.get_attribute("data-name") == name), None)


def thumbnail_shown(driver: WebDriver, name: str) -> bool:
    """A processed card whose thumbnail has loaded (served by the gallery, decoded here)."""
    item = card(driver, name)
    if item is None or item.get_attribute("data-status") != "processed":
        return False
    images = item.find_elements(By.CSS_SELECTOR, "img.thumb")
    return bool(images) and driver.execute_script(
        "return arguments[0].complete && arguments[0].naturalWidth > 0", images[0]
    )


def failure_reason(driver: WebDriver, name: str) -> str | None:
    item = card(driver, name)
    if item is None or item.get_attribute("data-status") != "failed":
        return None
    return item.find_element(By.CSS_SELECTOR, ".reason").text


def test_uploads_through_the_page_show_a_thumbnail_and_a_failure_reason(
    local_stack: Any, browser: WebDriver, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:6]
    picture = tmp_path / f"browser-{tag}.png"
    image = Image.new("RGB", (900, 600), (40, 110, 190))
    ImageDraw.Draw(image).ellipse((300, 150, 600, 450), fill=(250, 200, 60))
    image.save(picture)
    corrupt = tmp_path / f"browser-{tag}-corrupt.jpg"
    buffer = io.BytesIO()
    image.save(buffer, "JPEG")
    corrupt.write_bytes(buffer.getvalue()[:600])  # a JPEG cut short

    browser.get(local_stack.info()["gallery"])
    wait_for(  # the first poll answered
        browser, lambda d: "on" in d.find_element(By.ID, "live").get_attribute("class").split(), 15
    )
    chooser = browser.find_element(By.ID, "file")
    chooser.send_keys(str(picture))
    wait_for(browser, lambda d: thumbnail_shown(d, picture.name))

    chooser.send_keys(str(corrupt))
    reason = wait_for(browser, lambda d: failure_reason(d, corrupt.name))
    assert reason.split(":")[0] in {"truncated", "corrupt"}, reason


# A card whose thumbnail never arrives: what the page shows until it does.
UNLOADED_CARD = """
const item = arguments[0];
const shown = card({...item, thumbnails: item.thumbnails.map((t) => ({...t, url: "/never"}))});
const blur = shown.querySelector(".picture .blur");
return blur ? blur.style.backgroundImage : null;
"""


def test_the_placeholder_is_painted_before_the_thumbnail(
    local_stack: Any, browser: WebDriver, tmp_path: Path
) -> None:
    gallery = local_stack.info()["gallery"]
    picture = tmp_path / f"browser-{uuid.uuid4().hex[:6]}-placeholder.png"
    image = Image.new("RGB", (600, 900), (200, 40, 40))
    ImageDraw.Draw(image).rectangle((0, 450, 600, 900), fill=(30, 60, 200))
    image.save(picture)
    browser.get(gallery)
    browser.find_element(By.ID, "file").send_keys(str(picture))
    wait_for(browser, lambda d: thumbnail_shown(d, picture.name))
    state = requests.get(f"{gallery}/api/state", timeout=30).json()
    item = next(u for u in state["uploads"] if u["name"] == picture.name)
    placeholder = item["placeholder"]
    assert placeholder["height"] > placeholder["width"]

    background = browser.execute_script(UNLOADED_CARD, item)
    assert background and background.startswith('url("data:image/png;base64,'), background

    # What the page paints is the doc's BlurHash, at the image's aspect.
    painted = Image.open(io.BytesIO(base64.b64decode(background.split(",", 1)[1].rstrip('")'))))
    width, height = painted.size
    assert height > width
    reference = blurhash_decode(placeholder["blurhash"], width, height).convert("RGB").tobytes()
    assert painted.convert("RGB").tobytes() == reference


# The card's thumbnail as the page lays it out, and what the file itself is.
SHOWN = """
const img = arguments[0].querySelector("img.thumb");
const box = img.getBoundingClientRect();
return [img.naturalWidth, img.naturalHeight, box.width, box.height];
"""


def test_a_cover_thumbnail_is_shown_as_it_is(local_stack: Any, browser: WebDriver) -> None:
    gallery = local_stack.info()["gallery"]
    name = f"browser-{uuid.uuid4().hex[:6]}/avatars/wide.png"  # cdktf.json's avatars rule
    image = Image.new("RGB", (900, 300), (40, 110, 190))
    ImageDraw.Draw(image).ellipse((300, 0, 600, 300), fill=(250, 200, 60))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    answer = requests.post(
        f"{gallery}/upload",
        params={"name": name},
        data=buffer.getvalue(),
        timeout=30,
        headers={"Content-Type": "image/png"},
    )
    assert answer.status_code == 201, answer.text
    browser.get(gallery)
    wait_for(browser, lambda d: thumbnail_shown(d, name))
    natural_w, natural_h, shown_w, shown_h = browser.execute_script(SHOWN, card(browser, name))
    assert (natural_w, natural_h) == (256, 256)  # the cover square, not the 3:1 image
    assert shown_w == shown_h > 0  # laid out at its own aspect: neither stretched nor cropped
    sizes = card(browser, name).find_element(By.CSS_SELECTOR, ".sizes").text
    assert "256×256 cover" in sizes and "64×64 cover" in sizes, sizes
