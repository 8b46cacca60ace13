"""How fast does the ``tlrl`` command answer --help, --version and a usage error? Against ``python -c pass``.

Run by hand, not by pytest::

    .venv/bin/python benchmarks/bench_cli_startup.py [--repeat 10]

Each command runs ``--repeat`` times in a fresh interpreter, as the console script does
(``from tlrl.cli import main``); it prints the median seconds of each and its ratio to a bare
interpreter's start-up.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS: dict[str, str] = {
    "python -c pass": "pass",
    "tlrl --help": "import sys; from tlrl.cli import main; sys.exit(main(['--help']))",
    "tlrl --version": "import sys; from tlrl.cli import main; sys.exit(main(['--version']))",
    "tlrl fit (usage error)": "import sys; from tlrl.cli import main; sys.exit(main(['fit']))",
}


def median_seconds(code: str, repeat: int) -> float:
    """The median wall time of ``python -c code`` over ``repeat`` fresh interpreters."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=10, help="runs of each command (default: 10)")
    args = parser.parse_args(argv)
    seconds = {name: median_seconds(code, args.repeat) for name, code in COMMANDS.items()}
    base = seconds["python -c pass"]
    for name, s in seconds.items():
        print(f"{name:24s} {s:6.3f} s  {s / base:5.1f}x python -c pass")


if __name__ == "__main__":
    main()
