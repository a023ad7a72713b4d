"""Local fakes of Alibaba Cloud SMS (Dysmsapi SendSms), Tencent Cloud SMS (SendSms) and a WeCom
group robot webhook, for the channel tests.

Each SMS fake checks the request signature with ITS OWN implementation of the provider's
documented algorithm (not the adapter's code); `tests/services/test_sms_providers.py` checks these
implementations against the providers' documented examples. A request with a bad signature gets
the provider's signature error. Faults can be injected per call; every accepted SMS is logged.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


# --- the fakes' own signature checks ------------------------------------------------------------

def aliyun_expected_signature(method: str, query: dict[str, str], secret: str) -> str:
    """Alibaba Cloud "signature mechanism" (RPC): sort, RFC 3986 encode, HMAC-SHA1 with `secret&`."""
    def enc(s: str) -> str:
        return urllib.parse.quote(s, safe="~").replace("%7E", "~")

    pairs = sorted((k, v) for k, v in query.items() if k != "Signature")
    canonical = "&".join(enc(k) + "=" + enc(v) for k, v in pairs)
    to_sign = method.upper() + "&" + enc("/") + "&" + enc(canonical)
    return base64.b64encode(hmac.new((secret + "&").encode("utf-8"), to_sign.encode("utf-8"), "sha1").digest()).decode()


def tencent_expected_signature(*, secret_key: str, method: str, host: str, content_type: str, payload: bytes,
                               timestamp: int, service: str) -> tuple[str, str, str]:
    """Tencent Cloud signature v3 (TC3-HMAC-SHA256). Returns (hashed canonical request, date, signature)."""
    canonical = (f"{method}\n/\n\ncontent-type:{content_type}\nhost:{host}\n\ncontent-type;host\n"
                 + hashlib.sha256(payload).hexdigest())
    hashed = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    date = time.strftime("%Y-%m-%d", time.gmtime(timestamp))
    to_sign = f"TC3-HMAC-SHA256\n{timestamp}\n{date}/{service}/tc3_request\n{hashed}"
    key = ("TC3" + secret_key).encode("utf-8")
    for part in (date, service, "tc3_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return hashed, date, hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass
class Sms:
    at: float
    phone: str
    template: str
    params: Any
    outcome: str       # ok | <error code> | dropped | bad-signature


@dataclass
class _Fake:
    # fault(phone, call_index) -> None | error code | "drop"
    fault: Callable[[str, int], str | None] | None = None
    calls: list[Sms] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                try:
                    fake._handle(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_POST = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def delivered(self) -> list[Sms]:
        with self._lock:
            return [c for c in self.calls if c.outcome == "ok"]

    def _log(self, phone: str, template: str, params: Any) -> tuple[int, str | None]:
        with self._lock:
            index = len(self.calls)
            outcome = self.fault(phone, index) if self.fault else None
            self.calls.append(Sms(time.monotonic(), phone, template, params, outcome or "ok"))
            return index, outcome

    def _mark(self, index: int, outcome: str) -> None:
        with self._lock:
            self.calls[index].outcome = outcome

    @staticmethod
    def _reply(handler, status: int, body: dict) -> None:
        raw = json.dumps(body, ensure_ascii=False).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(raw)))
        handler.end_headers()
        handler.wfile.write(raw)

    @staticmethod
    def _drop(handler) -> None:
        handler.close_connection = True
        handler.connection.close()


@dataclass
class FakeAliyunSms(_Fake):
    access_key_id: str = "LTAI-test-id"
    access_key_secret: str = "test-secret-aliyun"

    def _handle(self, handler) -> None:
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(handler.path).query, keep_blank_values=True))
        if query.get("AccessKeyId") != self.access_key_id or query.get("Signature") != aliyun_expected_signature(
                handler.command, query, self.access_key_secret):
            with self._lock:
                self.calls.append(Sms(time.monotonic(), query.get("PhoneNumbers", ""), "", None, "bad-signature"))
            return self._reply(handler, 400, {"Code": "SignatureDoesNotMatch", "Message": "Specified signature is not matched"})
        if query.get("Action") != "SendSms" or query.get("Version") != "2017-05-25":
            return self._reply(handler, 400, {"Code": "InvalidAction", "Message": "bad action"})
        phone = query["PhoneNumbers"]
        index, outcome = self._log(phone, query.get("TemplateCode", ""), json.loads(query.get("TemplateParam") or "{}"))
        if outcome == "drop":
            self._mark(index, "dropped")
            return self._drop(handler)
        if outcome:
            return self._reply(handler, 200, {"Code": outcome, "Message": outcome, "RequestId": f"r{index}"})
        return self._reply(handler, 200, {"Code": "OK", "Message": "OK", "BizId": f"biz{index}", "RequestId": f"r{index}"})


@dataclass
class FakeTencentSms(_Fake):
    secret_id: str = "AKID-test-id"
    secret_key: str = "test-secret-tencent"

    def _handle(self, handler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        payload = handler.rfile.read(length)
        auth = handler.headers.get("Authorization", "")
        try:
            ts = int(handler.headers.get("X-TC-Timestamp", "0"))
            _hashed, date, expected = tencent_expected_signature(
                secret_key=self.secret_key, method=handler.command, host=handler.headers.get("Host", ""),
                content_type=handler.headers.get("Content-Type", ""), payload=payload, timestamp=ts, service="sms")
            ok = auth == (f"TC3-HMAC-SHA256 Credential={self.secret_id}/{date}/sms/tc3_request, "
                          f"SignedHeaders=content-type;host, Signature={expected}")
        except ValueError:
            ok = False
        if not ok or handler.headers.get("X-TC-Action") != "SendSms":
            with self._lock:
                self.calls.append(Sms(time.monotonic(), "", "", None, "bad-signature"))
            return self._reply(handler, 200, {"Response": {"Error": {"Code": "AuthFailure.SignatureFailure",
                                                                     "Message": "signature mismatch"}, "RequestId": "x"}})
        body = json.loads(payload)
        phone = body["PhoneNumberSet"][0]
        index, outcome = self._log(phone, body.get("TemplateId", ""), body.get("TemplateParamSet"))
        if outcome == "drop":
            self._mark(index, "dropped")
            return self._drop(handler)
        status = {"SerialNo": f"sn{index}", "PhoneNumber": phone, "Fee": 1, "SessionContext": body.get("SessionContext", ""),
                  "Code": outcome or "Ok", "Message": outcome or "send success", "IsoCode": "CN"}
        return self._reply(handler, 200, {"Response": {"SendStatusSet": [status], "RequestId": f"r{index}"}})


@dataclass
class FakeWecomRobot(_Fake):
    """POST /cgi-bin/webhook/send?key=…: logs the text posts; `fault` may return an errcode."""

    def _handle(self, handler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = json.loads(handler.rfile.read(length) or b"{}")
        parts = urllib.parse.urlsplit(handler.path)
        key = dict(urllib.parse.parse_qsl(parts.query)).get("key", "")
        if parts.path != "/cgi-bin/webhook/send" or not key:
            return self._reply(handler, 200, {"errcode": 93000, "errmsg": "invalid webhook url"})
        text = (body.get("text") or {})
        index, outcome = self._log(key, body.get("msgtype", ""), text)
        if outcome:
            return self._reply(handler, 200, {"errcode": int(outcome), "errmsg": "injected"})
        if len(text.get("content", "").encode()) > 2048:
            self._mark(index, "too-long")
            return self._reply(handler, 200, {"errcode": 40058, "errmsg": "content exceed max length"})
        return self._reply(handler, 200, {"errcode": 0, "errmsg": "ok"})
