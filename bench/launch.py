"""How much `ccs` adds to starting a command: `ccs run NATIVE -- true` and `ccs list` against `true`,
and `ccs run` against its floor: the same Python, started the same way, that parses the same
profiles file and execs `true` (what any Python launcher must do, and nothing else).

Runs are interleaved (baseline, ccs, baseline, ...) so a noisy machine hurts both sides alike.
Prints medians, the added milliseconds and the ratios. Usage: python bench/launch.py [ROUNDS]
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 40


def timed(argv: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    ccs = shutil.which("ccs", path=str(Path(sys.executable).parent)) or shutil.which("ccs")
    ccs_argv = [ccs] if ccs else [sys.executable, "-m", "ccswitch"]
    true = shutil.which("true")
    with tempfile.TemporaryDirectory() as home:
        # the platform's own dirs (platformdirs), as for a real user: no CCS_CONFIG / CCS_HOME shortcut
        env = {k: v for k, v in os.environ.items() if k not in ("CCS_CONFIG", "CCS_HOME")}
        env.update(XDG_CONFIG_HOME=f"{home}/config", XDG_STATE_HOME=f"{home}/state", XDG_DATA_HOME=f"{home}/data",
                   PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
        Path(home, "config", "ccswitch").mkdir(parents=True)
        Path(home, "config", "ccswitch", "profiles.toml").write_text(
            'version = 1\n[profiles.glm]\npreset = "zai"\n[profiles.kimi]\npreset = "kimi"\nkey_env = "K"\n')
        subprocess.run([*ccs_argv, "key", "set", "glm", "--stdin"], input=b"sk-bench-key", env=env, check=True,
                       stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        config = Path(home, "config", "ccswitch", "profiles.toml")
        floor = [sys.executable, "-c", f"import os, tomllib; tomllib.load(open({str(config)!r}, 'rb')); "
                                       f"os.execv({true!r}, [{true!r}])"]
        cases = {"floor (python, TOML, exec)": floor, "ccs run glm -- true": [*ccs_argv, "run", "glm", "--", true],
                 "ccs list": [*ccs_argv, "list"]}
        samples: dict[str, list[float]] = {"true": [], **{name: [] for name in cases}}
        for argv in cases.values():  # warm the page cache and bytecode
            timed(argv, env)
        deadline = time.monotonic() + 300
        for _ in range(ROUNDS):
            for name, argv in cases.items():
                samples["true"].append(timed([true], env))
                samples[name].append(timed(argv, env))
            if time.monotonic() > deadline:
                break
    base = statistics.median(samples["true"]) * 1000
    print(f"rounds: {len(samples['true']) // len(cases)}; baseline `true`: median {base:.1f} ms")
    floor_ms = statistics.median(samples["floor (python, TOML, exec)"]) * 1000
    for name in cases:
        median = statistics.median(samples[name]) * 1000
        print(f"{name:27s} median {median:6.1f} ms  added {median - base:6.1f} ms  ratio {median / base:5.1f}x"
              f"  to the floor {median / floor_ms:4.2f}x")


if __name__ == "__main__":
    main()
