"""The local Alipay gateway's checks of a request, as strict as Alipay's: the common parameters,
the RSA2 signature, then the method's ``biz_content``. A failed check is an ``AlipayError`` with
the code and sub_code Alipay answers it with."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from activities.alipay_signing import sign_content, verify

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
REFUND = "alipay.trade.refund"
QUERY = "alipay.trade.fastpay.refund.query"
METHODS = frozenset({REFUND, QUERY})
TIMESTAMP_SKEW = timedelta(minutes=15)
MAX_PARAM_CHARS = 1024
MAX_BIZ_CHARS = 16 * 1024
MESSAGES = {
    "10000": "Success",
    "20000": "Service Currently Unavailable",
    "40001": "Missing Required Arguments",
    "40002": "Invalid Arguments",
    "40004": "Business Failed",
}
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
_AMOUNT = re.compile(r"(0|[1-9]\d{0,8})(\.\d{1,2})?")
_REQUEST_NO = re.compile(r"[A-Za-z0-9_\-]{1,64}")
_COMMON = {
    "charset": "isv.missing-charset",
    "sign_type": "isv.missing-signature-type",
    "sign": "isv.missing-signature",
    "timestamp": "isv.missing-timestamp",
    "version": "isv.missing-version",
    "biz_content": "isv.missing-biz-content",
}


class AlipayError(Exception):
    """A request Alipay answers with an error; ``gateway`` ones go under ``error_response``."""

    def __init__(self, code: str, sub_code: str, sub_msg: str, *, gateway: bool = False) -> None:
        super().__init__(f"{code} {sub_code}")
        self.code = code
        self.sub_code = sub_code
        self.sub_msg = sub_msg
        self.gateway = gateway

    def answer(self) -> dict[str, str]:
        return {
            "code": self.code,
            "msg": MESSAGES.get(self.code, "Business Failed"),
            "sub_code": self.sub_code,
            "sub_msg": self.sub_msg,
        }


def business(sub_code: str, sub_msg: str) -> AlipayError:
    return AlipayError("40004", sub_code, sub_msg)


def invalid(sub_msg: str) -> AlipayError:
    return business("ACQ.INVALID_PARAMETER", f"参数无效: {sub_msg}")


@dataclass(frozen=True)
class RefundAsk:
    out_trade_no: str
    out_request_no: str | None
    amount: Decimal
    reason: str


@dataclass(frozen=True)
class QueryAsk:
    out_trade_no: str
    out_request_no: str
    options: frozenset[str]


def check_common(
    params: Mapping[str, str], app_id: str, app_key: rsa.RSAPublicKey, now: datetime
) -> str:
    """The request's method, once its common parameters and signature hold."""
    method = params.get("method", "")
    if not method:
        raise AlipayError("40001", "isv.missing-method", "缺少方法名参数", gateway=True)
    if method not in METHODS:
        raise AlipayError("40002", "isv.invalid-method", "不存在的方法名", gateway=True)
    if not params.get("app_id"):
        raise AlipayError("40001", "isv.missing-app-id", "缺少AppID参数", gateway=True)
    if params["app_id"] != app_id:
        raise AlipayError("40002", "isv.invalid-app-id", "无效的AppID参数", gateway=True)
    for name, sub_code in _COMMON.items():
        if not params.get(name):
            raise AlipayError("40001", sub_code, f"缺少参数 {name}")
    if any(len(v) > MAX_PARAM_CHARS for k, v in params.items() if k != "biz_content"):
        raise AlipayError("40002", "isv.invalid-parameter", "参数过长")
    if params["charset"].lower() != "utf-8":
        raise AlipayError("40002", "isv.invalid-charset", "字符集错误")
    if params["sign_type"] != "RSA2":
        raise AlipayError("40002", "isv.invalid-signature-type", "无效的签名类型")
    if params["version"] != "1.0":
        raise AlipayError("40002", "isv.invalid-version", "无效的版本号")
    if params.get("format", "JSON").upper() != "JSON":
        raise AlipayError("40002", "isv.invalid-format", "无效的数据格式")
    if not _fresh(params["timestamp"], now):
        raise AlipayError("40002", "isv.invalid-timestamp", "非法的时间戳参数")
    if not verify(sign_content(params), params["sign"], app_key):
        raise AlipayError("40002", "isv.invalid-signature", "验签出错")
    return method


def _fresh(timestamp: str, now: datetime) -> bool:
    if not _TIMESTAMP.fullmatch(timestamp):
        return False
    try:
        sent = datetime.strptime(timestamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
    except ValueError:
        return False
    return abs(now - sent) <= TIMESTAMP_SKEW


def refund_ask(biz_content: str) -> RefundAsk:
    biz = _biz(biz_content)
    amount_text = biz.get("refund_amount")
    if amount_text is None:
        raise AlipayError("40001", "isv.missing-refund-amount", "缺少参数 refund_amount")
    if not isinstance(amount_text, str) or not _AMOUNT.fullmatch(amount_text):
        raise invalid("refund_amount 须为单位为元、最多两位小数的金额")
    amount = Decimal(amount_text)
    if amount <= 0:
        raise invalid("refund_amount 须大于 0")
    reason = biz.get("refund_reason", "")
    if not isinstance(reason, str) or len(reason) > 256:
        raise invalid("refund_reason 最长 256 个字符")
    return RefundAsk(_trade(biz), _request_no(biz, required=False), amount, reason)


def query_ask(biz_content: str) -> QueryAsk:
    biz = _biz(biz_content)
    options = biz.get("query_options", [])
    if not isinstance(options, list) or len(options) > 10:
        raise invalid("query_options 须为字符串列表")
    if not all(isinstance(o, str) and len(o) <= 64 for o in options):
        raise invalid("query_options 须为字符串列表")
    request_no = _request_no(biz, required=True)
    assert request_no is not None
    return QueryAsk(_trade(biz), request_no, frozenset(options))


def _biz(text: str) -> dict[str, Any]:
    if len(text) > MAX_BIZ_CHARS:
        raise invalid("biz_content 过长")
    try:
        biz = json.loads(text, parse_float=str, parse_int=str)
    except (ValueError, RecursionError):
        raise invalid("biz_content 不是合法的 JSON") from None
    if not isinstance(biz, dict):
        raise invalid("biz_content 须为 JSON 对象")
    return biz


def _trade(biz: dict[str, Any]) -> str:
    trade = biz.get("out_trade_no")
    if trade is None:
        raise AlipayError("40001", "isv.missing-out-trade-no", "缺少参数 out_trade_no")
    if not isinstance(trade, str) or not 0 < len(trade) <= 64:
        raise invalid("out_trade_no 最长 64 个字符")
    return trade


def _request_no(biz: dict[str, Any], *, required: bool) -> str | None:
    value = biz.get("out_request_no")
    if value is None:
        if required:
            raise AlipayError("40001", "isv.missing-out-request-no", "缺少参数 out_request_no")
        return None
    if not isinstance(value, str) or not _REQUEST_NO.fullmatch(value):
        raise invalid("out_request_no 须为最长 64 位的字母、数字或下划线")
    return value
