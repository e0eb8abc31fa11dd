"""hubbub with the official python-socketio client and a TCP line client in the same rooms.

Each transport mode gets its own server (started from $HUBBUB_BIN, default
target/debug/hubbub, on free ports) and runs one scenario step by step.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
import socketio

REPO_ROOT = Path(__file__).resolve().parents[3]
HUBBUB_BIN = (REPO_ROOT / os.environ.get("HUBBUB_BIN", "target/debug/hubbub")).resolve()
LISTENING = re.compile(r"hubbub listening\b.*\btcp=(\S+).*\bhttp=(\S+)")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
WAIT = 5.0

# Every wait below has a deadline, and each test is cut off after TEST_LIMIT seconds
# (SIGALRM, so fixtures still stop the server).
SCENARIO_LIMIT = 60.0
TEST_LIMIT = 90


@pytest.fixture(autouse=True)
def time_limit():
    def expired(signum, frame):
        raise TimeoutError(f"test took longer than {TEST_LIMIT} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(TEST_LIMIT)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


class Server:
    def __init__(self, tcp_addr="127.0.0.1:0", http_addr="127.0.0.1:0", data_dir=None):
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="hubbub-pytest-")
        self.proc = subprocess.Popen(
            [str(HUBBUB_BIN), "--tcp-addr", tcp_addr, "--http-addr", http_addr,
             "--admin-addr", "127.0.0.1:0",
             "--flood-rate", "0", "--data-dir", self.data_dir, "--shutdown-grace", "1"],
            cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, env={**os.environ, "NO_COLOR": "1"},
        )
        self.log = []
        self.addrs = None
        found = threading.Event()

        def read():
            for raw in self.proc.stderr:
                line = ANSI.sub("", raw.decode("utf-8", "replace"))
                self.log.append(line)
                m = LISTENING.search(line)
                if m and not found.is_set():
                    self.addrs = (m.group(1), m.group(2))
                    found.set()
            found.set()

        threading.Thread(target=read, daemon=True).start()
        if not found.wait(15) or self.addrs is None:
            self.stop()
            raise RuntimeError("hubbub did not log 'hubbub listening tcp=… http=…':\n" + "".join(self.log))
        host, _, port = self.addrs[0].rpartition(":")
        self.tcp = (host, int(port))
        self.url = "http://" + self.addrs[1]

    def stop(self, keep_data=False):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(8)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if not keep_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)


class LineClient:
    """TCP line-protocol client recording every line it receives."""

    def __init__(self, addr):
        self.sock = socket.create_connection(addr, timeout=WAIT)
        self.sock.settimeout(None)
        self.lines = []
        self.cond = threading.Condition()
        self.closed = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        buf = b""
        try:
            while True:
                chunk = self.sock.recv(4096)
                if not chunk:
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    with self.cond:
                        self.lines.append(line.decode("utf-8"))
                        self.cond.notify_all()
        except OSError:
            pass
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def send(self, line):
        self.sock.sendall(line.encode("utf-8") + b"\n")

    def mark(self):
        with self.cond:
            return len(self.lines)

    def wait_for(self, match, since=0, timeout=WAIT):
        test = (lambda l: l == match) if isinstance(match, str) else match.search
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines[since:]:
                    if test(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    raise AssertionError(f"TCP client: no line {match!r}; lines: {self.lines!r}")
                self.cond.wait(left)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class EventLog:
    """Records every event a socketio.Client receives (catch-all handler)."""

    def __init__(self, sio):
        self.events = []
        self.cond = threading.Condition()

        def on_any(event, *args):
            with self.cond:
                self.events.append((event, args))
                self.cond.notify_all()

        sio.on("*", on_any)

    def mark(self):
        with self.cond:
            return len(self.events)

    def wait_for(self, event, pred=lambda _: True, since=0, timeout=WAIT):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for name, args in self.events[since:]:
                    if name == event and pred(args[0] if args else None):
                        return args[0] if args else None
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {event!r} event; events: {self.events!r}")
                self.cond.wait(left)


MODES = {
    "websocket": {"transports": ["websocket"]},
    "polling": {"transports": ["polling"]},
    "polling-upgrade": {"transports": ["polling", "websocket"]},
}


@pytest.fixture
def server():
    s = Server()
    yield s
    s.stop()


@pytest.mark.parametrize("mode", list(MODES))
def test_python_socketio_with_tcp_client(server, mode):
    started = time.monotonic()
    tcp = LineClient(server.tcp)
    sio = socketio.Client(reconnection=False)
    log = EventLog(sio)
    try:
        you = tcp.wait_for(re.compile(r"^You are "))
        tcp_addr = you[len("You are "):]
        assert re.fullmatch(r"127\.0\.0\.1:\d+", tcp_addr)
        tcp.send("/nick tina")
        tcp.wait_for(f"{tcp_addr} is now known as tina")

        # connect; `welcome` comes first
        t = tcp.mark()
        sio.connect(server.url, transports=MODES[mode]["transports"], wait_timeout=10)
        welcome = log.wait_for("welcome")
        assert log.events[0][0] == "welcome"
        assert welcome["room"] == "lobby"
        assert re.fullmatch(r"guest-\d+", welcome["nick"])
        guest = welcome["nick"]
        tcp.wait_for(f"{guest} has joined us", since=t)

        # transport
        if mode == "polling":
            assert sio.transport() == "polling"
        else:
            deadline = time.monotonic() + 10
            while sio.transport() != "websocket" and time.monotonic() < deadline:
                time.sleep(0.05)
            assert sio.transport() == "websocket"

        # set nickname → ack {ok:{nick}} + `nickname ready`; TCP sees the rename
        e, t = log.mark(), tcp.mark()
        assert sio.call("set nickname", "sam", timeout=WAIT) == {"ok": {"nick": "sam"}}
        log.wait_for("nickname ready", since=e)
        tcp.wait_for(f"{guest} is now known as sam", since=t)

        # seed chat → notice to the socket, `sam: hi` to TCP
        e, t = log.mark(), tcp.mark()
        sio.emit("chat", {"message": "hi"})
        assert log.wait_for("notice", lambda n: n.get("message") == "sam:hi", since=e) == {"message": "sam:hi"}
        msg = log.wait_for("message", lambda m: m.get("text") == "hi", since=e)
        assert (msg["from"], msg["room"]) == ("sam", "lobby")
        tcp.wait_for("sam: hi", since=t)

        # TCP line → `message` and `notice`
        e = log.mark()
        tcp.send("hello from tcp")
        msg = log.wait_for("message", lambda m: m.get("text") == "hello from tcp", since=e)
        assert (msg["from"], msg["room"]) == ("tina", "lobby")
        assert isinstance(msg["id"], int) and isinstance(msg["ts"], int)
        assert abs(msg["ts"] - time.time() * 1000) < 60000
        assert log.wait_for("notice", lambda n: n.get("message") == "tina:hello from tcp", since=e) == {
            "message": "tina:hello from tcp"}

        # message with ack
        e, t = log.mark(), tcp.mark()
        res = sio.call("message", {"room": "lobby", "text": "via message"}, timeout=WAIT)
        assert res["ok"]["room"] == "lobby" and isinstance(res["ok"]["id"], int)
        echo = log.wait_for("message", lambda m: m.get("text") == "via message", since=e)
        assert echo["id"] == res["ok"]["id"] and echo["from"] == "sam"
        tcp.wait_for("sam: via message", since=t)

        # join with ack returns members; TCP user sees the join
        t = tcp.mark()
        tcp.send("/join games")
        tcp.wait_for(re.compile(r"^\* you are now in games\b"), since=t)
        e = log.mark()
        res = sio.call("join", {"room": "games"}, timeout=WAIT)
        assert res["ok"]["room"] == "games"
        assert sorted(res["ok"]["members"]) == ["sam", "tina"]
        tcp.wait_for("sam has joined us", since=t)
        rooms = sio.call("rooms", timeout=WAIT)["ok"]
        assert {"name": "games", "members": 2} in rooms
        t = tcp.mark()
        sio.call("message", {"room": "games", "text": "in games"}, timeout=WAIT)
        tcp.wait_for("sam: in games", since=t)
        tcp.send("tcp in games")
        m = log.wait_for("message", lambda x: x.get("text") == "tcp in games", since=e)
        assert (m["room"], m["from"]) == ("games", "tina")

        # private both ways
        t = tcp.mark()
        res = sio.call("private", {"to": "tina", "text": "psst, tina"}, timeout=WAIT)
        assert res["ok"]["to"] == "tina"
        tcp.wait_for("*sam* psst, tina", since=t)
        e = log.mark()
        tcp.send("/msg sam hi back")
        tcp.wait_for("-> *sam* hi back", since=t)
        p = log.wait_for("private", since=e)
        assert (p["from"], p["to"], p["text"]) == ("tina", "sam", "hi back")

        # errors: ack {error} with a callback, `error` event without
        res = sio.call("set nickname", "TINA", timeout=WAIT)
        assert res["error"]["code"] == "nick_in_use", res
        e = log.mark()
        sio.emit("set nickname", "tina")
        assert log.wait_for("error", since=e)["code"] == "nick_in_use"
        assert sio.call("message", {"room": "nowhere", "text": "x"}, timeout=WAIT)["error"]["code"] == "not_in_room"
        assert sio.call("join", {"room": "bad room!"}, timeout=WAIT)["error"]["code"] == "invalid_room"
        assert sio.call("private", {"to": "nobody-here", "text": "x"}, timeout=WAIT)["error"]["code"] == "no_such_nick"
        assert sorted(sio.call("members", "games", timeout=WAIT)["ok"]["members"]) == ["sam", "tina"]

        # leave; TCP user quitting is a `left` event
        t = tcp.mark()
        assert sio.call("leave", {"room": "games"}, timeout=WAIT) == {"ok": {"room": "games"}}
        tcp.wait_for("sam has left", since=t)
        assert sio.call("join", "games", timeout=WAIT)["ok"]["room"] == "games"
        e = log.mark()
        tcp.send("/quit gotta go")
        tcp.wait_for("* bye", since=t)
        left = log.wait_for("left", lambda l: l.get("nick") == "tina", since=e)
        assert left["room"] == "games"

        assert time.monotonic() - started < SCENARIO_LIMIT
    finally:
        try:
            sio.disconnect()
        except Exception:
            pass
        tcp.close()


def _connect(server, mode):
    sio = socketio.Client(reconnection=False)
    log = EventLog(sio)
    sio.connect(server.url, transports=MODES[mode]["transports"], wait_timeout=10)
    log.wait_for("welcome")
    return sio, log


@pytest.mark.parametrize("mode", ["websocket", "polling"])
def test_nickname_ready_has_no_arguments(server, mode):
    """PROTOCOL.md: `set nickname` → the server emits `nickname ready` (no arguments)."""
    sio, log = _connect(server, mode)
    try:
        e = log.mark()
        sio.emit("set nickname", "nora")
        log.wait_for("nickname ready", since=e)
        with log.cond:
            args = [a for name, a in log.events[e:] if name == "nickname ready"][0]
        assert args == (), f"`nickname ready` carried arguments {args!r}"
    finally:
        sio.disconnect()


@pytest.mark.parametrize("mode", ["websocket", "polling"])
def test_join_of_a_joined_room_makes_it_current(server, mode):
    """`join` of a room the socket is in makes it current again: seed `chat` goes there.

    Not spelled out in PROTOCOL.md; the hub documents it (Session::enter)."""
    sio, log = _connect(server, mode)
    try:
        assert sio.call("join", "games", timeout=WAIT)["ok"]["room"] == "games"
        res = sio.call("join", {"room": "lobby"}, timeout=WAIT)
        assert res["ok"]["room"] == "lobby", res
        e = log.mark()
        sio.emit("chat", {"message": "to lobby"})
        assert log.wait_for("message", lambda m: m.get("text") == "to lobby", since=e)["room"] == "lobby"
        res = sio.call("join", "games", timeout=WAIT)
        assert res["ok"]["room"] == "games", res
        sio.emit("chat", {"message": "to games"})
        assert log.wait_for("message", lambda m: m.get("text") == "to games", since=e)["room"] == "games"
    finally:
        sio.disconnect()


@pytest.mark.parametrize("mode", ["polling", "websocket"])
def test_a_burst_of_long_messages_all_arrive(server, mode):
    """python-socketio batches what it queued into one polling POST, however
    large (it ignores maxPayload): the server takes the whole body, one
    bounded packet at a time, and every message arrives."""
    sio, log = _connect(server, mode)
    watcher = LineClient(server.tcp)
    try:
        watcher.wait_for(re.compile(r"^You are "))
        e = log.mark()
        texts = [f"{i:02d} " + "x" * 3000 for i in range(20)]
        for text in texts:
            sio.emit("chat", {"message": text})
        for text in texts:
            log.wait_for("message", lambda m, t=text: m.get("text") == t, since=e, timeout=10)
        # Still connected and talking.
        assert sio.call("rooms", timeout=WAIT)["ok"]
    finally:
        sio.disconnect()
        watcher.close()


@pytest.mark.parametrize("mode", ["websocket", "polling-upgrade"])
def test_python_socketio_reconnects_by_itself_after_a_restart(mode):
    """At shutdown hubbub closes only the transport (after `closing`), so the
    client reconnects; a Socket.IO DISCONNECT would be final for it."""
    first = Server()
    second = None
    # Slow to come back, so that the new server has a message first.
    sio = socketio.Client(reconnection=True, reconnection_delay=1.5, reconnection_delay_max=1.5,
                          randomization_factor=0)
    log = EventLog(sio)
    try:
        sio.connect(first.url, transports=MODES[mode]["transports"],
                    auth={"vocabulary": "hubbub"}, wait_timeout=WAIT)
        log.wait_for("welcome")
        before = LineClient(first.tcp)
        before.wait_for(re.compile(r"^You are "))
        before.send("before the restart")
        seen = log.wait_for("message", lambda m: m and m["text"] == "before the restart")
        before.close()
        tcp_addr, http_addr = first.addrs
        first.stop(keep_data=True)
        assert "shutting down" in log.wait_for("closing")["reason"]
        mark = log.mark()
        for attempt in range(20):
            try:
                second = Server(tcp_addr=tcp_addr, http_addr=http_addr, data_dir=first.data_dir)
                break
            except RuntimeError:
                if attempt == 19:
                    raise
                time.sleep(0.25)
        writer = LineClient(second.tcp)
        writer.wait_for(re.compile(r"^You are "))
        writer.send("while you were away")
        writer.wait_for(re.compile(r": while you were away$"))
        log.wait_for("welcome", since=mark, timeout=15)
        # python-socketio sets `connected` when its reconnect call returns,
        # which may be just after the first event arrived.
        deadline = time.monotonic() + WAIT
        while not sio.connected and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sio.connected
        # The lobby's recent messages come with the welcome; then resuming
        # from the last id seen brings exactly what was missed.
        log.wait_for("history", lambda h: h and h["room"] == "lobby", since=mark)
        resumed = log.mark()
        joined = sio.call("join", {"room": "lobby", "since": seen["id"]}, timeout=WAIT)
        assert joined["ok"]["last_id"] == seen["id"] + 1, joined
        history = log.wait_for("history", lambda h: h and h["room"] == "lobby", since=resumed)
        assert [(m["id"], m["text"]) for m in history["messages"]] == [
            (seen["id"] + 1, "while you were away")]
        writer.close()
    finally:
        sio.disconnect()
        if second is not None:
            second.stop(keep_data=True)
        first.stop()  # removes the data directory both used
