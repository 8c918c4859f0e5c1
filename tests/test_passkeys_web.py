"""The Command Center's passkey flow through its API, with a software authenticator:
registration (password again; an existing passkey confirms a new one), then a batch,
a rejection and a breaker reset confirmed by the passkey, on the real factory and bus.
The Chromium test with a virtual authenticator is tests/test_passkeys_desk.py."""

from __future__ import annotations


from conftest import P, directive, publish_bar, wait_for
from test_factory import submit
from test_web_http import PASSWORD, web_desk
from webauthn_soft import SoftAuthenticator

from deskgate.people.accounts import Accounts
from deskgate.people.principals import Principals

ORIGIN = "http://localhost:8700"  # where the person's browser has the Command Center open (rp id "localhost")


def _tripped(cc):
    async def check():
        return (await cc.breaker()).state == "tripped"

    return check


async def _register(client, csrf: str, auth: SoftAuthenticator, label: str, confirm_with: SoftAuthenticator | None = None):
    h = {"X-CSRF-Token": csrf}
    begun = await client.post("/api/passkeys/register/begin", json={"password": PASSWORD, "label": label}, headers=h)
    assert begun.status_code == 200, begun.text
    body = begun.json()
    confirmation = confirm_with.get(body["confirm_options"], ORIGIN) if confirm_with and body["confirm_options"] else None
    return await client.post(
        "/api/passkeys/register/finish",
        json={"registration_id": body["registration_id"], "credential": auth.register(body["options"], ORIGIN), "confirmation": confirmation},
        headers=h,
    )


async def _decide(client, csrf: str, auth: SoftAuthenticator, prepare: dict, path: str, body: dict):
    h = {"X-CSRF-Token": csrf}
    prepared = await client.post("/api/decisions/prepare", json=prepare, headers=h)
    assert prepared.status_code == 200, prepared.text
    p = prepared.json()
    proof = {"prepared_id": p["prepared_id"], "credential": auth.get(p["options"], ORIGIN)}
    return await client.post(path, json={**body, "passkey": proof}, headers=h)


async def test_a_principal_with_a_passkey_decides_every_kind_of_decision_with_it(bus):
    async with web_desk(bus) as web:
        alice, csrf = await web.login("alice")
        h = {"X-CSRF-Token": csrf}
        first, second = SoftAuthenticator(), SoftAuthenticator()
        assert (await _register(alice, csrf, first, "laptop")).status_code == 200
        # A second passkey needs the first one's confirmation, not only a session and a password.
        refused = await _register(alice, csrf, second, "phone")
        assert refused.status_code == 400 and "must confirm the new one" in refused.json()["detail"]
        assert (await _register(alice, csrf, second, "phone", confirm_with=first)).status_code == 200
        assert [p.label for p in Principals(Accounts.open(bus.data_dir)).passkeys("alice")] == ["laptop", "phone"]

        await submit(web.agent, directive("pw1", notional_usd=1_000), directive("pw2", notional_usd=1_000), directive("pw3", notional_usd=1_000))
        # Without the passkey: refused (428), nothing sent.
        assert (await alice.post("/api/approvals/batch", json={"directive_ids": ["pw1", "pw2"], "confirm_count": 2}, headers=h)).status_code == 428
        # A batch: one touch covers both decisions.
        r = await _decide(alice, csrf, second, {"action": "batch", "directive_ids": ["pw1", "pw2"], "confirm_count": 2},
                          "/api/approvals/batch", {"directive_ids": ["pw1", "pw2"], "confirm_count": 2})
        assert r.status_code == 200, r.text
        assert {x["directive_id"]: x["state"] for x in r.json()["results"]} == {"pw1": "executed", "pw2": "executed"}
        # A proof made for one decision does not carry another.
        p = (await alice.post("/api/decisions/prepare", json={"action": "reject", "directive_id": "pw3", "reason": "no"}, headers=h)).json()
        proof = {"prepared_id": p["prepared_id"], "credential": first.get(p["options"], ORIGIN)}
        wrong = await alice.post("/api/approvals/pw3/approve", json={"passkey": proof}, headers=h)
        assert wrong.status_code == 403 and "another decision" in wrong.json()["detail"]
        # Bob's session cannot use alice's kept decision.
        bob, bob_csrf = await web.login("bob")
        stolen = await bob.post("/api/approvals/pw3/reject", json={"reason": "no", "passkey": proof}, headers={"X-CSRF-Token": bob_csrf})
        assert stolen.status_code in (400, 403)
        r = await _decide(alice, csrf, first, {"action": "reject", "directive_id": "pw3", "reason": "not today"},
                          "/api/approvals/pw3/reject", {"reason": "not today"})
        assert r.status_code == 200 and r.json()["state"] == "rejected"

        # A breaker reset: the password when prepared, the passkey when sent.
        # (bob, who has no passkey, approves the long that the crash then trips the breaker on)
        await submit(web.agent, directive("eth", asset="ETH", notional_usd=25_000))
        assert [o.outcome for o in await web.cc.decide("eth", "approve", P["bob"])] == ["ordered", "executed"]
        await publish_bar(web.md, "ETH", 3_500 * 0.2)
        await wait_for(_tripped(web.cc))
        bad = await alice.post("/api/decisions/prepare", json={"action": "reset", "password": "not it", "reason": "x"}, headers=h)
        assert bad.status_code == 403
        r = await _decide(alice, csrf, first, {"action": "reset", "password": PASSWORD, "reason": "marks checked"},
                          "/api/breaker/reset", {"reason": "marks checked"})
        assert r.status_code == 200 and r.json()["state"] == "armed", r.text
        done = [(a["action"], a["detail"].get("passkey")) for a in web.accounts.actions() if a["name"] == "alice"]
        assert ("approve_batch", True) in done and ("reject", True) in done and ("reset_breaker", True) in done
