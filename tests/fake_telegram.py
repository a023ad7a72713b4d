"""A local fake of the Telegram Bot API, for end-to-end tests and the broadcast benchmark.

It speaks the few methods the bot uses (getMe, getUpdates, sendMessage, editMessageText,
answerCallbackQuery, setMyCommands, deleteWebhook…), queues updates the test injects, logs every
call with its arrival time, and can answer 429 with `retry_after` or drop the connection on
demand. Like Telegram it refuses a text over 4,096 characters, an edit that changes nothing
(400 "message is not modified") and a second answer to one callback query. It listens on
127.0.0.1 only.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs

BOT = {"id": 424242, "is_bot": True, "first_name": "平安马甲", "username": "pingan_test_bot",
       "can_join_groups": False, "can_read_all_group_messages": False, "supports_inline_queries": False}


@dataclass
class Call:
    at: float
    method: str
    params: dict[str, Any]
    outcome: str  # ok | 429 | dropped | 403 | 400


@dataclass
class FakeTelegram:
    token: str = "123456:TEST-token"
    # fault(method, params, call_index) -> None | "429" | "drop" | "403"
    fault: Callable[[str, dict, int], str | None] | None = None
    retry_after: int = 1
    calls: list[Call] = field(default_factory=list)
    _updates: list[dict] = field(default_factory=list)
    _next_update: int = 1
    _next_message: int = 1000
    _lock: threading.Condition = field(default_factory=threading.Condition)
    # (chat_id, message_id) -> (text, reply markup as canonical JSON or None): what each message shows
    _messages: dict[tuple[int, int], tuple[str, str | None]] = field(default_factory=dict)
    _answered: set[str] = field(default_factory=set)

    # --- what tests use ---------------------------------------------------------------------------
    def start(self) -> "FakeTelegram":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                try:
                    fake._handle(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client went away (a long poll cut short by shutdown)

            do_GET = do_POST

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def push_message(self, chat_id: int, text: str, *, username: str = "tester", user_id: int | None = None,
                     chat_type: str = "private") -> None:
        entities = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}] if text.startswith("/") else []
        self.push_update({"text": text, "entities": entities}, chat_id, username=username, user_id=user_id,
                         chat_type=chat_type)

    def push_update(self, content: dict, chat_id: int, *, username: str = "tester", user_id: int | None = None,
                    chat_type: str = "private") -> None:
        """A message of any kind (`content`: text, photo, sticker, voice, location, caption…)."""
        with self._lock:
            uid = self._next_update
            self._next_update += 1
            self._next_message += 1
            chat = {"id": chat_id, "type": chat_type}
            chat.update({"first_name": "测试"} if chat_type == "private" else {"title": "测试群"})
            self._updates.append({"update_id": uid, "message": {
                "message_id": self._next_message, "date": int(time.time()), **content, "chat": chat,
                "from": {"id": user_id or chat_id, "is_bot": False, "first_name": "测试", "username": username}}})
            self._lock.notify_all()

    def push_callback(self, chat_id: int, message_id: int, data: str, text: str = "", *, user_id: int | None = None,
                      chat_type: str = "private") -> None:
        with self._lock:
            uid = self._next_update
            self._next_update += 1
            self._messages.setdefault((chat_id, message_id), (text, None))
            current = self._messages[(chat_id, message_id)][0]
            self._updates.append({"update_id": uid, "callback_query": {
                "id": f"cb{uid}", "chat_instance": "ci", "data": data,
                "from": {"id": user_id or chat_id, "is_bot": False, "first_name": "测试"},
                "message": {"message_id": message_id, "date": int(time.time()), "text": current,
                            "chat": {"id": chat_id, "type": chat_type}}}})
            self._lock.notify_all()

    def find_message(self, chat_id: int, contains: str) -> int:
        """The id of the latest message in a chat whose text contains `contains`."""
        def found():
            with self._lock:
                ids = [mid for (chat, mid), (text, _m) in self._messages.items() if chat == chat_id and contains in text]
            return max(ids) if ids else None
        return self.wait_for(found)

    def markup(self, chat_id: int, message_id: int) -> dict | None:
        with self._lock:
            shown = self._messages.get((chat_id, message_id))
        return json.loads(shown[1]) if shown and shown[1] else None

    def message_text(self, chat_id: int, message_id: int) -> str | None:
        with self._lock:
            shown = self._messages.get((chat_id, message_id))
            return shown[0] if shown else None

    def sent(self, chat_id: int | None = None, method: str = "sendMessage") -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method and c.outcome == "ok"
                    and (chat_id is None or int(c.params.get("chat_id", 0)) == chat_id)]

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError("timed out waiting for the fake Telegram server")

    # --- the server side --------------------------------------------------------------------------
    def _reply(self, handler, status: int, body: dict, close: bool = False) -> None:
        raw = json.dumps(body, ensure_ascii=False).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(raw)))
        if close:
            handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(raw)

    def _handle(self, handler) -> None:
        arrived = time.monotonic()
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        if len(body) < length:  # the client died mid-request: like Telegram, accept nothing
            return
        raw = body.decode()
        path = handler.path.split("?")[0]
        method = path.rsplit("/", 1)[-1]
        if not path.startswith(f"/bot{self.token}/"):
            self._reply(handler, 401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
            return
        if handler.headers.get("Content-Type", "").startswith("application/json"):
            params = json.loads(raw or "{}")
        else:
            params = {k: v[0] for k, v in parse_qs(raw).items()}
        with self._lock:
            index = len([c for c in self.calls if c.method == method])
        verdict = self.fault(method, params, index) if self.fault and method == "sendMessage" else None
        if verdict == "drop":
            with self._lock:
                self.calls.append(Call(arrived, method, params, "dropped"))
            handler.close_connection = True
            try:
                handler.connection.shutdown(2)
            except OSError:
                pass
            return
        if verdict == "429":
            with self._lock:
                self.calls.append(Call(arrived, method, params, "429"))
            self._reply(handler, 429, {"ok": False, "error_code": 429,
                                       "description": f"Too Many Requests: retry after {self.retry_after}",
                                       "parameters": {"retry_after": self.retry_after}})
            return
        if verdict == "403":
            with self._lock:
                self.calls.append(Call(arrived, method, params, "403"))
            self._reply(handler, 403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"})
            return
        if method == "getUpdates":
            self._get_updates(handler, params, arrived)
            return
        refusal = self._refusal(method, params)
        if refusal:
            with self._lock:
                self.calls.append(Call(arrived, method, params, "400"))
            self._reply(handler, 400, {"ok": False, "error_code": 400, "description": refusal})
            return
        with self._lock:
            self.calls.append(Call(arrived, method, params, "ok"))
            result: Any = True
            if method == "getMe":
                result = BOT
            elif method in ("sendMessage", "editMessageText"):
                self._next_message += 1
                chat_id = int(params.get("chat_id", 0))
                mid = int(params.get("message_id", self._next_message))
                self._messages[(chat_id, mid)] = (params.get("text", ""), _markup_key(params.get("reply_markup")))
                result = {"message_id": mid, "date": int(time.time()),
                          "chat": {"id": chat_id, "type": "private"}, "text": params.get("text", "")}
                if params.get("reply_markup"):
                    markup = params["reply_markup"]
                    result["reply_markup"] = json.loads(markup) if isinstance(markup, str) else markup
            elif method == "getWebhookInfo":
                result = {"url": "", "has_custom_certificate": False, "pending_update_count": 0}
        self._reply(handler, 200, {"ok": True, "result": result})

    def _refusal(self, method: str, params: dict) -> str | None:
        """What Telegram would refuse with 400 (None: accept)."""
        if method in ("sendMessage", "editMessageText") and len(params.get("text", "")) > 4096:
            return "Bad Request: message is too long"
        with self._lock:
            if method == "editMessageText":
                key = (int(params.get("chat_id", 0)), int(params.get("message_id", 0)))
                if self._messages.get(key) == (params.get("text", ""), _markup_key(params.get("reply_markup"))):
                    return ("Bad Request: message is not modified: specified new message content and reply markup "
                            "are exactly the same as a current content and reply markup of the message")
            if method == "answerCallbackQuery":
                qid = str(params.get("callback_query_id"))
                if qid in self._answered:
                    return "Bad Request: query is too old and response timeout expired or query ID is invalid"
                self._answered.add(qid)
        return None

    def _get_updates(self, handler, params: dict, arrived: float) -> None:
        offset = int(params.get("offset") or 0)
        timeout = min(float(params.get("timeout") or 0), 1.0)
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                ready = [u for u in self._updates if u["update_id"] >= offset]
                remaining = deadline - time.monotonic()
                if ready or remaining <= 0:
                    break
                self._lock.wait(remaining)
            self.calls.append(Call(arrived, "getUpdates", params, "ok"))
        self._reply(handler, 200, {"ok": True, "result": ready})


def _markup_key(markup: Any) -> str | None:
    if not markup:
        return None
    value = json.loads(markup) if isinstance(markup, str) else markup
    if not value or not value.get("inline_keyboard"):
        return None
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def max_in_window(times: list[float], window: float = 1.0) -> int:
    """The largest number of events in any half-open window of `window` seconds."""
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best
