"""What `eval "$(ccs shell-init SHELL)"` adds to a shell's start-up, against the bare shell.

Interleaved runs, medians. The integration itself runs no Python; this is the one `ccs shell-init`
call per new shell. Usage: python bench/shell_init.py [ROUNDS]
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

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 30
LOAD = {"bash": 'eval "$(ccs shell-init bash)"', "zsh": 'eval "$(ccs shell-init zsh)"',
        "fish": "ccs shell-init fish | source"}
QUIET = {"bash": ["--norc"], "zsh": ["-f"], "fish": ["--no-config"]}


def timed(argv: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as home:
        Path(home, "profiles.toml").write_text('version = 1\n[profiles.glm]\npreset = "zai"\naliases = ["cc-glm"]\n')
        env = {**os.environ, "CCS_HOME": home, "CCS_CONFIG": f"{home}/profiles.toml",
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        for shell in (s for s in LOAD if shutil.which(s)):
            bare = [shell, *QUIET[shell], "-c", "true"]
            loaded = [shell, *QUIET[shell], "-c", LOAD[shell]]
            samples: dict[str, list[float]] = {"bare": [], "loaded": []}
            deadline = time.monotonic() + 120
            for _ in range(ROUNDS):
                samples["bare"].append(timed(bare, env))
                samples["loaded"].append(timed(loaded, env))
                if time.monotonic() > deadline:
                    break
            bare_ms, loaded_ms = (statistics.median(samples[k]) * 1000 for k in ("bare", "loaded"))
            print(f"{shell:5s} start-up: bare {bare_ms:6.1f} ms, with ccs shell-init {loaded_ms:6.1f} ms, "
                  f"added {loaded_ms - bare_ms:6.1f} ms")


if __name__ == "__main__":
    main()
