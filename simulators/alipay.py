"""The local Alipay OpenAPI gateway (``POST /gateway.do``): ``alipay.trade.refund`` and
``alipay.trade.fastpay.refund.query`` on the trades the system of record knows, checked as strictly
as Alipay does, each answer RSA2-signed over the exact text sent. It keeps what it refunded in its
own SQLite file, and strikes the faults it is given (``ProtocolFaults``).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import structlog
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from activities.alipay_signing import (
    ERROR_RESPONSE,
    new_private_key,
    private_pem,
    public_pem,
    read_private_key,
    read_public_key,
    response_name,
    signed_body,
)
from activities.secret_files import private_folder, write_secret_once
from domain.certificates import Channel
from settings import Settings
from simulators.alipay_checks import (
    BEIJING,
    METHODS,
    REFUND,
    AlipayError,
    QueryAsk,
    RefundAsk,
    business,
    check_common,
    query_ask,
    refund_ask,
)
from simulators.alipay_state import AlipayLedger, Decision, SimulatedRefund
from simulators.faults import ProtocolFaults, faults_for
from simulators.known_payments import PaymentLookup, payments_of

log = structlog.get_logger("refunds.simulator.alipay")

LoseAnswer = Literal["drop", "late"]
FailBefore = Literal["http_502", "system_error"]
MAX_BODY_BYTES = 64 * 1024
APP_PUBLIC_KEY = "alipay-app-public.pem"
SIMULATOR_PRIVATE_KEY = "alipay-simulator-private.pem"
_TIME = "%Y-%m-%d %H:%M:%S"


class AlipaySimulator:
    """Alipay's gateway for one app, on the trades ``payments`` knows."""

    def __init__(
        self,
        state_file: Path,
        app_id: str,
        app_public_key: rsa.RSAPublicKey,
        private_key: rsa.RSAPrivateKey,
        payments: PaymentLookup,
        faults: ProtocolFaults | None = None,
        *,
        lose_answer: LoseAnswer = "drop",
        late_seconds: float = 11.0,
        fail_before: FailBefore = "http_502",
        clock: Callable[[], datetime] | None = None,
        wrong_key: rsa.RSAPrivateKey | None = None,
    ) -> None:
        self.ledger = AlipayLedger(state_file)
        self.app_id = app_id
        self._app_key = app_public_key
        self._key = private_key
        self._wrong_key = wrong_key
        """What a signature fault signs with (made when first needed)."""
        self.payments = payments
        self.faults = faults or ProtocolFaults()
        self.lose_answer: LoseAnswer = lose_answer
        """How an answer is lost after the money moved: the connection drops, or the answer comes
        ``late_seconds`` later (past the caller's timeout)."""
        self.late_seconds = late_seconds
        self.fail_before: FailBefore = fail_before
        self._clock = clock or (lambda: datetime.now(UTC))

    @classmethod
    def from_settings(
        cls, settings: Settings, payments: PaymentLookup | None = None
    ) -> AlipaySimulator:
        """The simulator ``refunds up`` runs, with the local keys ``ensure_local_alipay_keys``
        made and the ``REFUNDS_FAULT_*`` faults."""
        folder = settings.channel_key_dir
        app_key = read_public_key(folder / APP_PUBLIC_KEY, "Alipay app public key")
        own = read_private_key(folder / SIMULATOR_PRIVATE_KEY, "Alipay simulator private key")
        faults = faults_for(
            Channel.ALIPAY,
            transient_rate=settings.fault_transient_rate,
            latency_ms=settings.fault_latency_ms,
            reject=settings.fault_reject,
            bad_signature_rate=settings.fault_bad_signature_rate,
        )
        if payments is None:
            from storage.database import open_database

            payments = payments_of(open_database(settings.database_url), Channel.ALIPAY)
        return cls(
            settings.simulator_state_dir / "alipay.db",
            settings.alipay_app_id,
            app_key,
            own,
            payments,
            faults,
            late_seconds=settings.channel_timeout_seconds + 1,
        )

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post("/gateway.do", self._gateway)
        return app

    def refunds(self) -> list[SimulatedRefund]:
        """Every refund this gateway made, oldest first."""
        return self.ledger.refunds()

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        await self.faults.delay()
        fault = self.faults.transient()
        if fault == "fail_before" and self.fail_before == "http_502":
            return web.Response(status=502, text="Bad Gateway")
        name = ERROR_RESPONSE
        try:
            params = await _params(request)
            if params.get("method") in METHODS:
                name = response_name(params["method"])
            method = check_common(params, self.app_id, self._app_key, self._clock())
            if fault == "fail_before":
                raise business("ACQ.SYSTEM_ERROR", "系统错误")
            if method == REFUND:
                answer = self._refund(refund_ask(params["biz_content"]))
            else:
                answer = self._query(query_ask(params["biz_content"]))
        except AlipayError as err:
            name = ERROR_RESPONSE if err.gateway else name
            answer = err.answer()
        log.debug("alipay_simulator_answer", code=answer["code"], sub_code=answer.get("sub_code"))
        body = signed_body(name, answer, self._signing_key())
        if fault == "lose_answer":
            if self.lose_answer == "drop":
                if request.transport is not None:
                    request.transport.abort()
                return web.Response(status=500)
            await asyncio.sleep(self.late_seconds)
        return web.Response(text=body, content_type="application/json", charset="utf-8")

    def _signing_key(self) -> rsa.RSAPrivateKey:
        if not self.faults.signature_fault():
            return self._key
        if self._wrong_key is None:
            self._wrong_key = new_private_key()
        return self._wrong_key

    def _refund(self, ask: RefundAsk) -> dict[str, Any]:
        trade = self.payments(ask.out_trade_no)
        if trade is None:
            raise business("ACQ.TRADE_NOT_EXIST", "交易不存在")
        refused = self.faults.refusal(ask.out_trade_no)
        if refused is not None:
            raise business(refused or "ACQ.TRADE_NOT_ALLOW_REFUND", "当前交易不允许退款")
        if ask.out_request_no is None and ask.amount != trade.amount:
            raise business("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额与交易总金额不一致")
        request_no = ask.out_request_no or ask.out_trade_no
        done = self.ledger.refund(
            ask.out_trade_no, request_no, ask.amount, trade.amount, self._clock()
        )
        if done.decision is Decision.DISCORDANT:
            raise business("ACQ.DISCORDANT_REPEAT_REQUEST", "不一致的请求")
        if done.decision is Decision.OVER_TOTAL or done.refund is None:
            raise business("ACQ.REASON_TRADE_REFUND_FEE_ERR", "退款金额超过可退金额")
        return {
            "code": "10000",
            "msg": "Success",
            "trade_no": trade_no(ask.out_trade_no),
            "out_trade_no": ask.out_trade_no,
            "buyer_logon_id": "159****5620",
            "fund_change": "Y" if done.decision is Decision.REFUNDED else "N",
            "refund_fee": f"{done.refunded_total:.2f}",
            "gmt_refund_pay": _beijing(done.refund.at),
            "buyer_user_id": "2088" + trade_no(ask.out_trade_no)[-12:],
            "send_back_fee": "0.00",
        }

    def _query(self, ask: QueryAsk) -> dict[str, Any]:
        trade = self.payments(ask.out_trade_no)
        if trade is None:
            raise business("ACQ.TRADE_NOT_EXIST", "交易不存在")
        done = self.ledger.find(ask.out_trade_no, ask.out_request_no)
        if done is None:
            return {"code": "10000", "msg": "Success"}
        answer = {
            "code": "10000",
            "msg": "Success",
            "trade_no": trade_no(ask.out_trade_no),
            "out_trade_no": ask.out_trade_no,
            "out_request_no": ask.out_request_no,
            "total_amount": f"{trade.amount:.2f}",
            "refund_amount": f"{done.amount:.2f}",
            "refund_status": "REFUND_SUCCESS",
        }
        if "gmt_refund_pay" in ask.options:
            answer["gmt_refund_pay"] = _beijing(done.at)
        return answer


def trade_no(out_trade_no: str) -> str:
    """The simulator's Alipay trade number for a merchant's trade (28 digits, stable)."""
    digest = hashlib.blake2b(out_trade_no.encode(), digest_size=12).digest()
    return f"2024{int.from_bytes(digest) % 10**24:024d}"


async def _params(request: web.Request) -> dict[str, str]:
    """The request's parameters, from the form body and the query string, each given once."""
    params: dict[str, str] = {}
    form = await request.post() if request.can_read_body else None
    sources = [request.query, *([form] if form is not None else [])]
    for source in sources:
        for key in set(source.keys()):
            values = source.getall(key)
            value = values[0]
            if len(values) != 1 or not isinstance(value, str) or params.get(key, value) != value:
                raise AlipayError("40002", "isv.invalid-parameter", f"参数 {key[:32]} 重复或无效")
            params[key] = value
    return params


def _beijing(at: datetime) -> str:
    return at.astimezone(BEIJING).strftime(_TIME)


async def serve_alipay(simulator: AlipaySimulator, host: str, port: int) -> web.AppRunner:
    """Serve ``simulator`` on ``host:port`` until the returned runner is cleaned up."""
    runner = web.AppRunner(simulator.app(), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def ensure_local_alipay_keys(settings: Settings) -> bool:
    """Unless real Alipay keys are configured, make (once) the app's key pair and the simulator's,
    2048-bit RSA, 0600 in the 0700 ``channel_key_dir``; whether the local keys are in use."""
    if settings.alipay_app_private_key_file or settings.alipay_public_key_file:
        return False
    folder = private_folder(settings.channel_key_dir)
    _key_pair(settings.alipay_app_key_path, folder / APP_PUBLIC_KEY, "Alipay app private key")
    _key_pair(
        folder / SIMULATOR_PRIVATE_KEY,
        settings.alipay_public_key_path,
        "Alipay simulator private key",
    )
    return True


def _key_pair(private_path: Path, public_path: Path, what: str) -> None:
    if not private_path.exists():
        write_secret_once(private_path, private_pem(new_private_key()))
    key = read_private_key(private_path, what)
    write_secret_once(public_path, public_pem(key.public_key()))
