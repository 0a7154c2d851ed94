"""The gallery in headless Chromium: what a person does on the page, end to end.

Debian's chromium and chromium-driver (installed by scripts/_browser.sh) through Selenium,
pointed at fixed paths so Selenium Manager never tries to download a browser.
"""

from __future__ import annotations

import io
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = pytest.mark.integration

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
