"""The sandbox page in a real browser: the whole reply loop, clicked through as people would.

ann claims a demo complaint, drafts a reply from a template, lea approves it as the lead,
the reply appears under the post on the demo network, ann closes the case and
`/mentions status` counts it. Every click goes page → emulator → signed request → bot.
"""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import SCREENSHOTS, Sandbox

ANN, LEA = "U0AGENT1", "U0LEAD1"
WAIT_MS = 20_000


async def test_reply_loop_in_the_page(sandbox: Sandbox, browser: Any) -> None:
    from playwright.async_api import expect

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = await browser.new_page(viewport={"width": 1440, "height": 900})
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    await page.goto(sandbox.url)
    await expect(page.get_by_test_id("user-switcher")).to_have_value(ANN)

    # The demo source replays its mentions; one becomes a card in #mentions.
    card = page.get_by_test_id("message").filter(has_text="charged twice")
    await expect(card).to_be_visible(timeout=WAIT_MS)
    await expect(page.get_by_test_id("network-mastodon")).to_contain_text("charged twice")

    await card.get_by_role("button", name="Claim", exact=True).click()
    await expect(card).to_contain_text("Claimed by @ann", timeout=WAIT_MS)

    await card.get_by_role("button", name="Draft reply").click()
    modal = page.get_by_test_id("modal")
    await expect(modal).to_be_visible(timeout=WAIT_MS)
    await modal.get_by_label("Template").select_option(
        label="Ask for a direct message about a refund")
    days = modal.get_by_label("Refund window in days")
    await expect(days).to_be_visible(timeout=WAIT_MS)
    await days.fill("30")
    await page.screenshot(path=str(SCREENSHOTS / "sandbox-draft.png"))
    await modal.get_by_test_id("modal-submit").click()
    await expect(modal).to_be_hidden(timeout=WAIT_MS)
    await expect(card).to_contain_text("waiting for a lead", timeout=WAIT_MS)

    # lea, the lead, approves in #approvals.
    await page.get_by_test_id("user-switcher").select_option(LEA)
    await page.get_by_test_id("nav-approvals").click()
    request = page.get_by_test_id("message").filter(has_text="within 30 days")
    await expect(request).to_be_visible(timeout=WAIT_MS)
    await request.get_by_role("button", name="Approve", exact=True).click()
    await expect(request).to_contain_text("Approved by @lea", timeout=WAIT_MS)

    # The demo network shows the published reply under the original post.
    reply = page.get_by_test_id("network-mastodon").get_by_test_id("demo-reply")
    await expect(reply).to_contain_text("Refunds are possible within 30 days",
                                        timeout=WAIT_MS)
    await page.get_by_test_id("nav-mentions").click()
    await expect(card).to_contain_text("Our reply", timeout=WAIT_MS)
    await card.scroll_into_view_if_needed()
    await reply.scroll_into_view_if_needed()
    await page.screenshot(path=str(SCREENSHOTS / "sandbox-approved.png"))

    # Back to ann, who closes the case with an outcome.
    await page.get_by_test_id("user-switcher").select_option(ANN)
    await card.get_by_role("button", name="Close", exact=True).click()
    await expect(modal).to_be_visible(timeout=WAIT_MS)
    await modal.get_by_label("Outcome").select_option("answered")
    await modal.get_by_label("Note").fill("Refund sorted by DM")
    await modal.get_by_test_id("modal-submit").click()
    await expect(modal).to_be_hidden(timeout=WAIT_MS)
    await expect(card).to_contain_text("Answered", timeout=WAIT_MS)

    # `/mentions status` answers ephemerally: the case has left the open states; `find`
    # shows it closed.
    await page.get_by_test_id("command-input").fill("/mentions status")
    await page.get_by_test_id("command-send").click()
    status = page.get_by_test_id("ephemeral").last
    await expect(status).to_contain_text("Only visible to you", timeout=WAIT_MS)
    await expect(status).to_contain_text("claimed 0")
    await expect(status).to_contain_text("awaiting approval 0")
    await page.get_by_test_id("command-input").fill("/mentions find @pieter")
    await page.get_by_test_id("command-send").click()
    found = page.get_by_test_id("ephemeral").filter(has_text="pieter@social.example")
    await expect(found).to_contain_text("closed", timeout=WAIT_MS)
    await page.screenshot(path=str(SCREENSHOTS / "sandbox-status.png"))

    await expect(page.get_by_test_id("problems")).to_be_hidden()
    assert page_errors == []
