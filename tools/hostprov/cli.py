"""Host provisioner command line: provision a hotel's locks over the virtual air (docs/hostprov.md).

    python tools/provision.py init      --db hotel.db [--hotel] [--mesh-name NAME] [--iv-index N]
    python tools/provision.py provision --db hotel.db --air HOST:PORT --locks locks-full.csv [--only 101,102]
                                        [--bearer auto|adv|gatt] [--gatt-locks 102] [--algorithm auto|cmac|hmac]
                                        [--oob auto|none|static|output|input] [--parallel 2] [--retries 2]
                                        [--cdb mesh.json]
    python tools/provision.py list      --db hotel.db
    python tools/provision.py export    --db hotel.db --out mesh.json

The passphrase comes from $HOSTPROV_PASSPHRASE, else from the terminal. The lock table is the CSV that
tools/factory.py completes (lock_id, uuid_secret, static_oob, oob_public, room, floor, ...); an optional `uuid`
column gives a lock with a fixed Device UUID.
"""

import argparse
import asyncio
import getpass
import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import air_client  # noqa: E402
import uuid_resolver  # noqa: E402

from . import cdb  # noqa: E402
from . import db as provdb  # noqa: E402
from .worker import Seen, Worker, load_locks  # noqa: E402


# --- the run ---------------------------------------------------------------------------------------------
class Context:
    def __init__(self, args, database, locks):
        self.args, self.db, self.locks = args, database, locks
        self.network = database.network()
        secrets = {k: v["secret"] for k, v in locks.items() if v["secret"]}
        self.seen = Seen(locks, uuid_resolver.Resolver(secrets) if secrets else None)
        self.gatt_locks = set(filter(None, (args.gatt_locks or "").split(",")))
        self.pins = {"blink": args.led_pin, "beep": args.buzzer_pin, "vibrate": args.vibrate_pin,
                     "button": args.button_pin}
        self._reserved = {}
        self._t0 = time.monotonic()

    def now(self):
        return int((time.monotonic() - self._t0) * 1000)

    def reserve(self, lock, elements):
        addr = self.db.allocate_address(elements, reserved=list(self._reserved.values()))
        self._reserved[lock] = (addr, elements)
        return addr

    def release(self, lock):
        self._reserved.pop(lock, None)

    async def wait_seen(self, lock, after):
        deadline = time.monotonic() + self.args.discover_s
        while True:
            e = self.seen.by_lock.get(lock)
            if e and max(e["adv"], e["gatt"]) >= after:
                return e
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.seen.changed.clear()
            try:
                await asyncio.wait_for(self.seen.changed.wait(), left)
            except asyncio.TimeoutError:
                pass


def progress(done, total, ok, width=30):
    filled = width * done // total if total else width
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} done, {ok} provisioned"


def grid(head, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]

    def line(cells):
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()

    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(r) for r in rows])


def table(results):
    """The results table: lock, room, bearer, method, time, outcome."""
    rows = [(r["lock"], "" if r["room"] is None else r["room"], r["bearer"], r["method"], f"{r['time']:.1f} s",
             (f"ok 0x{r['address']:04X}" if r["outcome"] == "complete" else r["outcome"]
              + (f" ({r['reason']})" if r.get("reason") else ""))
             + (f", {r['attempts']} attempts" if r["attempts"] > 1 else "")) for r in results]
    return grid(("lock", "room", "bearer", "method", "time", "outcome"), rows)


async def run_provision(args, database):
    locks = load_locks(args.locks)
    wanted = [x for x in (args.only.split(",") if args.only else locks) if x]
    unknown = [x for x in wanted if x not in locks]
    if unknown:
        raise SystemExit(f"not in {args.locks}: {', '.join(unknown)}")
    done_before = {n["lock_id"] for n in database.nodes()}
    todo = [x for x in wanted if args.again or x not in done_before]
    ctx = Context(args, database, locks)
    workers = []
    for i in range(max(1, args.parallel)):
        radio = await air_client.join(args.air, name=f"provisioner-{i}")
        await radio.scan(0, interval_ms=30, window_ms=30)
        await radio.watch_pins()
        workers.append(Worker(radio, ctx))
    helpers = [asyncio.ensure_future(w.pump()) for w in workers] + \
              [asyncio.ensure_future(w.oob.collect()) for w in workers]
    queue = asyncio.Queue()
    for lock in todo:
        queue.put_nowait(lock)
    results = []
    tty = sys.stderr.isatty()

    async def work(w):
        while not queue.empty():
            r = await w.provision(queue.get_nowait())
            results.append(r)
            bar = progress(len(results), len(todo), sum(x["outcome"] == "complete" for x in results))
            print(("\r" if tty else "") + bar, end="" if tty else "\n", file=sys.stderr, flush=True)

    try:
        print(progress(0, len(todo), 0), end="" if tty else "\n", file=sys.stderr, flush=True)
        await asyncio.gather(*(work(w) for w in workers))
        if tty:
            print(file=sys.stderr)
    finally:
        for h in helpers:
            h.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
        for w in workers:
            await w.radio.close()
    order = {k: i for i, k in enumerate(todo)}
    results.sort(key=lambda r: order[r["lock"]])
    print(table(results))
    if args.cdb:
        cdb.write(database, args.cdb)
        print(f"Mesh Configuration Database written to {args.cdb}")
    return 0 if all(r["outcome"] == "complete" for r in results) else 1


# --- main ------------------------------------------------------------------------------------------------
def _passphrase(confirm=False):
    p = os.environ.get("HOSTPROV_PASSPHRASE")
    if p:
        return p
    p = getpass.getpass("database passphrase: ")
    if confirm and getpass.getpass("again: ") != p:
        raise SystemExit("the passphrases differ")
    return p


def build_parser():
    ap = argparse.ArgumentParser(prog="provision", description="Bluetooth Mesh host provisioner for hotel locks")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("init", help="create the provisioning database of a new network")
    p.add_argument("--db", required=True)
    p.add_argument("--mesh-name", default="Hotel")
    p.add_argument("--net-key", help="hex; default: random")
    p.add_argument("--net-key-index", type=lambda s: int(s, 0), default=0)
    p.add_argument("--iv-index", type=lambda s: int(s, 0), default=0)
    p.add_argument("--hotel", action="store_true", help="draw a hotel master key (MHKey) for the hotel extension")
    p.add_argument("--mh-key", help="hex, 4 bytes (implies --hotel)")
    p = sub.add_parser("provision", help="find the locks on the air and provision them")
    p.add_argument("--db", required=True)
    p.add_argument("--air", required=True, help="the virtual air hub, HOST:PORT")
    p.add_argument("--locks", required=True, help="lock table CSV (tools/factory.py --completed)")
    p.add_argument("--only", help="comma-separated lock ids (default: every lock of the table)")
    p.add_argument("--again", action="store_true", help="also locks the database already has")
    p.add_argument("--bearer", choices=("auto", "adv", "gatt"), default="auto")
    p.add_argument("--gatt-locks", help="comma-separated lock ids to provision over PB-GATT")
    p.add_argument("--algorithm", choices=("auto", "cmac", "hmac"), default="auto")
    p.add_argument("--oob", choices=("auto", "none", "static", "output", "input"), default="auto")
    p.add_argument("--parallel", type=int, default=2, help="radios provisioning at once")
    p.add_argument("--retries", type=int, default=2)
    p.add_argument("--discover-s", type=float, default=20.0, help="how long to wait for a lock's beacon")
    p.add_argument("--led-pin", default=2, type=_pin)
    p.add_argument("--buzzer-pin", default=4, type=_pin)
    p.add_argument("--vibrate-pin", default=5, type=_pin)
    p.add_argument("--button-pin", default=0, type=_pin)
    p.add_argument("--console", help="directory of the locks' console logs (<lock_id>.log): numeric Output OOB")
    p.add_argument("--cdb", help="also write the Mesh Configuration Database JSON here")
    p = sub.add_parser("list", help="the provisioned locks (no keys)")
    p.add_argument("--db", required=True)
    p = sub.add_parser("export", help="write the Mesh Configuration Database JSON (holds every key in clear)")
    p.add_argument("--db", required=True)
    p.add_argument("--out", required=True)
    return ap


def main(argv=None):
    args = build_parser().parse_args(argv)

    if args.cmd == "init":
        mh = bytes.fromhex(args.mh_key) if args.mh_key else (os.urandom(4) if args.hotel else None)
        if mh is not None and len(mh) != 4:
            raise SystemExit("--mh-key is 4 bytes")
        provdb.ProvDB.create(args.db, _passphrase(confirm=True), mesh_name=args.mesh_name,
                             net_key=bytes.fromhex(args.net_key) if args.net_key else None,
                             net_key_index=args.net_key_index, iv_index=args.iv_index, mh_key=mh).close()
        print(f"created {args.db} (owner-only); keep the passphrase: without it the keys are lost")
        return 0
    try:
        database = provdb.ProvDB.open(args.db, _passphrase())
    except provdb.WrongPassphrase as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    with database:
        if args.cmd == "list":
            print(grid(("lock", "room", "floor", "address", "elements", "bearer", "method", "provisioned"),
                       [(n["lock_id"], n["room"] or "", n["floor"] or "", f"0x{n['address']:04X}", n["elements"],
                         n["bearer"] or "-", n["method"] or "-", n["provisioned_at"]) for n in database.nodes()]))
            return 0
        if args.cmd == "export":
            cdb.write(database, args.out)
            print(f"wrote {args.out} (owner-only; it holds the network's keys in clear)")
            return 0
        return asyncio.run(run_provision(args, database))


def _pin(text):
    return int(text) if text.lstrip("-").isdigit() else text


if __name__ == "__main__":
    sys.exit(main())

