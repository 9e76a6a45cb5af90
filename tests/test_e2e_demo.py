"""`make demo` (tools/demo.py), the README's first command, as a newcomer runs it: exit status 0 within 60 s,
five locks provisioned (PB-ADV and PB-GATT, static OOB, blink Output OOB, push Input OOB, OOB public key), the
restarted lock back provisioned and silent, the CDB exported, and afterwards no process and no file left behind.
"""

import os
import re
import subprocess
import sys

from e2e_helpers import ROOT, results

DEMO_LIMIT_S = 60


def test_make_demo_provisions_five_locks_and_cleans_up():
    p = subprocess.run([sys.executable, "tools/demo.py"], cwd=ROOT, capture_output=True, text=True,
                       timeout=DEMO_LIMIT_S)
    out = p.stdout
    assert p.returncode == 0, out + p.stderr
    rows = results(out)
    assert sorted(rows) == ["101", "102", "103", "104", "105"], out
    assert all(r["outcome"].startswith("ok 0x") and r["room"] == lock for lock, r in rows.items()), out
    assert {r["bearer"] for r in rows.values()} == {"PB-ADV", "PB-GATT"}
    assert [rows[x]["method"] for x in ("103", "104", "105")] == ["output/blink/HMAC", "input/push/HMAC",
                                                                  "none/HMAC/OOB-key"]
    assert "node.status():  state provisioned" in out and "packets from lock 101 in the next 2 s: 0" in out
    assert "6 nodes:" in out and len(re.findall(r"Lock 10\d \(room 10\d\)", out)) == 5
    assert float(re.search(r"Done in ([\d.]+) s", out).group(1)) < DEMO_LIMIT_S
    work = re.search(r"\(files in (\S+?), removed at the end\)", out).group(1)
    assert not os.path.exists(work)
    pids = [int(x) for x in re.findall(r"pid (\d+)", out)]
    assert len(pids) == 5
    for pid in pids:  # each lock was stopped and reaped by the demo (the pid no longer exists)
        assert not os.path.exists(f"/proc/{pid}"), pid
