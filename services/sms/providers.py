"""SMS providers behind one small interface: Alibaba Cloud SMS (Dysmsapi `SendSms`) and Tencent
Cloud SMS (`SendSms` 2021-01-11), spoken over their documented HTTP APIs.

Why not the SDKs: each pulls in a large dependency tree for one call; the two signature schemes
(Alibaba's RPC HMAC-SHA1 "signature mechanism", Tencent's TC3-HMAC-SHA256 "signature v3") are a
few lines each. Credentials come from the environment only; the base URL is configurable so the
tests can aim the adapters at local fakes.

Each provider maps its refusal codes to "retry later" (rate limits, balance, a provider outage,
our own configuration) or "give up" (this number cannot get this SMS: the item moves on to the
next channel).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping, Protocol
from urllib.parse import quote, urlsplit

import httpx


@dataclass(frozen=True)
class SmsResult:
    ok: bool
    retry: bool = False            # not ok: try again later (True) or give up on this channel (False)
    code: str = ""
    message: str = ""
    external_id: str | None = None
    segments: int | None = None    # as billed by the provider, when it says


class SmsProvider(Protocol):
    name: str

    async def send(self, *, phone: str, sign_name: str, template_code: str, template: str,
                   params: dict[str, str], order: list[str], reference: str) -> SmsResult: ...

    async def close(self) -> None: ...


def e164(phone: str) -> str:
    """`+86…` for an 11-digit mainland number (what the roster stores); other input kept as given."""
    digits = "".join(c for c in phone if c.isdigit() or c == "+")
    if digits.startswith("+"):
        return digits
    if digits.startswith("0086"):
        return "+" + digits[2:]
    if len(digits) == 13 and digits.startswith("86"):
        return "+" + digits
    return "+86" + digits


# --- Alibaba Cloud --------------------------------------------------------------------------------

def aliyun_percent_encode(value: str) -> str:
    """RFC 3986 as Alibaba Cloud's signature mechanism defines it (space → %20, `~` kept)."""
    return quote(str(value), safe="-_.~")


def aliyun_rpc_signature(method: str, params: Mapping[str, str], secret: str) -> str:
    canonical = "&".join(f"{aliyun_percent_encode(k)}={aliyun_percent_encode(params[k])}" for k in sorted(params))
    string_to_sign = f"{method}&{aliyun_percent_encode('/')}&{aliyun_percent_encode(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


# Codes from the SendSms error-code list: these mean "not now", everything else "not this number".
ALIYUN_RETRY = {"isv.BUSINESS_LIMIT_CONTROL", "isv.AMOUNT_NOT_ENOUGH", "isv.OUT_OF_SERVICE", "Throttling",
                "Throttling.User", "isp.SYSTEM_ERROR", "isp.RAM_PERMISSION_DENY", "ServiceUnavailable",
                "InvalidAccessKeyId.NotFound", "SignatureDoesNotMatch", "isv.SMS_SIGNATURE_ILLEGAL",
                "isv.SMS_TEMPLATE_ILLEGAL", "isv.ACCOUNT_ABNORMAL", "isv.ACCOUNT_NOT_EXISTS",
                "InternalError", "SignatureNonceUsed"}


class AliyunSms:
    name = "aliyun"

    def __init__(self, *, access_key_id: str, access_key_secret: str, base_url: str = "https://dysmsapi.aliyuncs.com",
                 region: str = "cn-hangzhou", timeout: float = 10.0, client: httpx.AsyncClient | None = None) -> None:
        self.key_id, self.secret = access_key_id, access_key_secret
        self.base_url, self.region = base_url.rstrip("/") + "/", region
        self.client = client or httpx.AsyncClient(timeout=timeout)

    def signed_params(self, params: dict[str, str], *, now: datetime | None = None, nonce: str | None = None) -> dict[str, str]:
        full = {"AccessKeyId": self.key_id, "Format": "JSON", "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0",
                "SignatureNonce": nonce or uuid.uuid4().hex, "RegionId": self.region, "Version": "2017-05-25",
                "Timestamp": (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ"), **params}
        full["Signature"] = aliyun_rpc_signature("GET", full, self.secret)
        return full

    async def send(self, *, phone: str, sign_name: str, template_code: str, template: str,
                   params: dict[str, str], order: list[str], reference: str) -> SmsResult:
        number = e164(phone)
        query = self.signed_params({"Action": "SendSms", "PhoneNumbers": number[3:] if number.startswith("+86") else number[1:],
                                    "SignName": sign_name, "TemplateCode": template_code,
                                    "TemplateParam": json.dumps(params, ensure_ascii=False), "OutId": reference})
        url = self.base_url + "?" + "&".join(f"{aliyun_percent_encode(k)}={aliyun_percent_encode(v)}" for k, v in query.items())
        resp = await self.client.get(url)
        if resp.status_code >= 500:
            return SmsResult(False, True, f"HTTP {resp.status_code}", resp.text[:200])
        try:
            data: dict[str, Any] = resp.json()
        except ValueError:
            return SmsResult(False, True, f"HTTP {resp.status_code}", resp.text[:200])
        code = str(data.get("Code") or "")
        if code == "OK":
            return SmsResult(True, code=code, external_id=str(data.get("BizId") or "") or None)
        return SmsResult(False, code in ALIYUN_RETRY or resp.status_code == 429, code, str(data.get("Message") or ""))

    async def close(self) -> None:
        await self.client.aclose()


# --- Tencent Cloud --------------------------------------------------------------------------------

def tc3_signature(secret_key: str, date: str, service: str, string_to_sign: str) -> str:
    def sign(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    secret_signing = sign(sign(sign(("TC3" + secret_key).encode(), date), service), "tc3_request")
    return hmac.new(secret_signing, string_to_sign.encode(), hashlib.sha256).hexdigest()


TENCENT_RETRY_PREFIXES = ("LimitExceeded.PhoneNumberThirtySecondLimit", "LimitExceeded.PhoneNumberOneHourLimit",
                          "LimitExceeded.AppDailyLimit", "LimitExceeded.DeliveryFrequencyLimit",
                          "FailedOperation.InsufficientBalanceInSmsPackage", "InternalError", "RequestLimitExceeded",
                          "AuthFailure", "UnauthorizedOperation", "FailedOperation.SignatureIncorrectOrUnapproved",
                          "FailedOperation.TemplateIncorrectOrUnapproved", "FailedOperation.FailResolvePacket",
                          "ResourceUnavailable", "FailedOperation.JsonParseFail")


def tencent_retry(code: str) -> bool:
    return code.startswith(TENCENT_RETRY_PREFIXES)


class TencentSms:
    name = "tencent"
    service = "sms"
    version = "2021-01-11"

    def __init__(self, *, secret_id: str, secret_key: str, sdk_app_id: str, base_url: str = "https://sms.tencentcloudapi.com",
                 region: str = "ap-guangzhou", timeout: float = 10.0, client: httpx.AsyncClient | None = None) -> None:
        self.secret_id, self.secret_key, self.app_id = secret_id, secret_key, sdk_app_id
        self.base_url, self.region = base_url.rstrip("/") + "/", region
        self.client = client or httpx.AsyncClient(timeout=timeout)

    def headers(self, payload: str, *, timestamp: int | None = None) -> dict[str, str]:
        ts = int(timestamp if timestamp is not None else datetime.now(timezone.utc).timestamp())
        date = datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d")
        host = urlsplit(self.base_url).netloc
        content_type = "application/json; charset=utf-8"
        canonical = "\n".join(["POST", "/", "", f"content-type:{content_type}\nhost:{host}\n", "content-type;host",
                               hashlib.sha256(payload.encode()).hexdigest()])
        scope = f"{date}/{self.service}/tc3_request"
        string_to_sign = "\n".join(["TC3-HMAC-SHA256", str(ts), scope, hashlib.sha256(canonical.encode()).hexdigest()])
        signature = tc3_signature(self.secret_key, date, self.service, string_to_sign)
        return {"Authorization": f"TC3-HMAC-SHA256 Credential={self.secret_id}/{scope}, SignedHeaders=content-type;host, "
                                 f"Signature={signature}",
                "Content-Type": content_type, "Host": host, "X-TC-Action": "SendSms", "X-TC-Version": self.version,
                "X-TC-Timestamp": str(ts), "X-TC-Region": self.region}

    async def send(self, *, phone: str, sign_name: str, template_code: str, template: str,
                   params: dict[str, str], order: list[str], reference: str) -> SmsResult:
        payload = json.dumps({"PhoneNumberSet": [e164(phone)], "SmsSdkAppId": self.app_id, "SignName": sign_name,
                              "TemplateId": template_code, "TemplateParamSet": [params[name] for name in order],
                              "SessionContext": reference}, ensure_ascii=False)
        resp = await self.client.post(self.base_url, content=payload.encode(), headers=self.headers(payload))
        if resp.status_code >= 500:
            return SmsResult(False, True, f"HTTP {resp.status_code}", resp.text[:200])
        try:
            data = resp.json().get("Response") or {}
        except ValueError:
            return SmsResult(False, True, f"HTTP {resp.status_code}", resp.text[:200])
        if data.get("Error"):
            code = str(data["Error"].get("Code") or "")
            return SmsResult(False, tencent_retry(code) or not code.startswith(("InvalidParameterValue", "FailedOperation.Phone")),
                             code, str(data["Error"].get("Message") or ""))
        status = (data.get("SendStatusSet") or [{}])[0]
        code = str(status.get("Code") or "")
        if code.lower() == "ok":
            fee = status.get("Fee")
            return SmsResult(True, code=code, external_id=str(status.get("SerialNo") or "") or None,
                             segments=int(fee) if isinstance(fee, int) and fee > 0 else None)
        return SmsResult(False, tencent_retry(code), code, str(status.get("Message") or ""))

    async def close(self) -> None:
        await self.client.aclose()


def sms_configured(config: Mapping[str, Any]) -> bool:
    """Whether the environment names a provider with its credentials (what `provider_from_config`
    needs), without building a client: the sign-in page asks on every request."""
    name = str(config.get("SMS_PROVIDER") or "").lower()
    return (name == "aliyun" and bool(config.get("ALIBABA_CLOUD_ACCESS_KEY_ID"))) or \
        (name == "tencent" and bool(config.get("TENCENTCLOUD_SECRET_ID")))


def provider_from_config(config: Mapping[str, Any]) -> SmsProvider | None:
    """The provider the environment names (`SMS_PROVIDER`), or None when SMS is not set up."""
    name = str(config.get("SMS_PROVIDER") or "").lower()
    if name == "aliyun" and config.get("ALIBABA_CLOUD_ACCESS_KEY_ID"):
        return AliyunSms(access_key_id=config["ALIBABA_CLOUD_ACCESS_KEY_ID"],
                         access_key_secret=config["ALIBABA_CLOUD_ACCESS_KEY_SECRET"],
                         base_url=config.get("SMS_ALIYUN_BASE_URL") or "https://dysmsapi.aliyuncs.com")
    if name == "tencent" and config.get("TENCENTCLOUD_SECRET_ID"):
        return TencentSms(secret_id=config["TENCENTCLOUD_SECRET_ID"], secret_key=config["TENCENTCLOUD_SECRET_KEY"],
                          sdk_app_id=config.get("TENCENT_SMS_SDK_APP_ID") or "",
                          base_url=config.get("SMS_TENCENT_BASE_URL") or "https://sms.tencentcloudapi.com",
                          region=config.get("TENCENT_SMS_REGION") or "ap-guangzhou")
    return None
