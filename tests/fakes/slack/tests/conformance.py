"""The fake Slack, checked by Slack's own Python SDK (slack_sdk).

Run by conformance.rs with the fake's base URL and its two tokens:

    python conformance.py http://127.0.0.1:PORT xapp-... xoxb-...

The WebClient and the built-in SocketModeClient are pointed at the fake
and used as an app would use them against Slack; the script drives the
workspace through the fake's control endpoints (/_fake/...) and asserts
what the SDK sees. It prints one line per check and exits non-zero on the
first that fails.
"""

import json
import sys
import threading
import time
import urllib.request

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.socket_mode import SocketModeClient
from slack_sdk.socket_mode.response import SocketModeResponse

BASE, APP_TOKEN, BOT_TOKEN = sys.argv[1:4]
BOT_USER = "U0BOT00001"
CHANNEL, DM, PERSON = "C0GENERAL1", "D0PERSON01", "U0PERSON01"


def control(path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{BASE}/_fake/{path}",
        data=data,
        headers={"content-type": "application/json"},
        method="GET" if body is None else "POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def check(name):
    print(f"ok  {name}", flush=True)


def api_error(call):
    try:
        call()
    except SlackApiError as e:
        return e.response
    raise AssertionError("expected a SlackApiError")


def wait_for(what, predicate, seconds=10):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


web = WebClient(token=BOT_TOKEN, base_url=f"{BASE}/api/")

# --- Web API --------------------------------------------------------------
me = web.auth_test()
assert me["ok"] and me["user_id"] == BOT_USER, me.data
check("auth.test names the bot")

blocks = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "*Deploy?*"}},
    {
        "type": "actions",
        "block_id": "choice",
        "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Yes"}, "action_id": "yes", "value": "deploy:yes"},
            {"type": "button", "text": {"type": "plain_text", "text": "No"}, "action_id": "no", "value": "deploy:no"},
        ],
    },
]
posted = web.chat_postMessage(channel=CHANNEL, text="Deploy?", blocks=blocks)
assert posted["channel"] == CHANNEL and posted["message"]["bot_id"], posted.data
ts = posted["ts"]
reply = web.chat_postMessage(channel=CHANNEL, text="in the thread", thread_ts=ts)
assert reply["message"]["thread_ts"] == ts, reply.data
check("chat.postMessage with blocks, and in a thread")

updated = web.chat_update(channel=CHANNEL, ts=ts, text="Deployed.")
assert updated["text"] == "Deployed." and "blocks" not in updated["message"], updated.data
check("chat.update replaces the text and drops the buttons")

web.reactions_add(channel=CHANNEL, timestamp=ts, name="white_check_mark")
again = api_error(lambda: web.reactions_add(channel=CHANNEL, timestamp=ts, name="white_check_mark"))
assert again["error"] == "already_reacted", again.data
check("reactions.add, then already_reacted")

for i in range(3):
    web.chat_postMessage(channel=CHANNEL, text=f"page {i}")
first = web.conversations_history(channel=CHANNEL, limit=2)
assert [m["text"] for m in first["messages"]] == ["page 2", "page 1"], first.data
assert first["has_more"] and first["response_metadata"]["next_cursor"], first.data
texts = []
for page in web.conversations_history(channel=CHANNEL, limit=2):
    texts += [m["text"] for m in page["messages"]]
assert texts == ["page 2", "page 1", "page 0", "Deployed."], texts
thread = web.conversations_replies(channel=CHANNEL, ts=ts)
assert [m["text"] for m in thread["messages"]] == ["Deployed.", "in the thread"], thread.data
check("conversations.history pages newest first through the SDK's cursor iterator; replies")

for call, code in [
    (lambda: web.chat_postMessage(channel="C0NOWHERE", text="x"), "channel_not_found"),
    (lambda: web.chat_postMessage(channel=CHANNEL, text=""), "no_text"),
    (lambda: WebClient(token="xoxb-wrong", base_url=f"{BASE}/api/").auth_test(), "invalid_auth"),
    (lambda: WebClient(token=APP_TOKEN, base_url=f"{BASE}/api/").chat_postMessage(channel=CHANNEL, text="x"), "not_allowed_token_type"),
    (lambda: web.apps_connections_open(app_token=BOT_TOKEN), "not_allowed_token_type"),
]:
    response = api_error(call)
    assert response.status_code == 200 and response["error"] == code, (code, response.data)
check("errors: channel_not_found, no_text, invalid_auth, not_allowed_token_type both ways")

control("fault", {"method": "chat.postMessage", "error": "missing_scope", "needed": "chat:write", "provided": "channels:history"})
response = api_error(lambda: web.chat_postMessage(channel=CHANNEL, text="x"))
assert response["error"] == "missing_scope" and response["needed"] == "chat:write", response.data
check("missing_scope names the scope needed")

control("fault", {"method": "chat.postMessage", "ratelimited": 1})
response = api_error(lambda: web.chat_postMessage(channel=CHANNEL, text="x"))
assert response.status_code == 429 and response.headers["retry-after"] in ("1", ["1"]), response.headers
control("fault", {"method": "chat.postMessage", "ratelimited": 1})
patient = WebClient(token=BOT_TOKEN, base_url=f"{BASE}/api/", retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)])
started = time.time()
assert patient.chat_postMessage(channel=CHANNEL, text="after the wait")["ok"]
assert time.time() - started >= 0.9, "the SDK did not wait out Retry-After"
check("ratelimited is a 429 with Retry-After, which the SDK's retry handler waits out")

upload = web.files_upload_v2(channel=CHANNEL, content=b"line one\nline two\n", filename="notes.txt", title="Notes", initial_comment="the notes")
file_id = upload["file"]["id"]
methods = [c["method"] for c in control("state")["calls"]]
assert "files.getUploadURLExternal" in methods and "files.completeUploadExternal" in methods, methods
shared = web.conversations_history(channel=CHANNEL, limit=1)["messages"][0]
assert shared["text"] == "the notes" and shared["files"][0]["id"] == file_id, shared
url = shared["files"][0]["url_private_download"]
with urllib.request.urlopen(urllib.request.Request(url, headers={"Authorization": f"Bearer {BOT_TOKEN}"})) as r:
    assert r.read() == b"line one\nline two\n"
with urllib.request.urlopen(url) as r:
    assert r.headers["content-type"].startswith("text/html"), r.headers
check("files_upload_v2 (external upload flow), then a download with the bot token; without it, HTML")

# --- Socket Mode ----------------------------------------------------------
received = []
lock = threading.Lock()


def on_request(client, request):
    client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))
    with lock:
        received.append(request)


socket = SocketModeClient(app_token=APP_TOKEN, web_client=WebClient(base_url=f"{BASE}/api/"), ping_interval=1)
socket.socket_mode_request_listeners.append(on_request)
socket.connect()
wait_for("the connection", lambda: control("state")["connected"])


def events_of(kind):
    with lock:
        return [r.payload["event"] for r in received if r.type == "events_api" and r.payload["event"]["type"] == kind]


mention = control("post", {"channel": CHANNEL, "user": PERSON, "text": f"<@{BOT_USER}> status?"})["ts"]
wait_for("message and app_mention", lambda: events_of("app_mention") and any(e.get("ts") == mention for e in events_of("message")))
assert events_of("app_mention")[0]["text"] == f"<@{BOT_USER}> status?"
wait_for("acks", lambda: not control("state")["pending"])
check("a mention arrives as message and app_mention envelopes, each acknowledged")

pressed = control("press", {"channel": CHANNEL, "ts": posted["ts"], "user": PERSON, "action_id": "yes"})
assert pressed["envelope_id"] is None, "the buttons were removed by chat.update"
fresh = web.chat_postMessage(channel=CHANNEL, text="Again?", blocks=blocks)["ts"]
control("press", {"channel": CHANNEL, "ts": fresh, "user": PERSON, "action_id": "no"})
interactive = wait_for("block_actions", lambda: [r for r in list(received) if r.type == "interactive"])
assert interactive[0].payload["actions"][0]["value"] == "deploy:no", interactive[0].payload
check("a button press arrives as a block_actions envelope with the button's value")

control("disconnect", {"reason": "refresh_requested", "grace_ms": 100})
wait_for("a second connection", lambda: control("state")["connections"] >= 2 and control("state")["connected"], 15)
after = control("post", {"channel": DM, "user": PERSON, "text": "still there?"})["ts"]
wait_for("the DM after reconnecting", lambda: any(e.get("ts") == after and e.get("channel_type") == "im" for e in events_of("message")))
opens = [c["token_kind"] for c in control("state")["calls"] if c["method"] == "apps.connections.open"]
# The first was the deliberate call with the bot token, refused above.
assert opens[0] == "bot" and opens[1:].count("app") >= 2 and "bot" not in opens[1:], opens
check("disconnect (refresh_requested): the SDK opens a new URL with the app token and carries on")

socket.close()
print("all checks passed", flush=True)
