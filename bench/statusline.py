"""What the usage log adds to `ccs statusline` (claude runs it after every message): the same command with
no log, and with a log of 20,000 requests over 500 sessions, where it sums one session's cost and tokens.

Interleaved runs, medians; the ratio is the figure (the machine is shared). Run it with the Python of a
regular `pip install .`. Usage: python bench/statusline.py [ROUNDS]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 20
ROWS, SESSIONS = 20_000, 500
SEED = f"""
from ccswitch import usage
db = usage.connect()
db.executemany("INSERT INTO requests (time, session, profile, stream, status, duration_ms, input_tokens, output_tokens, "
               "cost) VALUES (?, ?, 'glm', 1, 200, 1, 100, 10, 0.001)", [(i, f"s{{i % {SESSIONS}}}") for i in range({ROWS})])
db.close()
"""


def timed(env: dict, session: str) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "ccswitch", "statusline"], env=env, capture_output=True, text=True,
                         check=True, input=json.dumps({"session_id": session, "model": {"id": "glm-4.6"}})).stdout
    return time.perf_counter() - start, out.strip()


def main() -> None:
    with tempfile.TemporaryDirectory() as empty, tempfile.TemporaryDirectory() as full:
        envs = {}
        for name, home in (("no log", empty), (f"{ROWS:,}-row log", full)):
            Path(home, "profiles.toml").write_text('[profiles.glm]\npreset = "zai"\n')
            envs[name] = {**os.environ, "CCS_HOME": home, "CCS_CONFIG": f"{home}/profiles.toml", "CCS_RUN": "glm"}
        subprocess.run([sys.executable, "-c", SEED], env=envs[f"{ROWS:,}-row log"], check=True)
        samples: dict[str, list[float]] = {name: [] for name in envs}
        lines = {}
        deadline = time.monotonic() + 120
        for _ in range(ROUNDS):
            for name, env in envs.items():
                seconds, lines[name] = timed(env, "s7")
                samples[name].append(seconds)
            if time.monotonic() > deadline:
                break
        base = statistics.median(samples["no log"])
        for name, values in samples.items():
            print(f"{name:16s} median {statistics.median(values) * 1000:6.1f} ms  x{statistics.median(values) / base:.3f}"
                  f"  {lines[name]!r}")


if __name__ == "__main__":
    main()
