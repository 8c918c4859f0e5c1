"""The Command Center: server-rendered pages and a JSON API over the same actions.

Authentication is a server-side session in an HttpOnly, SameSite=Strict cookie;
every state-changing request carries the session's CSRF token (a form field, or
the X-CSRF-Token header for the API). Only /login, /static, /healthz and the API's
login are open. The application talks to the desk only through a CommandCenter,
i.e. over NATS with the command_center role.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections import Counter
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from deskgate.approvals.client import CommandCenter
from deskgate.audit.signing import Signer
from deskgate.config import Mission
from deskgate.domain.base import utcnow
from deskgate.domain.breaker import BreakerState
from deskgate.domain.funnel import Funnel
from deskgate.domain.governor import GovernorClear, GovernorHold, GovernorState
from deskgate.domain.news import QuarantinedItem, QuarantineRelease, text_digest
from deskgate.domain.portfolio import PortfolioSnapshot
from deskgate.domain.venue import VenueAck, VenueStatus
from deskgate.paths import DataDir
from deskgate.people.accounts import (
    Accounts,
    Role,
    Session,
    csrf_matches,
    normalise_name,
)
from deskgate.people.principals import PrincipalError, Principals
from deskgate.web import metrics
from deskgate.agents.published import AgentsStatus
from deskgate.agents.schedule import next_due
from deskgate.scorecard import Scorecard
from deskgate.scorecard_feed import gather as gather_scorecard
from deskgate.web.charts import DRAWDOWN, EQUITY, LEVERAGE, PNL, line_chart, reliability_chart
from deskgate.web.desk import (
    AckRequest,
    ActionError,
    ApproveRequest,
    BatchApproveRequest,
    BatchResult,
    ClearRequest,
    ReleaseRequest,
    VenueAckRequest,
    DecisionResult,
    Desk,
    LoginRequest,
    PasskeyProof,
    PrepareAnswer,
    PrepareRequest,
    QueueEntry,
    RejectRequest,
    ResetRequest,
    ReviewEntry,
    session_lifetimes,
)
from deskgate.web.filters import FILTERS
from deskgate.web.passkey_registration import PasskeyBeginRequest, PasskeyFinishRequest, PasskeyRegistration
from deskgate.web.periods import PERIODS, PeriodError, chart_window, period_funnel, resolve_period
from deskgate.web.proofs import Proofs
from deskgate.web.queue_table import QueueQueryError, parse_query, queue_rows, sort_links

log = logging.getLogger("deskgate.web")

HERE = Path(__file__).parent
SESSION_COOKIE = "deskgate_session"
LOGIN_COOKIE = "deskgate_login"  # double-submit token for the login form itself
CSRF_HEADER = "x-csrf-token"


class Problem(Exception):
    """An HTTP error with a message for a person (HTML) or a script (JSON)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


class LoginRequired(Exception):
    pass


@dataclass
class WebContext:
    mission: Mission
    data_dir: DataDir
    accounts: Accounts
    principals: Principals
    proofs: Proofs
    desk: Desk | None = None
    # Set when the server stops: live event streams end at once instead of holding up
    # uvicorn's graceful shutdown until it cancels them (an ERROR and a traceback).
    closing: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def passkey_registration(self) -> PasskeyRegistration:
        return PasskeyRegistration(self.mission, self.accounts, self.principals, self.proofs)

    @property
    def cc(self) -> CommandCenter:
        assert self.desk is not None
        return self.desk.cc


def create_app(mission: Mission, data_dir: DataDir, *, accounts: Accounts | None = None, cc: CommandCenter | None = None) -> FastAPI:
    accounts = accounts or Accounts.open(data_dir)
    principals = Principals(accounts, legacy_dir=data_dir.keys)
    principals.migrate_unsealed_keys()
    ctx = WebContext(mission, data_dir, accounts, principals, Proofs())
    owns_cc = cc is None

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        command_center = cc or await CommandCenter.connect(data_dir, reconnect=True)  # lives as long as the service
        ctx.desk = Desk(mission, command_center, ctx.accounts, ctx.principals, proofs=ctx.proofs)
        try:
            yield
        finally:
            if owns_cc:
                await command_center.close()

    app = FastAPI(
        title="deskgate Command Center",
        description="The human approval gate of a deskgate desk. Log in with POST /api/login, then send the "
        "returned csrf_token as X-CSRF-Token on every state-changing request.",
        version="1",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served below, behind a session
    )
    if not owns_cc:
        ctx.desk = Desk(mission, cc, ctx.accounts, ctx.principals, proofs=ctx.proofs)  # type: ignore[arg-type]
    app.state.ctx = ctx
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters.update(FILTERS)
    idle, max_age = session_lifetimes(mission)
    w = mission.web
    checking: Counter[str] = Counter()  # login attempts whose password is being checked, by throttle key

    # -- plumbing ---------------------------------------------------------------------------

    def is_api(request: Request) -> bool:
        return request.url.path.startswith("/api/")

    @app.middleware("http")
    async def access_log(request: Request, call_next):
        t0 = time.perf_counter()
        response = await call_next(request)
        session = getattr(request.state, "session", None)
        log.info(
            "%s %s %d",
            request.method,
            request.url.path,
            response.status_code,
            extra={
                "fields": {
                    "method": request.method,
                    "path": request.url.path,
                    "status": response.status_code,
                    "user": session.account.name if session else None,
                    "client": _client(request),
                    "ms": round((time.perf_counter() - t0) * 1000, 2),
                }
            },
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault(
            "Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'"
        )
        return response

    @app.exception_handler(Problem)
    async def on_problem(request: Request, exc: Problem):
        return error_response(request, exc.status, exc.message, exc.headers)

    @app.exception_handler(ActionError)
    async def on_action_error(request: Request, exc: ActionError):
        return error_response(request, exc.status, exc.message)

    @app.exception_handler(LoginRequired)
    async def on_login_required(request: Request, exc: LoginRequired):
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)

    def error_response(request: Request, status: int, message: str, headers: dict | None = None) -> Response:
        if is_api(request) or request.url.path in ("/events", "/metrics"):
            return JSONResponse({"detail": message}, status_code=status, headers=headers)
        session = getattr(request.state, "session", None)
        return page(request, "error.html", session, status, message=message, status=status, headers=headers)

    def current(request: Request) -> Session | None:
        session = ctx.accounts.session(request.cookies.get(SESSION_COOKIE), idle=idle, max_age=max_age)
        request.state.session = session
        return session

    async def page_session(request: Request) -> Session:
        """A page: without a session, go and log in."""
        session = current(request)
        if session is None:
            raise LoginRequired()
        return session

    async def read_session(request: Request) -> Session:
        """An API read or the event stream: without a session, 401."""
        session = current(request)
        if session is None:
            raise Problem(401, "not logged in (or the session expired): log in first")
        return session

    async def write_session(request: Request) -> Session:
        """Anything that changes state: a session, then its CSRF token."""
        session = current(request)
        if session is None:
            raise Problem(401, "not logged in (or the session expired): log in first")
        given = request.headers.get(CSRF_HEADER)
        if given is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            given = (await request.form()).get("csrf_token")  # type: ignore[assignment]
        if not csrf_matches(session.csrf, given if isinstance(given, str) else None):
            raise Problem(403, "missing or wrong CSRF token; reload the page and try again")
        return session

    def need_principal(session: Session) -> None:
        if not session.account.can_decide:
            raise Problem(403, f"{session.account.name} is a {session.account.role.value}: viewers see everything and change nothing")

    def session_signer(request: Request, session: Session) -> Signer:
        """The deciding principal's key, opened with their own session cookie, for this
        request only: without the cookie the Command Center cannot sign for anyone."""
        need_principal(session)
        try:
            signer = ctx.principals.session_signer(request.cookies.get(SESSION_COOKIE))
        except PrincipalError as exc:
            raise Problem(403, str(exc)) from None
        if signer.principal != session.account.name:
            raise Problem(403, "this session cannot sign for another person")
        return signer

    def page(
        request: Request, name: str, session: Session | None, status_code: int = 200, headers: dict | None = None, **values: Any
    ) -> HTMLResponse:
        has_passkey = bool(session and session.account.can_decide and ctx.principals.passkeys(session.account.name))
        return templates.TemplateResponse(
            request,
            name,
            {"session": session, "desk_name": mission.desk_name, "now": utcnow(), "mission": mission, "has_passkey": has_passkey, **values},
            status_code=status_code,
            headers=headers,
        )

    async def form(request: Request) -> dict[str, Any]:
        f = await request.form()
        # directive_id repeats in the batch form (one per ticked box); every other field is single.
        return {k: f.getlist(k) if k == "directive_id" else f.get(k) for k in f.keys()}

    def form_proof(f: dict[str, Any]) -> PasskeyProof | None:
        """The passkey's answer the page's script added to a form (static/passkey.js), if any."""
        if not f.get("prepared_id"):
            return None
        try:
            return PasskeyProof(prepared_id=str(f.get("prepared_id")), credential=json.loads(str(f.get("passkey") or "")))
        except (ValueError, TypeError):
            raise Problem(400, "the passkey's answer sent with the form cannot be read; decide again") from None

    # -- open routes --------------------------------------------------------------------------

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict:
        connected = ctx.desk is not None and ctx.cc.nc.is_connected
        return {"status": "ok" if connected else "degraded", "bus": "connected" if connected else "disconnected"}

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon():
        """Browsers ask for it on any page (a JSON one too); the pages link the same icon."""
        return FileResponse(HERE / "static" / "favicon.svg", media_type="image/svg+xml")

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    async def login_page(request: Request, next: str = "/approvals"):
        token = secrets.token_urlsafe(24)
        response = page(request, "login.html", None, login_token=token, next=_safe_next(next), error=None)
        _set_cookie(response, LOGIN_COOKIE, token, w.secure_cookies, max_age=3600)
        return response

    async def attempt_login(request: Request, name: str, password: str) -> Session | str:
        """The session, or why not (a message); slows down repeated failures."""
        keys = [f"user:{name.strip().lower()[:64]}", f"addr:{_client(request)}"]
        wait = ctx.accounts.login_wait(keys[:1], w.login_failures_allowed, w.lockout_max_seconds, checking)
        wait = max(wait, ctx.accounts.login_wait(keys[1:], w.login_failures_allowed * 4, w.lockout_max_seconds, checking))
        if wait > 0:
            raise Problem(429, f"too many failed logins; try again in {wait:.0f} s", {"Retry-After": str(int(wait) + 1)})
        for key in keys:
            checking[key] += 1
        try:
            account = await run_in_threadpool(ctx.accounts.verify_password, name, password)
        finally:
            for key in keys:
                checking[key] -= 1
                if checking[key] <= 0:
                    del checking[key]
        if account is None:
            ctx.accounts.record_login_failure(keys)
            log.warning("failed login", extra={"fields": {"user": name[:64], "client": _client(request)}})
            return "wrong name or password (or the account is disabled)"
        ctx.accounts.clear_login_failures(keys[:1])
        ctx.accounts.purge_sessions(idle=idle, max_age=max_age)
        try:
            # A principal's key, opened with the password just given, re-wrapped under the
            # new session's token: from now on only this person's cookie can open it.
            wrap = await run_in_threadpool(ctx.principals.session_wrap, account, password)
        except PrincipalError as exc:
            log.warning("login without a signing key", extra={"fields": {"user": account.name, "why": str(exc)}})
            return f"{account.name}'s signing key cannot be opened: {exc}"
        token, csrf = ctx.accounts.start_session(account, wrap)
        ctx.accounts.record(account.name, "login", _client(request))
        session = Session(account, csrf, utcnow(), utcnow())
        request.state.session = session
        request.state.new_token = token
        return session

    @app.post("/login", include_in_schema=False)
    async def login_submit(request: Request):
        f = await form(request)
        expected = request.cookies.get(LOGIN_COOKIE)
        if not expected or not csrf_matches(expected, f.get("login_token")):
            raise Problem(403, "the login form expired or was not sent from this site; reload the login page")
        result = await attempt_login(request, str(f.get("name") or ""), str(f.get("password") or ""))
        if isinstance(result, str):
            token = secrets.token_urlsafe(24)
            response = page(request, "login.html", None, 401, login_token=token, next=_safe_next(f.get("next")), error=result)
            _set_cookie(response, LOGIN_COOKIE, token, w.secure_cookies, max_age=3600)
            return response
        response = RedirectResponse(_safe_next(f.get("next")), status_code=303)
        _set_cookie(response, SESSION_COOKIE, request.state.new_token, w.secure_cookies, max_age=int(max_age.total_seconds()))
        response.delete_cookie(LOGIN_COOKIE)
        return response

    @app.post("/api/login", tags=["session"])
    async def api_login(request: Request, body: LoginRequest) -> dict:
        """Start a session: sets the session cookie and returns the CSRF token to send as X-CSRF-Token."""
        result = await attempt_login(request, body.name, body.password)
        if isinstance(result, str):
            raise Problem(401, result)
        response = JSONResponse({"name": result.account.name, "role": result.account.role.value, "csrf_token": result.csrf})
        _set_cookie(response, SESSION_COOKIE, request.state.new_token, w.secure_cookies, max_age=int(max_age.total_seconds()))
        return response  # type: ignore[return-value]

    @app.post("/logout", include_in_schema=False)
    @app.post("/api/logout", tags=["session"])
    async def logout(request: Request, session: Session = Depends(write_session)):
        ctx.accounts.end_session(request.cookies.get(SESSION_COOKIE, ""))
        ctx.accounts.record(session.account.name, "logout")
        response: Response = JSONResponse({"ok": True}) if is_api(request) else RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    # -- pages ------------------------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    async def home(session: Session = Depends(page_session)):
        return RedirectResponse("/approvals", status_code=303)

    @app.get("/approvals", response_class=HTMLResponse, include_in_schema=False)
    async def approvals_page(request: Request, session: Session = Depends(page_session)):
        return page(request, "approvals.html", session, **(await queue_values(request)))

    @app.get("/fragments/queue", response_class=HTMLResponse, include_in_schema=False)
    async def queue_fragment(request: Request, session: Session = Depends(read_session)):
        return page(request, "_queue.html", session, **(await queue_values(request)))

    async def queue_values(request: Request) -> dict:
        try:
            query = parse_query(request.query_params)
        except QueueQueryError as exc:
            raise Problem(400, str(exc)) from None
        pending, decided = await ctx.desk.entries()  # type: ignore[union-attr]
        reviews_problem = None
        try:
            reviews = await ctx.desk.reviews()  # type: ignore[union-attr]
        except ActionError as exc:  # the staged directives are still shown, and decided
            reviews, reviews_problem = [], exc.message
        breaker = await ctx.desk.breaker()  # type: ignore[union-attr]
        return {
            "pending": pending,
            "rows": queue_rows(pending, query),
            "query": query,
            "sorts": sort_links(query),
            "standard": [e for e in pending if not e.explicit],
            "decided": decided,
            "reviews": [r for r in reviews if not r.acknowledged],
            "acknowledged": [r for r in reviews if r.acknowledged][-20:],
            "reviews_problem": reviews_problem,
            "breaker": breaker,
        }

    @app.get("/approvals/{directive_id}", response_class=HTMLResponse, include_in_schema=False)
    async def item_page(request: Request, directive_id: str, session: Session = Depends(page_session)):
        entry = await ctx.desk.entry(directive_id)  # type: ignore[union-attr]
        return page(request, "item.html", session, e=entry, breaker=await ctx.desk.breaker())  # type: ignore[union-attr]

    @app.post("/approvals/batch", include_in_schema=False)
    async def batch_form(request: Request, session: Session = Depends(write_session)):
        need_principal(session)
        f = await form(request)
        ids = [str(i) for i in (f.get("directive_id") or [])]
        count = _int_or_none(f.get("confirm_count"))
        result = await ctx.desk.approve_batch(session, session_signer(request, session), ids, count, form_proof(f))  # type: ignore[union-attr]
        return page(request, "batch.html", session, result=result)

    @app.post("/approvals/{directive_id}/approve", include_in_schema=False)
    async def approve_form(request: Request, directive_id: str, session: Session = Depends(write_session)):
        need_principal(session)
        f = await form(request)
        await ctx.desk.approve(session, session_signer(request, session), directive_id, f.get("confirm"), form_proof(f))  # type: ignore[union-attr]
        return RedirectResponse(f"/approvals/{quote(directive_id)}", status_code=303)

    @app.post("/approvals/{directive_id}/reject", include_in_schema=False)
    async def reject_form(request: Request, directive_id: str, session: Session = Depends(write_session)):
        need_principal(session)
        f = await form(request)
        await ctx.desk.reject(session, session_signer(request, session), directive_id, str(f.get("reason") or ""), form_proof(f))  # type: ignore[union-attr]
        return RedirectResponse(f"/approvals/{quote(directive_id)}", status_code=303)

    @app.post("/reviews/{review_id}/ack", include_in_schema=False)
    async def ack_form(request: Request, review_id: str, session: Session = Depends(write_session)):
        need_principal(session)
        f = await form(request)
        await ctx.desk.acknowledge(session, session_signer(request, session), review_id, str(f.get("note") or ""), str(f.get("agent") or "") or None)  # type: ignore[union-attr]
        return RedirectResponse("/approvals#reviews", status_code=303)

    @app.get("/breaker", response_class=HTMLResponse, include_in_schema=False)
    async def breaker_page(request: Request, session: Session = Depends(page_session)):
        return page(request, "breaker.html", session, **(await breaker_values(await ctx.desk.breaker())), done=None)  # type: ignore[union-attr]

    async def breaker_values(state: BreakerState) -> dict:
        resets = [a for a in ctx.accounts.actions(500) if a["action"] == "reset_breaker"][:20]
        return {"breaker": state, "resets": resets, "snap": await ctx.cc.portfolio(), "limit": mission.guardrails.max_drawdown_pct}

    @app.post("/breaker/reset", include_in_schema=False)
    async def breaker_reset_form(request: Request, session: Session = Depends(write_session)):
        need_principal(session)
        f = await form(request)
        state = await ctx.desk.reset_breaker(session, session_signer(request, session), str(f.get("password") or ""), str(f.get("reason") or ""), form_proof(f))  # type: ignore[union-attr]
        return page(request, "breaker.html", session, **(await breaker_values(state)), done="the circuit breaker is reset")

    async def governor_values() -> dict:
        """The factory's hold is shown even when the agents' state cannot be checked: it is what applies."""
        try:
            governor, problem = await ctx.desk.governor(), None  # type: ignore[union-attr]
        except ActionError as exc:
            governor, problem = None, exc.message
        return {"governor": governor, "governor_problem": problem, "hold": await ctx.desk.governor_hold(), "clears": _clears()}  # type: ignore[union-attr]

    @app.get("/governor", response_class=HTMLResponse, include_in_schema=False)
    async def governor_page(request: Request, session: Session = Depends(page_session)):
        return page(request, "governor.html", session, **(await governor_values()), done=None)

    async def quarantine_values() -> dict:
        items = await ctx.desk.quarantine()  # type: ignore[union-attr]
        kept = {(r.news_id, r.text_sha256): r for r in await ctx.desk.releases()}  # type: ignore[union-attr]
        # Released means released over the very text shown.
        releases = {q.news_id: kept[(q.news_id, text_digest(q.text))] for q in items if (q.news_id, text_digest(q.text)) in kept}
        return {"items": items, "releases": releases}

    @app.get("/quarantine", response_class=HTMLResponse, include_in_schema=False)
    async def quarantine_page(request: Request, session: Session = Depends(page_session)):
        return page(request, "quarantine.html", session, **(await quarantine_values()), done=None)

    @app.post("/quarantine/release", include_in_schema=False)
    async def quarantine_release_form(request: Request, session: Session = Depends(write_session)):
        need_principal(session)
        f = await form(request)
        release = await ctx.desk.release(  # type: ignore[union-attr]
            session, session_signer(request, session), str(f.get("news_id") or ""), str(f.get("reason") or ""), form_proof(f)
        )
        done = f"released {release.news_id}: the market-data service publishes it to the agents, wrapped, and keeps it for the next training run"
        return page(request, "quarantine.html", session, **(await quarantine_values()), done=done)

    async def venues_values() -> dict:
        statuses = await ctx.desk.venues()  # type: ignore[union-attr]
        configured = ctx.mission.venues.configured()
        acks = [a for a in ctx.accounts.actions(500) if a["action"] == "acknowledge_venue"][:20]
        return {"statuses": statuses, "configured": configured, "acks": acks}

    @app.get("/venues", response_class=HTMLResponse, include_in_schema=False)
    async def venues_page(request: Request, session: Session = Depends(page_session)):
        return page(request, "venues.html", session, **(await venues_values()), done=None)

    @app.post("/venues/ack", include_in_schema=False)
    async def venues_ack_form(request: Request, session: Session = Depends(write_session)):
        need_principal(session)
        f = await form(request)
        try:
            review = int(str(f.get("review") or ""))
        except ValueError:
            raise Problem(400, "review must be the number of the open review") from None
        ack = await ctx.desk.acknowledge_venue(  # type: ignore[union-attr]
            session, session_signer(request, session), str(f.get("venue") or ""), review, str(f.get("note") or ""), form_proof(f)
        )
        done = f"acknowledgement of review {ack.review} of {ack.venue} sent: the factory checks it and lifts the hold at its next read"
        return page(request, "venues.html", session, **(await venues_values()), done=done)

    @app.post("/governor/clear", include_in_schema=False)
    async def governor_clear_form(request: Request, session: Session = Depends(write_session)):
        need_principal(session)
        f = await form(request)
        await ctx.desk.clear_governor(session, session_signer(request, session), str(f.get("reason") or ""), form_proof(f))  # type: ignore[union-attr]
        done = "cleared: the agents apply it at their next cycle and take a new baseline"
        return page(request, "governor.html", session, **(await governor_values()), done=done)

    def _clears() -> list[dict]:
        return [a for a in ctx.accounts.actions(500) if a["action"] == "clear_governor"][:20]

    @app.get("/portfolio", response_class=HTMLResponse, include_in_schema=False)
    async def portfolio_page(request: Request, period: str = "24h", session: Session = Depends(page_session)):
        snap, history, until = await portfolio_data(period)
        charts = {
            "equity": Markup(line_chart([(s.at, s.equity_usd) for s in history], title="equity (USD)", style=EQUITY)),
            "drawdown": Markup(line_chart([(s.at, s.drawdown_pct) for s in history], title="drawdown from peak", style=DRAWDOWN)),
            "leverage": Markup(line_chart([(s.at, s.leverage) for s in history], title="gross leverage", style=LEVERAGE)),
        }
        return page(
            request, "portfolio.html", session, snap=snap, charts=charts, period=period, periods=list(PERIODS), until=until,
            desk_time=snap is not None and until == snap.at,
        )

    async def portfolio_data(period: str) -> tuple[PortfolioSnapshot | None, list[PortfolioSnapshot], datetime]:
        """The newest snapshot, the period's history and its end, in the snapshots' own time (see chart_window)."""
        now = utcnow()
        snap = await ctx.cc.portfolio()
        try:
            since, until = chart_window(period, snap.at if snap else None, now)
        except PeriodError as exc:
            raise Problem(400, str(exc)) from None
        # The stream seeks by the time it stored a message, which is the snapshots' time only on a live desk.
        live = until == now
        stored = await ctx.cc.portfolio_history(since if live else None)
        return snap, [s for s in stored if (since is None or s.at >= since) and (live or s.at <= until)], until

    @app.get("/funnel", response_class=HTMLResponse, include_in_schema=False)
    async def funnel_page(
        request: Request, period: str = "24h", start: str | None = Query(None, alias="from"), end: str | None = Query(None, alias="to"),
        agent: str | None = Query(None), session: Session = Depends(page_session),
    ):
        desk, since, until = await funnel_data(period, start, end)
        agent = agent or None
        return page(
            request, "funnel.html", session, f=desk.of_agent(agent) if agent else desk, period=None if (start or end) else period,
            periods=list(PERIODS), since=since, until=until, start=start or "", end=end or "", agent=agent or "",
            agents=sorted(set(desk.agents) | ({agent} if agent else set())),
        )

    async def funnel_data(period: str, start: str | None = None, end: str | None = None) -> tuple[Funnel, datetime | None, datetime]:
        """The desk's funnel over the period; each agent's is in its `agents`."""
        now = utcnow()
        try:
            since, until = resolve_period(period, start, end, now)
        except PeriodError as exc:
            raise Problem(400, str(exc)) from None
        verdicts, outcomes = await asyncio.gather(ctx.cc.verdicts(since), ctx.cc.outcomes(since))
        return period_funnel(verdicts, outcomes, since, now, until), since, until

    async def scorecard_data(horizon_hours: float | None) -> Scorecard:
        hours = horizon_hours if horizon_hours is not None else mission.agents.outcome_horizon_hours
        if not 0.5 <= hours <= 24 * 90:
            raise Problem(400, f"horizon_hours must be between 0.5 and 2160, got {hours:g}")
        return await gather_scorecard(ctx.cc, timedelta(hours=hours))

    @app.get("/scorecard", response_class=HTMLResponse, include_in_schema=False)
    async def scorecard_page(request: Request, horizon_hours: float | None = Query(None), session: Session = Depends(page_session)):
        card = await scorecard_data(horizon_hours)
        cumulative, running = [], 0.0
        for j in card.judged:
            running += j.pnl_usd
            cumulative.append((j.filled_at, running))
        charts = {
            "reliability": Markup(reliability_chart(card.reliability)),
            "pnl": Markup(line_chart(cumulative, title="P&L at the horizon, cumulative by fill time", style=PNL)),
        }
        return page(request, "scorecard.html", session, card=card, charts=charts)

    CYCLE_KINDS = (("morning_brief", "morning brief"), ("intraday", "intraday watch"), ("eod_review", "end-of-day review"))

    @app.get("/agents", response_class=HTMLResponse, include_in_schema=False)
    async def agents_page(request: Request, session: Session = Depends(page_session)):
        status = await ctx.cc.agents_status()
        now = utcnow()
        upcoming = status.next_due if status else next_due(mission.agents.schedule, now)
        return page(request, "agents.html", session, status=status, upcoming=upcoming, now=now, kinds=CYCLE_KINDS)

    @app.get("/users", response_class=HTMLResponse, include_in_schema=False)
    async def users_page(request: Request, session: Session = Depends(page_session)):
        if session.account.role != Role.ADMIN:
            raise Problem(403, "only an admin may see the accounts")
        return page(request, "users.html", session, users=ctx.accounts.list(), actions=ctx.accounts.actions(100))

    @app.post("/users/{name}/disable", include_in_schema=False)
    async def disable_user(request: Request, name: str, session: Session = Depends(write_session)):
        if session.account.role != Role.ADMIN:
            raise Problem(403, "only an admin may disable an account")
        try:
            name = normalise_name(name)
        except ValueError as exc:
            raise Problem(404, str(exc)) from None
        if name == session.account.name:
            raise Problem(400, "you cannot disable your own account here; use `deskgate user disable`")
        try:
            ctx.accounts.disable(name)
        except ValueError as exc:
            raise Problem(404, str(exc)) from None
        # A disabled account's key signs nothing the factory counts (KeyStore.deciding).
        ctx.accounts.record(session.account.name, "disable_user", name)
        return RedirectResponse("/users", status_code=303)

    # -- live updates and metrics ------------------------------------------------------------------

    @app.get("/events", include_in_schema=False)
    async def events(request: Request, session: Session = Depends(read_session)):
        def still_valid() -> bool:
            token = request.cookies.get(SESSION_COOKIE)
            return ctx.accounts.session(token, idle=idle, max_age=max_age, touch=False) is not None

        return StreamingResponse(
            _event_stream(ctx.cc, request, still_valid, ctx.closing), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"}
        )

    @app.get("/metrics", include_in_schema=False)
    async def metrics_route(request: Request):
        if current(request) is None and not metrics.bearer_ok(data_dir, request.headers.get("authorization")):
            raise Problem(401, "log in, or send the token in <data_dir>/state/metrics.token as a Bearer token")
        body = await metrics.render(ctx.cc)
        return PlainTextResponse(body, media_type=metrics.CONTENT_TYPE)

    # -- JSON API ----------------------------------------------------------------------------------

    @app.get("/api/openapi.json", include_in_schema=False)
    async def openapi(session: Session = Depends(read_session)):
        return JSONResponse(app.openapi())

    @app.get("/api/me", tags=["session"])
    async def api_me(session: Session = Depends(read_session)) -> dict:
        return {"name": session.account.name, "role": session.account.role.value, "can_decide": session.account.can_decide}

    @app.get("/api/approvals", tags=["approvals"])
    async def api_approvals(session: Session = Depends(read_session)) -> list[QueueEntry]:
        """Pending staged directives, oldest first."""
        return (await ctx.desk.entries())[0]  # type: ignore[union-attr]

    @app.get("/api/approvals/{directive_id}", tags=["approvals"])
    async def api_approval(directive_id: str, session: Session = Depends(read_session)) -> QueueEntry:
        return await ctx.desk.entry(directive_id)  # type: ignore[union-attr]

    @app.post("/api/approvals/batch", tags=["approvals"])
    async def api_batch(request: Request, body: BatchApproveRequest, session: Session = Depends(write_session)) -> BatchResult:
        """Approve standard directives together, all or nothing; confirm_count must equal the number of ids."""
        return await ctx.desk.approve_batch(session, session_signer(request, session), body.directive_ids, body.confirm_count, body.passkey)  # type: ignore[union-attr]

    @app.post("/api/approvals/{directive_id}/approve", tags=["approvals"])
    async def api_approve(request: Request, directive_id: str, body: ApproveRequest, session: Session = Depends(write_session)) -> DecisionResult:
        """Approve; an explicit directive needs `confirm` set to its id."""
        return await ctx.desk.approve(session, session_signer(request, session), directive_id, body.confirm, body.passkey)  # type: ignore[union-attr]

    @app.post("/api/approvals/{directive_id}/reject", tags=["approvals"])
    async def api_reject(request: Request, directive_id: str, body: RejectRequest, session: Session = Depends(write_session)) -> DecisionResult:
        return await ctx.desk.reject(session, session_signer(request, session), directive_id, body.reason, body.passkey)  # type: ignore[union-attr]

    @app.post("/api/decisions/prepare", tags=["passkeys"])
    async def api_prepare(body: PrepareRequest, session: Session = Depends(write_session)) -> PrepareAnswer:
        """For a principal with a passkey: build the decision (every check of the action runs
        now), keep it for this session, and answer the options for navigator.credentials.get.
        Then send the action with `passkey: {prepared_id, credential}`."""
        need_principal(session)
        return await ctx.desk.prepare(session, body)  # type: ignore[union-attr]

    @app.get("/passkeys", response_class=HTMLResponse, include_in_schema=False)
    async def passkeys_page(request: Request, session: Session = Depends(page_session)):
        need_principal(session)
        return page(request, "passkeys.html", session, passkeys=ctx.principals.passkeys(session.account.name))

    @app.post("/api/passkeys/register/begin", tags=["passkeys"])
    async def api_passkey_begin(body: PasskeyBeginRequest, session: Session = Depends(write_session)) -> dict:
        """Start registering a passkey: your password again; with a passkey already registered,
        one of them must confirm the new one too (`confirm_options`)."""
        return await ctx.passkey_registration.begin(session, body)

    @app.post("/api/passkeys/register/finish", tags=["passkeys"])
    async def api_passkey_finish(request: Request, body: PasskeyFinishRequest, session: Session = Depends(write_session)) -> dict:
        """Finish registering: navigator.credentials.create()'s answer (and get()'s, when asked)."""
        return await ctx.passkey_registration.finish(session, session_signer(request, session), body)

    @app.get("/api/reviews", tags=["reviews"])
    async def api_reviews(session: Session = Depends(read_session)) -> list[ReviewEntry]:
        return await ctx.desk.reviews()  # type: ignore[union-attr]

    @app.post("/api/reviews/{review_id}/ack", tags=["reviews"])
    async def api_ack(request: Request, review_id: str, body: AckRequest, session: Session = Depends(write_session)) -> dict:
        ack = await ctx.desk.acknowledge(session, session_signer(request, session), review_id, body.note, body.agent)  # type: ignore[union-attr]
        return ack.model_dump(mode="json")

    @app.get("/api/breaker", tags=["breaker"])
    async def api_breaker(session: Session = Depends(read_session)) -> BreakerState:
        return await ctx.desk.breaker()  # type: ignore[union-attr]

    @app.post("/api/breaker/reset", tags=["breaker"])
    async def api_reset(request: Request, body: ResetRequest, session: Session = Depends(write_session)) -> BreakerState:
        """Reset a tripped breaker: your password again, and a reason."""
        return await ctx.desk.reset_breaker(session, session_signer(request, session), body.password, body.reason, body.passkey)  # type: ignore[union-attr]

    @app.get("/api/quarantine", tags=["news"])
    async def api_quarantine(session: Session = Depends(read_session)) -> list[QuarantinedItem]:
        """News the injection screen held back, newest first, with its reasons."""
        return await ctx.desk.quarantine()  # type: ignore[union-attr]

    @app.get("/api/governor", tags=["governor"])
    async def api_governor(session: Session = Depends(read_session)) -> GovernorState | None:
        return await ctx.desk.governor()  # type: ignore[union-attr]

    @app.get("/api/governor/hold", tags=["governor"])
    async def api_governor_hold(session: Session = Depends(read_session)) -> GovernorHold | None:
        """The damping the factory applies, and holds until a principal clears it."""
        return await ctx.desk.governor_hold()  # type: ignore[union-attr]

    @app.get("/api/quarantine/releases", tags=["news"])
    async def api_quarantine_releases(session: Session = Depends(read_session)) -> list[QuarantineRelease]:
        """Every release of a quarantined item a principal sent, oldest first."""
        return await ctx.desk.releases()  # type: ignore[union-attr]

    @app.post("/api/quarantine/{news_id}/release", tags=["news"])
    async def api_quarantine_release(news_id: str, request: Request, body: ReleaseRequest, session: Session = Depends(write_session)) -> QuarantineRelease:
        """Release a quarantined item the screen got wrong: a reason is required; signed and recorded."""
        return await ctx.desk.release(session, session_signer(request, session), news_id, body.reason, body.passkey)  # type: ignore[union-attr]

    @app.get("/api/venues", tags=["venues"])
    async def api_venues(session: Session = Depends(read_session)) -> list[VenueStatus]:
        """The factory's verdict on each real venue: health, mismatches with the book, holds."""
        return await ctx.desk.venues()  # type: ignore[union-attr]

    @app.post("/api/venues/{venue}/ack", tags=["venues"])
    async def api_venue_ack(venue: str, request: Request, body: VenueAckRequest, session: Session = Depends(write_session)) -> VenueAck:
        """Acknowledge a venue's open review: its balances, as they were, are accepted; the hold is lifted."""
        return await ctx.desk.acknowledge_venue(session, session_signer(request, session), venue, body.review, body.note, body.passkey)  # type: ignore[union-attr]

    @app.post("/api/governor/clear", tags=["governor"])
    async def api_governor_clear(request: Request, body: ClearRequest, session: Session = Depends(write_session)) -> GovernorClear:
        """End the Governor's damping: a reason is required and recorded."""
        return await ctx.desk.clear_governor(session, session_signer(request, session), body.reason, body.passkey)  # type: ignore[union-attr]

    @app.get("/api/portfolio", tags=["risk"])
    async def api_portfolio(period: str = "24h", session: Session = Depends(read_session)) -> dict:
        snap, history, _ = await portfolio_data(period)
        return {
            "now": snap.model_dump(mode="json") if snap else None,
            "history": [
                {"at": s.at.isoformat(), "equity_usd": s.equity_usd, "drawdown_pct": s.drawdown_pct, "leverage": s.leverage}
                for s in history
            ],
        }

    @app.get("/api/agents", tags=["agents"])
    async def api_agents(session: Session = Depends(read_session)) -> AgentsStatus | None:
        """The desk agents' latest status: each cycle's last run and next, model errors, tokens and cost today."""
        return await ctx.cc.agents_status()

    @app.get("/api/scorecard", tags=["risk"])
    async def api_scorecard(horizon_hours: float | None = Query(None), session: Session = Depends(read_session)) -> Scorecard:
        """Executed directives judged at their horizon: hit rate, calibration, P&L, and why the rest did not execute."""
        return await scorecard_data(horizon_hours)

    @app.get("/api/funnel", tags=["risk"])
    async def api_funnel(
        period: str = "24h",
        start: str | None = Query(None, alias="from", description="a date (2026-11-20, UTC) or ISO 8601 time; overrides period"),
        end: str | None = Query(None, alias="to", description="exclusive end, same format; default now"),
        agent: str | None = Query(None, description="only this agent's directives (by their verified signer)"),
        session: Session = Depends(read_session),
    ) -> Funnel:
        """Directives received in the period (or from/to) and where each stands now; each
        agent's funnel is in `agents`, or only one agent's with `agent`."""
        desk = (await funnel_data(period, start, end))[0]
        return desk.of_agent(agent) if agent else desk

    return app


async def _event_stream(cc: CommandCenter, request: Request, still_valid, closing: asyncio.Event):
    """Server-sent events naming what changed; the page then fetches the new view.

    The session is checked again at every keep-alive, so a logout, an expiry or a
    disabled account ends the stream within 15 s; the server closing ends it at once."""
    changed: asyncio.Queue[str] = asyncio.Queue(maxsize=100)

    def on(kind: str):
        async def cb(_msg) -> None:
            if not changed.full():
                changed.put_nowait(kind)

        return cb

    subs = [
        await cc.nc.subscribe("approvals.queue.directive.>", cb=on("queue")),
        await cc.nc.subscribe("factory.status.approval.>", cb=on("queue")),
        await cc.nc.subscribe("approvals.queue.review.>", cb=on("reviews")),
        await cc.nc.subscribe("approvals.acknowledged.>", cb=on("reviews")),
        await cc.nc.subscribe("factory.status.breaker", cb=on("breaker")),
    ]
    closed = asyncio.ensure_future(closing.wait())
    try:
        yield b"retry: 2000\n\n"
        while True:
            change = asyncio.ensure_future(changed.get())
            await asyncio.wait((change, closed), timeout=15.0, return_when=asyncio.FIRST_COMPLETED)
            if closed.done():
                change.cancel()
                return
            if not change.done():
                change.cancel()
                if await request.is_disconnected() or not still_valid():
                    return
                yield b": keep-alive\n\n"
                continue
            kind = change.result()
            await asyncio.sleep(0.2)  # gather a burst into one refresh
            kinds = {kind}
            while not changed.empty():
                kinds.add(changed.get_nowait())
            for k in sorted(kinds):
                yield f"event: {k}\ndata: {datetime.now(timezone.utc).isoformat()}\n\n".encode()
    finally:
        closed.cancel()
        for sub in subs:
            try:
                await sub.unsubscribe()
            except Exception:  # noqa: BLE001 - the connection may already be closing
                pass


def _set_cookie(response: Response, name: str, value: str, secure: bool, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="strict", secure=secure, path="/")


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _safe_next(value: Any) -> str:
    """Only a local path: a login form must not redirect anywhere else."""
    text = str(value or "")
    if not text.startswith("/") or text.startswith("//") or "\\" in text:
        return "/approvals"
    return text


def _int_or_none(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None
