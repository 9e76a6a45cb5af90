"""`make bench`: runs every tools/bench_*.py in turn (each prints its own table).

Usage: python tools/bench.py [--quick] [name ...]   (names filter the scripts: `e2e` runs bench_e2e.py only;
--quick is passed to every script: the same code paths at the smallest sizes, a smoke test, not figures)
"""

import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent


def main(argv):
    quick = [a for a in argv[1:] if a == "--quick"]
    only = [a for a in argv[1:] if a != "--quick"]
    failed = []
    if quick:
        print("--quick: every bench at its smallest sizes, a smoke test; the figures below are not measurements")
    for script in sorted(HERE.glob("bench_*.py")):
        if only and not any(o in script.stem for o in only):
            continue
        print("\n=== %s" % script.stem, flush=True)
        if subprocess.call([sys.executable, str(script)] + quick, cwd=HERE.parent) != 0:
            failed.append(script.stem)
    if failed:
        print("\nFAILED: %s" % " ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
