"""``refunds console``: the FastAPI application, its sessions, and signing in and out.

Pages are server-rendered (Jinja2) and work without JavaScript; htmx, from its npm package,
refreshes a refund's progress where the browser runs it. Every action reaches the workflow through
``RefundClient`` as the signed-in person, signed with their key, so the console can do nothing that
person could not do from the CLI.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from activities.schedule_file import ScheduleFile
from console import views
from console.customer_pages import customer_routes
from console.passwords import sign_in
from console.security import (
    SESSION_COOKIE,
    SESSION_HOURS,
    Gate,
    check_csrf,
    csrf_token,
    session_secret,
)
from console.staff_pages import staff_routes
from domain.signatures import Role
from settings import Settings
from starter.client import RefundClient, connect
from storage.accounts import ConsoleAccounts
from storage.certificates import CertificateStore
from storage.database import open_database
from storage.people import PeopleDirectory
from workflows.business_days import BusinessCalendar

HERE = Path(__file__).parent
HOME = {Role.CUSTOMER: "/certificates", Role.REVIEWER: "/reviews", Role.OPERATOR: "/attention"}


@dataclass
class Console:
    """What every page needs: settings, the system of record, and Temporal."""

    settings: Settings
    store: CertificateStore
    templates: Jinja2Templates
    gate: Gate
    schedule: ScheduleFile
    refunds: RefundClient | None = None

    def calendar(self) -> BusinessCalendar:
        """Business days as the workers count them (the official schedule read when it changes)."""
        return BusinessCalendar(self.settings.holiday_country, self.schedule.current())

    def client(self) -> RefundClient:
        if self.refunds is None:
            raise HTTPException(503, "Temporal is not reachable; try again in a moment")
        return self.refunds

    def page(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        lang = views.language(request.headers.get("accept-language"))
        person = self.gate.signed_in(request)
        return self.templates.TemplateResponse(
            request,
            name,
            {
                "lang": lang,
                "person": person,
                "csrf": csrf_token(request),
                "views": views,
                "zone": self.settings.zone,
                "web_ui": self.settings.web_ui_workflows,
                **context,
            },
            status_code=status,
        )


def create_app(settings: Settings, *, connect_temporal: bool = True) -> FastAPI:
    engine = open_database(settings.database_url)
    templates = Jinja2Templates(directory=HERE / "templates")
    gate = Gate(PeopleDirectory(engine), ConsoleAccounts(engine))
    schedule = ScheduleFile(settings.calendar_file)
    console = Console(settings, CertificateStore(engine), templates, gate, schedule)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if connect_temporal:
            console.refunds = RefundClient(await connect(settings), settings)
        yield

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.console = console
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(settings),
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_HOURS * 3600,
        same_site="strict",
        https_only=settings.console_secure_cookies,
    )
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.exception_handler(StarletteHTTPException)
    async def refused(request: Request, err: StarletteHTTPException) -> Response:
        return console.page(request, "error.html", status=err.status_code, message=err.detail)

    @app.middleware("http")
    async def no_caching_no_framing(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers["Cache-Control"] = "no-store"
        response.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    @app.get("/", response_model=None)
    async def home(request: Request) -> Response:
        person = console.gate.signed_in(request)
        return RedirectResponse(HOME[person.role] if person else "/sign-in", status_code=303)

    @app.get("/sign-in", response_class=HTMLResponse)
    async def sign_in_page(request: Request) -> Response:
        return console.page(request, "sign_in.html")

    @app.post("/sign-in", response_model=None)
    async def sign_in_form(
        request: Request,
        person_id: str = Form(""),
        password: str = Form(""),
        csrf: str = Form(""),
    ) -> Response:
        check_csrf(request, csrf)
        now = datetime.now(UTC)
        # Argon2 takes tens of milliseconds and 64 MiB: never on the event loop the worker shares.
        result = await run_in_threadpool(
            sign_in, gate.people, gate.accounts, person_id.strip(), password, now
        )
        if result.person is None:
            return console.page(request, "sign_in.html", status=401, refusal=result.refusal)
        console.gate.open(request, result.person, now)
        return RedirectResponse(HOME[result.person.role], status_code=303)

    @app.post("/sign-out", response_model=None)
    async def sign_out(request: Request, csrf: str = Form("")) -> Response:
        check_csrf(request, csrf)
        console.gate.close(request, datetime.now(UTC))
        return RedirectResponse("/sign-in", status_code=303)

    customer_routes(app, console)
    staff_routes(app, console)
    return app
