"""How long `ccs` takes to start a command, and `ccs proxy` to answer, against floors measured in the same run.

    python bench/launch.py [--rounds N] [--core C]

Run it with a regular (non-editable) install of ccswitch, with that venv's python, and without
PYTHONDONTWRITEBYTECODE (`env -u PYTHONDONTWRITEBYTECODE`): from the source tree, or without bytecode, every
start recompiles ccswitch. Defaults: 30 rounds, under a minute.

The platform's own config dirs (platformdirs under XDG_* in a temporary home, no CCS_CONFIG / CCS_HOME
shortcut), the keyring backend failing so that the key is in ccs's 0600 file store, as on a machine without
a desktop keyring. Profiles: `glm` (preset zai: an Anthropic-API provider, its key held by ccs, so `ccs run`
puts it behind the proxy) and `local` (an Anthropic-API profile whose base_url is `fake_anthropic.py`).

Each round runs every case once, in turn (a noisy machine hurts them alike):

- `true`;
- the floor: the same python, started the same way, parsing the same profiles file and exec'ing `true`
  (what any Python launcher must do, and nothing else);
- `ccs run glm -- true`: the whole process, from its start until it has exited (the child run, the proxy
  bound and stopped); the figure is its median over the floor's;
- `ccs proxy local --json`: from its start to the first answered request (a whole /v1/messages answer relayed
  from the fake, on a new connection), then its RSS 0.3 s later; stopped after, untimed.

`--core C` pins every case (and the fake) to core C (`taskset`); by default they run where the scheduler puts
them. Prints medians, the per-round ratios (median and quartiles) and the goal.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from proxy import Target, anthropic_request, answer_one, ccs_command, isolated_ccs, memory_mb  # noqa: E402

GOAL = 1.6  # `ccs run NATIVE -- true` over the floor, at most


def timed(argv: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def proxy_ready(argv: list[str], env: dict) -> tuple[float, float]:
    """`ccs proxy`: seconds from its start to its first answered request; its RSS (MB) once idle."""
    start = time.perf_counter()
    proxy = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        endpoint = json.loads(proxy.stdout.readline())
        target = Target.make(endpoint["base_url"], "/v1/messages", f"x-api-key: {endpoint['token']}",
                             anthropic_request)
        answer_one(target.url, target.requests["whole"])
        ready = time.perf_counter() - start
        time.sleep(0.3)
        return ready, memory_mb(proxy.pid)[0]
    finally:
        proxy.terminate()
        proxy.wait(10)


def spread(values: list[float]) -> str:
    q = statistics.quantiles(values, n=4, method="inclusive")
    return f"{statistics.median(values):.2f} [quartiles {q[0]:.2f}-{q[2]:.2f}, min-max {min(values):.2f}-{max(values):.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--core", type=int, help="pin every case to this core")
    args = parser.parse_args()
    [ccs] = ccs_command()
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        print("warning: PYTHONDONTWRITEBYTECODE is set: every start compiles ccswitch (run with "
              "`env -u PYTHONDONTWRITEBYTECODE`)", file=sys.stderr)
    pin = ["taskset", "-c", str(args.core)] if args.core is not None else []
    true = shutil.which("true")
    fake = subprocess.Popen([*pin, sys.executable, str(HERE / "fake_anthropic.py")], stdout=subprocess.PIPE, text=True)
    try:
        upstream = f"http://127.0.0.1:{fake.stdout.readline().strip()}"
        with tempfile.TemporaryDirectory() as home:
            env, config = isolated_ccs(ccs, home, 'version = 1\n[profiles.glm]\npreset = "zai"\n[profiles.kimi]\n'
                                                  'preset = "kimi"\nkey_env = "K"\n[profiles.local]\nauth = "none"\n'
                                                  f'base_url = "{upstream}"\nmodel = "claude-bench"\n', "glm")
            said = subprocess.run([ccs, "run", "-v", "glm", "--", true], env=env, capture_output=True, text=True)
            if "the proxy on" not in said.stderr:
                raise SystemExit(f"`ccs run glm` did not start the proxy: {said.stderr.strip()}")
            floor = [*pin, sys.executable, "-c", f"import os, tomllib; tomllib.load(open({str(config)!r}, 'rb')); "
                                                 f"os.execv({true!r}, [{true!r}])"]
            run = [*pin, ccs, "run", "glm", "--", true]
            serve = [*pin, ccs, "proxy", "local", "--json"]
            samples: dict[str, list[float]] = {"true": [], "floor": [], "run": [], "proxy": [], "rss": []}
            for argv in (floor, run, floor, run):  # warm the page cache
                timed(argv, env)
            proxy_ready(serve, env)
            deadline = time.monotonic() + 600
            for _ in range(args.rounds):
                samples["true"].append(timed([*pin, true], env))
                samples["floor"].append(timed(floor, env))
                samples["run"].append(timed(run, env))
                ready, rss = proxy_ready(serve, env)
                samples["proxy"].append(ready)
                samples["rss"].append(rss)
                if time.monotonic() > deadline:
                    break
    finally:
        fake.kill()
    ms = {name: statistics.median(values) * 1000 for name, values in samples.items() if name != "rss"}
    rounds = len(samples["run"])
    print(f"{rounds} rounds, {'pinned to core ' + str(args.core) if pin else 'unpinned'}; load average "
          f"{os.getloadavg()[0]:.1f}; medians:")
    print(f"  `true`                              {ms['true']:7.1f} ms")
    print(f"  floor (python, TOML, exec true)     {ms['floor']:7.1f} ms")
    print(f"  `ccs run glm -- true` (whole)       {ms['run']:7.1f} ms   added to the floor {ms['run'] - ms['floor']:.1f} ms")
    print(f"  `ccs proxy`: start to first answer  {ms['proxy']:7.1f} ms   idle RSS {statistics.median(samples['rss']):.1f} MB")
    run_ratio = ms["run"] / ms["floor"]
    print(f"`ccs run glm -- true` / floor: {run_ratio:.2f}x of medians (goal <= {GOAL}x: "
          f"{'ok' if run_ratio <= GOAL else 'MISSED'}); per round {spread([r / f for r, f in zip(samples['run'], samples['floor'])])}")
    print(f"`ccs proxy` ready / floor: {ms['proxy'] / ms['floor']:.2f}x of medians; per round "
          f"{spread([p / f for p, f in zip(samples['proxy'], samples['floor'])])}")


if __name__ == "__main__":
    main()
