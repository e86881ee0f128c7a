"""pyinbox: an airlock adapter written in Python.

A two-way HTTP inbox. A client posts messages to the adapter's route and
collects the session's replies from the same route:

    POST /                 {"chat": "ops", "user_id": "42", "text": "hello"}
                           -> 202 {"id": "m1"}
    GET  /replies?chat=ops -> 200 {"replies": [{"id": "r1", "text": "...",
                                                "reply_to": "m1", "format": "plain"}]}

Replies wait in the adapter's key/value store (granted by the host, bounded
by its quota) until they are collected; collecting them removes them. The
host checks the route's token before any request reaches this code, and
drops messages from senders nobody allowed.

Built with componentize-py against airlock's `inbound-adapter` world (see
build.sh); the bindings it generates are the `wit_world` package.
"""

import json
from urllib.parse import parse_qs, urlsplit

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import clock, kv, log
from wit_world.imports import types as t

PLATFORM = "pyinbox"
MAX_TEXT = 4000
MAX_CHAT = 64
MAX_REPLIES = 100


def _json_reply(status, value):
    body = json.dumps(value).encode()
    return t.HttpResponse(status, [("content-type", "application/json")], body)


def _no_events():
    return t.EventBatch([], None)


def _unsupported(what):
    return Err(t.AdapterError_Unsupported(f"{PLATFORM} does not {what}"))


def _next_id(kind):
    """The next id of `kind` ("m" inbound, "r" replies), kept in kv so that
    ids stay unique across restarts."""
    key = f"next/{kind}"
    stored = kv.get(key)
    number = int(stored.decode()) + 1 if stored else 1
    kv.set(key, str(number).encode())
    return f"{kind}{number}"


def _reply_prefix(chat):
    # Hex keeps one chat's keys apart from another whose id it starts with.
    return f"reply/{chat.encode().hex()}/"


def message_from(body, now_ms, message_id):
    """The chat message a posted body becomes, or a str saying why not."""
    try:
        posted = json.loads(body)
    except ValueError as e:
        return f'expected JSON {{"chat", "user_id", "text"}}: {e}'
    if not isinstance(posted, dict):
        return 'expected a JSON object {"chat", "user_id", "text"}'
    chat, user, text = (posted.get(k) for k in ("chat", "user_id", "text"))
    if not all(isinstance(v, str) for v in (chat, user, text)):
        return '"chat", "user_id" and "text" must all be strings'
    if not chat or not user:
        return '"chat" and "user_id" must not be empty'
    if len(chat) > MAX_CHAT:
        return f'"chat" must be at most {MAX_CHAT} characters'
    name = posted.get("user")
    return t.InboundMessage(
        chat=t.Chat(chat, t.ChatKind.DIRECT, None, None),
        sender=t.Sender(user, None, name if isinstance(name, str) else None, False),
        message_id=message_id,
        text=text,
        ts_ms=now_ms,
        reply_to=None,
        mentions_bot=True,
        attachments=[],
        edited=False,
    )


class ChannelAdapter(exports.ChannelAdapter):
    def describe(self):
        return t.Description(
            platform=PLATFORM,
            limits=t.Limits(MAX_TEXT, t.ChunkMode.NEWLINE, 0, 0),
            features=t.Features(0),
            instructions=[
                "pyinbox chats are HTTP clients: a reply waits until the "
                "client collects it, so it may be read some time later."
            ],
        )

    def start(self, settings):
        log.log(log.Level.INFO, f"{PLATFORM} started")

    def poll_request(self, cursor):
        return None

    def on_poll_response(self, response):
        raise _unsupported("poll")

    def on_ws_event(self, conn, event):
        raise _unsupported("open websockets")

    def on_timer(self, name):
        return _no_events()

    def on_http_request(self, request):
        url = urlsplit(request.path)
        if request.method == "POST" and url.path == "/":
            message = message_from(bytes(request.body), clock.now_ms(), "")
            if isinstance(message, str):
                return t.IncomingReply(_json_reply(400, {"error": message}), _no_events())
            message.message_id = _next_id("m")
            return t.IncomingReply(
                _json_reply(202, {"id": message.message_id}),
                t.EventBatch([t.InboundEvent_Message(message)], None),
            )
        if request.method == "GET" and url.path == "/replies":
            chat = parse_qs(url.query).get("chat", [""])[0]
            if not chat:
                return t.IncomingReply(
                    _json_reply(400, {"error": "say which chat: /replies?chat=ID"}),
                    _no_events(),
                )
            return t.IncomingReply(_json_reply(200, {"replies": self._collect(chat)}), _no_events())
        return t.IncomingReply(
            _json_reply(404, {"error": "POST / to send, GET /replies?chat=ID to collect"}),
            _no_events(),
        )

    def _collect(self, chat):
        replies = []
        # Keys sort by their zero-padded sequence, so this is oldest first.
        for key in kv.list_keys(_reply_prefix(chat))[:MAX_REPLIES]:
            stored = kv.get(key)
            if stored is not None:
                replies.append(json.loads(stored))
            kv.delete(key)
        return replies

    def send(self, message):
        reply_id = _next_id("r")
        stored = {
            "id": reply_id,
            "text": message.text,
            "reply_to": message.reply_to,
            "format": message.format.name.lower(),
        }
        key = f"{_reply_prefix(message.chat_id)}{int(reply_id[1:]):012d}"
        try:
            kv.set(key, json.dumps(stored).encode())
        except Err as e:
            # Typically the quota: replies nobody collects fill it.
            raise Err(t.AdapterError_Platform(f"cannot keep the reply until it is collected: {e.value}"))
        return t.Sent([reply_id])

    def react(self, request):
        raise _unsupported("react")

    def edit(self, request):
        raise _unsupported("edit")

    def typing(self, chat_id):
        raise _unsupported("show typing")

    def fetch_history(self, request):
        raise _unsupported("keep history")

    def download_attachment(self, request):
        raise _unsupported("take attachments")
