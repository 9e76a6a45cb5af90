# The one connection a host-simulated lock keeps to the virtual air (tools/air.py, docs/air.md).
# Shared by the `bluetooth` and `machine` stand-ins: one process is one radio with its pins.
# Runs under the MicroPython unix port (also imports under CPython, for tooling).
#
# Environment:  AIR       hub address "HOST:PORT" (or just "PORT" on 127.0.0.1); unset: no air
#               AIR_ADDR  this radio's address, 12 hex digits (colons allowed); unset: the hub picks one
#               AIR_NAME  a label shown by the hub (optional)
#               AIR_DEBUG=1  print the hub's error replies (otherwise ignored, as the board has no such channel)
#
# Delivery: an asyncio task reads the socket and calls the registered handlers, one message at a time, in the
# firmware's own event loop (see docs/air.md, "How the stand-in raises IRQs"). Sends are synchronous.
import binascii
import errno
import json
import os
import socket
import sys

try:
    import asyncio
except ImportError:  # pragma: no cover
    asyncio = None

_READ_CHUNK = 4096

_link = None
_DEBUG = os.getenv("AIR_DEBUG") == "1"


class AirLink:
    def __init__(self, hub, addr=None, name=""):
        host, _, port = hub.rpartition(":")
        if host in ("", "localhost"):  # the hub listens on IPv4 loopback; "localhost" may resolve to ::1 first
            host = "127.0.0.1"
        ai = socket.getaddrinfo(host, int(port))[0]
        self.sock = socket.socket(ai[0], socket.SOCK_STREAM)
        self.sock.connect(ai[-1])
        self.handlers = {}  # op -> fn(msg)
        self.closed = False
        self._buf = b""
        self._queue = None  # the asyncio task queue our reader runs in; None until the hub welcomed us
        hello = {"op": "hello", "name": name}
        if addr:
            hello["addr"] = addr
        self.send(hello)
        welcome = self._read_line_blocking()
        if welcome.get("op") != "welcome":
            self.sock.close()
            raise OSError("air refused us: %s" % welcome.get("reason"))
        self.addr = unhex(welcome["addr"])
        self.addr_type = welcome["addr_type"]
        self.sock.setblocking(False)
        self._ensure_reader(True)

    def _ensure_reader(self, first=False):
        # The reader task lives in asyncio's task queue; asyncio.new_event_loop() replaces that queue (dropping
        # the task), so start a new reader in the current one. (MicroPython's asyncio keeps it in core.)
        if self._queue is None and not first:
            return  # still saying hello
        q = getattr(getattr(asyncio, "core", None), "_task_queue", None)
        if first or (q is not None and q is not self._queue):
            self._queue = q if q is not None else True
            asyncio.create_task(self._reader())

    def _read_line_blocking(self):
        while b"\n" not in self._buf:
            chunk = self.sock.recv(_READ_CHUNK)
            if not chunk:
                raise OSError("air closed the connection")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return json.loads(line)

    def send(self, msg):
        self._ensure_reader()
        data = (json.dumps(msg) + "\n").encode()
        mv = memoryview(data)
        while len(mv):
            try:
                n = self.sock.send(mv)
            except OSError as e:
                if e.args[0] != errno.EAGAIN:  # the hub is busy; wait for room (rare on loopback)
                    raise
                _wait_writable(self.sock)
                continue
            mv = mv[n:]

    async def _reader(self):
        stream = asyncio.StreamReader(self.sock)
        queue = self._queue
        while queue is self._queue:  # else a newer reader took over (new event loop)
            while b"\n" in self._buf:
                line, _, self._buf = self._buf.partition(b"\n")
                self._dispatch(json.loads(line))
            try:
                chunk = await stream.read(_READ_CHUNK)
            except OSError:  # ECONNRESET: the hub died
                chunk = b""
            if not chunk:
                break
            self._buf += chunk
        if queue is not self._queue:
            return
        self.closed = True
        fn = self.handlers.get("closed")
        if fn is not None:
            fn({"op": "closed"})

    def _dispatch(self, msg):
        fn = self.handlers.get(msg.get("op"))
        if fn is None:
            if msg.get("op") == "error" and _DEBUG:  # e.g. a notify racing a disconnect: benign, hidden
                print("air:", msg.get("reason"))
            return
        try:
            fn(msg)
        except Exception as e:  # noqa: BLE001 - like the board: report an IRQ handler's exception, keep going
            print("Unhandled exception in IRQ callback handler")
            if hasattr(sys, "print_exception"):
                sys.print_exception(e)
            else:
                import traceback

                traceback.print_exception(type(e), e, e.__traceback__)


def _wait_writable(sock):
    import select

    p = select.poll()
    p.register(sock, select.POLLOUT)
    p.poll(1000)


def get():
    """The process's link to the air, opened on first use; None when AIR is not set."""
    global _link
    if _link is None:
        hub = os.getenv("AIR")
        if not hub:
            return None
        addr = os.getenv("AIR_ADDR")
        _link = AirLink(hub, addr.replace(":", "").lower() if addr else None, os.getenv("AIR_NAME") or "")
    return _link


def hexs(b):
    return binascii.hexlify(b).decode()


def unhex(s):
    return binascii.unhexlify(s)
