"""Passkeys on the real desk: `deskgate up`, headless Chromium with a CDP virtual authenticator.

A principal registers a passkey in the Command Center; from then on the factory counts
their decisions only with its assertion over the exact signed decision. A replayed or
altered assertion is refused by the factory itself, whoever sends it.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid

import pytest
from browser_passkeys import add_virtual_authenticator
from conftest import directive
from playwright.async_api import expect
from test_people import _outcome
from test_web_browser import (  # noqa: F401  (fixtures)
    DESKGATE,
    PASSWORD,
    browser,
    desk,
    prices,
    stage,
)

from deskgate.approvals.client import CommandCenter
from deskgate.audit.signing import Kind, digest
from deskgate.domain.approval import ApprovalResponse
from deskgate.domain.base import utcnow
from deskgate.people.accounts import Accounts
from deskgate.people.passkeys import (
    PASSKEY_HEADER,
    assertion_from_browser,
    decision_digest,
    encode_assertion,
    request_options,
)
from deskgate.people.principals import Principals

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def _localhost(url: str) -> str:
    """WebAuthn refuses an IP address as the site: the same Command Center, by name."""
    return url.replace("127.0.0.1", "localhost")


async def test_a_principal_registers_a_passkey_and_then_decides_only_with_it(desk, browser):  # noqa: F811
    await prices(desk, BTC=65_000.0, ETH=3_500.0)
    await stage(desk, directive("pk-page", notional_usd=3_000), directive("pk-raw", asset="ETH", notional_usd=2_000))
    url = _localhost(desk.url)
    context = await browser.new_context(viewport={"width": 1280, "height": 1000})
    page = await context.new_page()
    authenticator = await add_virtual_authenticator(context, page)
    await page.goto(url + "/login")
    await page.get_by_label("Name").fill("alice")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.locator("#who")).to_have_text("alice")

    # Register: the password again, a name, and the authenticator's answer.
    await page.get_by_role("link", name="Passkeys").click()
    await expect(page.locator("#no-passkeys")).to_be_visible()
    await page.get_by_label("Your password, again").fill(PASSWORD)
    await page.get_by_label("Name").fill("test authenticator")
    await page.get_by_role("button", name="Register a passkey").click()
    await expect(page.locator("#passkey-status")).to_contain_text("Passkey registered")
    await expect(page.locator("#passkeys")).to_contain_text("test authenticator")
    assert len(await authenticator.credentials()) == 1
    principals = Principals(Accounts.open(desk.data_dir), legacy_dir=desk.data_dir.keys)
    registered = principals.passkeys("alice")
    assert [p.label for p in registered] == ["test authenticator"]

    # From now on a decision without the passkey is refused: by the API, by the CLI...
    status = await page.evaluate(
        """async () => (await fetch('/api/approvals/pk-page/approve', {method: 'POST',
             headers: {'Content-Type': 'application/json', 'X-CSRF-Token': document.body.dataset.csrf}, body: '{}'})).status"""
    )
    assert status == 428
    cli = await asyncio.to_thread(
        subprocess.run, [*DESKGATE, "approvals", "approve", "pk-page", "--principal", "alice", "--password-stdin", "--data-dir", str(desk.data_dir.root)],
        input=PASSWORD + "\n", capture_output=True, text=True, timeout=60,
    )
    assert cli.returncode == 2 and "passkey" in cli.stderr
    # ...and by the factory, for a decision signed with alice's own key but without the passkey's answer.
    signer = principals.signer("alice", PASSWORD)
    async with await CommandCenter.connect(desk.data_dir) as cc:
        item = await cc.item("pk-raw")
        shown = digest(item.staged.signed_directive.data)

        def decision() -> ApprovalResponse:
            return ApprovalResponse(approval_id=f"ap-{uuid.uuid4().hex}", directive_id="pk-raw", decision="approve", principal="alice",
                                    decided_at=utcnow(), directive_digest=shown)

        bare = decision()
        out = await _outcome(cc, bare, signer.headers(Kind.APPROVAL, bare.to_bytes()))
        assert out.outcome == "refused" and "decides with a passkey" in out.reason

        # The passkey's answer for one decision, presented with another: refused.
        asked = decision()
        asked_digest = decision_digest(Kind.APPROVAL, asked.to_bytes())
        options = request_options(rp_id="localhost", digests=[asked_digest], credentials=registered)
        answer = await page.evaluate("o => window.deskgatePasskey.assert(o)", options)
        header = encode_assertion(assertion_from_browser(answer, [asked_digest]))
        other = decision()
        out = await _outcome(cc, other, {**signer.headers(Kind.APPROVAL, other.to_bytes()), PASSKEY_HEADER: header})
        assert out.outcome == "refused" and "does not cover this decision" in out.reason
        # Altered in transit (one byte of the authenticator's signature): refused.
        altered = assertion_from_browser(answer, [asked_digest])
        sig = bytearray(altered.signature.encode())
        sig[10] = ord("A") if sig[10] != ord("A") else ord("B")
        bad = encode_assertion(altered.model_copy(update={"signature": sig.decode()}))
        out = await _outcome(cc, asked, {**signer.headers(Kind.APPROVAL, asked.to_bytes()), PASSKEY_HEADER: bad})
        assert out.outcome == "refused" and "passkey" in out.reason
        assert (await cc.item("pk-raw")).state == "staged"

    # In the page, Approve asks the passkey and the directive executes.
    await page.goto(url + "/approvals")
    card = page.locator("#d-pk-page")
    await expect(card).to_be_visible()
    await card.get_by_role("button", name="Approve").click()
    await expect(page.locator("#state")).to_have_text("executed", timeout=15_000)
    await expect(page.locator("#outcomes")).to_contain_text("alice")
    actions = [a for a in Accounts.open(desk.data_dir).actions() if a["name"] == "alice" and a["target"] == "pk-page"]
    assert actions and actions[0]["detail"].get("passkey") is True
    await context.close()
