"""`make bench` in quick mode: every tools/bench_*.py runs its code paths at the smallest sizes (tools/bench.py
--quick), so a bench broken by a change elsewhere fails here instead of at the next `make bench`. Figures are not
checked (timing targets live in the benchmarks); each script's last table line must appear, filled in."""

import os
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent

# script -> a line it prints only after its whole run (the last rows; bench_crypto/e2e/prov print at the end)
EXPECT = {
    "bench_adv": r"\| defaults: jitter \| together \| 50 \| \d+ \| [\d.]+ % \|",
    "bench_air": r"\| 30\.0 \| [\d.]+ \| [\d.]+ \|",
    "bench_bearers": r"PB-GATT loss 10%  ATT_MTU 69 +2/2 ",
    "bench_crypto": r"key generation: longest stretch / total +1/\d+ of \d+ slices",
    "bench_e2e": r"PB-ADV, 0 % +\d+ ms .* 1/1\n",
    "bench_prov": r"HMAC, static OOB \(§8\.17\.2\)\n(.*\n)*    peak heap above idle .* \d+ bytes \(\d+ - \d+\)",
}


def test_every_bench_runs_quick():
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    p = subprocess.run([sys.executable, "tools/bench.py", "--quick"], cwd=ROOT, env=env, capture_output=True,
                       text=True, encoding="utf-8", timeout=240)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    sections = dict(re.findall(r"\n=== (bench_\w+)\n(.*?)(?=\n=== |\Z)", p.stdout, re.S))
    assert sorted(sections) == sorted(s.stem for s in (ROOT / "tools").glob("bench_*.py")) == sorted(EXPECT)
    for name, pattern in EXPECT.items():
        assert re.search(pattern, sections[name]), name + ":\n" + sections[name]
