"""The playground page in headless Chromium: upload a photo, see the answer (for two dogs: the
photo with their boxes), press a button."""

import shutil
from pathlib import Path

import pytest

from model.evaluation.several_dogs import LAYOUTS, composite
from tests.conftest import BotEnv
from tests.test_bot_e2e import GOLDEN_RETRIEVER, SAMOYED

playwright = pytest.importorskip("playwright.async_api", reason="playwright is not installed")
# The page is tested, not the database: SQLite only.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Flags the sandboxed, offline machines need: no setuid sandbox as root, no background calls.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test "
                                             "installs it where it can)")
async def test_upload_a_photo_and_correct_the_answer(bot_env: BotEnv,
                                                     shared_datasets: Path) -> None:
    async with playwright.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page()
        await page.goto(bot_env.fake.url)
        await page.set_input_files("#photo-input",
                                   shared_datasets / "imagenet-dogs-121" / "n02110958-pug.jpg")
        answer = page.locator(".message.bot", has_text="Looks most like a pug")
        await answer.wait_for(timeout=30_000)
        await answer.locator(".keyboard button", has_text="Right").click()
        await page.locator(".message.bot", has_text="Noted that it's a pug").wait_for()
        await browser.close()
    assert bot_env.rows("select label, kind from corrections") == [("n02110958", "confirmed")]


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test "
                                             "installs it where it can)")
async def test_two_dogs_come_back_boxed_with_a_row_of_buttons_each(
        bot_env: BotEnv, read_photo, tmp_path: Path) -> None:
    two_dogs = tmp_path / "two-dogs.jpg"
    two_dogs.write_bytes(composite(read_photo(GOLDEN_RETRIEVER), read_photo(SAMOYED),
                                   LAYOUTS[0]))
    async with playwright.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page()
        await page.goto(bot_env.fake.url)
        await page.set_input_files("#photo-input", two_dogs)
        answer = page.locator(".message.bot", has_text="I see 2 dogs")
        await answer.wait_for(timeout=30_000)
        boxed = answer.locator("img.photo")
        await page.wait_for_function("img => img.complete && img.naturalWidth > 0",
                                     arg=await boxed.element_handle())
        assert "① (left) looks most like a golden retriever" in await answer.inner_text()
        await answer.locator(".keyboard button", has_text="① 👍 Right").click()
        await page.locator(".message.bot", has_text="Noted that ① is a golden retriever"
                           ).wait_for()
        await browser.close()
    assert bot_env.rows("select dog, label, kind from corrections") == [
        (1, "n02099601", "confirmed")]
