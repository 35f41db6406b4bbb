"""Idle memory per `ccs run` session, with three sessions open at once, each with its own proxy.

    python bench/sessions.py [--sessions N] [--reps R] [--api anthropic|openai]

Run it with a regular (non-editable) install of ccswitch, with that venv's python. Defaults: 3 sessions,
3 repetitions, under a minute.

A fake provider (`fake_anthropic.py`, or `fake_openai.py` with `--api openai`) and a profile in front of it
whose key ccs holds (its 0600 file store), so `ccs run` puts it behind the proxy. N sessions are started,
`ccs run bench -- python bench/sessions.py --child`: the child, standing in for claude, sends its proxy one
whole request and one 200-event stream (so the proxy has imported and served all it serves), says so, and
waits. Once every session's child has, and after IDLE seconds, each `ccs` process (the session: the launcher
and its proxy; the child is not counted) is read from /proc:

- RSS (VmRSS): the figure of the issue's goal, <= 40 MB per session;
- PSS (smaps_rollup): pages shared between the sessions (the interpreter, shared libraries) counted once,
  split between them: what each session really adds to the machine;
- USS (Private_Clean + Private_Dirty): what only that session holds.

Also, for scale: the RSS of a bare `python -c` that sleeps, started the same way. Then the sessions are
ended (stdin closed: the children exit, `ccs run` stops its proxy and exits). Every wait is bounded; all
traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
IDLE = 2.0  # seconds every session has been idle before it is measured
GOAL_MB = 40.0


def child() -> None:
    """Inside `ccs run`: one whole request and one stream through the proxy, then wait for stdin to close."""
    sys.path.insert(0, str(HERE))
    from proxy import Target, anthropic_request, answer_one

    target = Target.make(os.environ["ANTHROPIC_BASE_URL"], "/v1/messages",
                         f"authorization: Bearer {os.environ['ANTHROPIC_AUTH_TOKEN']}", anthropic_request)
    answer_one(target.url, target.requests["whole"])
    answer_one(target.url, target.requests["stream"])
    print("ready", flush=True)
    sys.stdin.read()


def memory(pid: int) -> dict[str, float]:
    """RSS, PSS and USS of a process, in MB."""
    status = {line.split(":")[0]: int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
              if line.startswith("VmRSS")}
    rollup = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        rollup[name] = int(value.split()[0])
    return {"rss": status["VmRSS"] / 1024, "pss": rollup["Pss"] / 1024,
            "uss": (rollup["Private_Clean"] + rollup["Private_Dirty"]) / 1024}


def one_round(ccs: str, env: dict, sessions: int) -> list[dict[str, float]]:
    processes = []
    try:
        for _ in range(sessions):
            processes.append(subprocess.Popen([ccs, "run", "bench", "--", sys.executable, __file__, "--child"], env=env,
                                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                              text=True))
        for process in processes:
            line = process.stdout.readline()  # the child's, through ccs's inherited stdout
            if line.strip() != "ready":
                raise SystemExit(f"a session did not get its answers: {line!r} {process.stderr.read()[:500]}")
        time.sleep(IDLE)
        return [memory(process.pid) for process in processes]
    finally:
        for process in processes:
            try:
                process.stdin.close()
                process.wait(20)
            except (subprocess.TimeoutExpired, OSError):
                process.kill()


def bare_python_rss() -> float:
    process = subprocess.Popen([sys.executable, "-c", "import time; print(flush=True); time.sleep(30)"],
                               stdout=subprocess.PIPE, text=True)
    try:
        process.stdout.readline()
        time.sleep(0.2)
        return memory(process.pid)["rss"]
    finally:
        process.kill()
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=3)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--api", choices=("anthropic", "openai"), default="anthropic")
    args = parser.parse_args()
    from proxy import ccs_command, isolated_ccs

    [ccs] = ccs_command()
    script = "fake_anthropic.py" if args.api == "anthropic" else "fake_openai.py"
    fake = subprocess.Popen([sys.executable, str(HERE / script)], stdout=subprocess.PIPE, text=True)
    rounds = []
    try:
        url = f"http://127.0.0.1:{fake.stdout.readline().strip()}" + ("/v1" if args.api == "openai" else "")
        with tempfile.TemporaryDirectory() as home:
            auth = "api-key" if args.api == "anthropic" else "bearer"
            env, _ = isolated_ccs(ccs, home, f'version = 1\n[profiles.bench]\napi = "{args.api}"\nauth = "{auth}"\n'
                                             f'base_url = "{url}"\nmodel = "claude-bench"\n', "bench")
            for number in range(args.reps):
                rounds.append(one_round(ccs, env, args.sessions))
                print(f"repetition {number + 1}: " + "; ".join(
                    f"RSS {m['rss']:.1f} PSS {m['pss']:.1f} USS {m['uss']:.1f}" for m in rounds[-1]) + " MB", flush=True)
    finally:
        fake.kill()
    bare = bare_python_rss()
    print(f"\n{args.sessions} `ccs run` sessions open at once ({args.api} API, its proxy having served a whole answer "
          f"and a stream, then {IDLE:.0f} s idle), {len(rounds)} repetitions, per session (MB): median [min-max]")
    for name in ("rss", "pss", "uss"):
        values = [m[name] for one in rounds for m in one]
        print(f"  {name.upper()}  {statistics.median(values):5.1f} [{min(values):.1f}-{max(values):.1f}]")
    rss = statistics.median(m["rss"] for one in rounds for m in one)
    print(f"RSS per session: {rss:.1f} MB (goal <= {GOAL_MB:.0f} MB: {'ok' if rss <= GOAL_MB else 'MISSED'}); "
          f"a bare python sleeping: {bare:.1f} MB")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child()
    else:
        main()
