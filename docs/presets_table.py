"""Print the preset tables of docs/presets.md from ccswitch/presets.py, so the page says exactly what the code holds.

    python docs/presets_table.py            # the tables, on stdout
    python docs/presets_table.py --write    # replace them in docs/presets.md (between the two markers)
"""

from __future__ import annotations

import sys
from pathlib import Path

from ccswitch.presets import LISTED, PRESETS

PAGE = Path(__file__).with_name("presets.md")
BEGIN, END = "<!-- presets table: begin -->", "<!-- presets table: end -->"


def cell(value) -> str:
    return "-" if value in (None, "", {}) else str(value).replace("|", "\\|")


def code(value) -> str:
    return "-" if value in (None, "", {}) else f"`{value}`"


def window(tokens) -> str:
    return f"{tokens:,}" if tokens else "-"


def prices(preset) -> str:
    own = preset.fields.get("prices") or {}
    if own == {"*": {"input": 0, "output": 0}}:
        return "free (a server on this machine)"
    parts = []
    if preset.name in LISTED:
        parts.append("list prices (genai-prices)")
    for model, price in own.items():
        rates = ", ".join(f"{kind} {value}" for kind, value in price.items())
        parts.append(f"own: `{model}` {rates}")
    return "; ".join(parts) or "none"


def extras(preset) -> str:
    fields = preset.fields
    parts = [f"`{key}={value}`" for key, value in (fields.get("env") or {}).items()]
    parts += [f"header `{name}: {value}`" for name, value in (fields.get("headers") or {}).items()]
    parts += [f"`{key} = {fields[key]!r}`".replace("'", '"') for key in ("region", "max_output_tokens") if key in fields]
    parts += [f"needs your `{key}` (e.g. `{example}`)" for key, example in (preset.needs or {}).items()]
    return "; ".join(parts) or "-"


def tables() -> str:
    rows = ["| preset | provider | API | auth | base URL |", "| --- | --- | --- | --- | --- |"]
    for p in PRESETS.values():
        f = p.fields
        url = code(f.get("base_url")) if f.get("base_url") else ("claude's own" if f.get("auth") not in (
            "bearer", "api-key", "none") else "yours")
        rows.append(f"| `{p.name}` | {cell(p.title)} | {f.get('api', 'anthropic')} | {f.get('auth', 'bearer')} | {url} |")
    rows += ["", "| preset | model | opus | sonnet | haiku | subagent | fable | window |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for p in PRESETS.values():
        f = p.fields
        tiers = f.get("models") or {}
        rows.append(f"| `{p.name}` | {code(f.get('model'))} | " + " | ".join(
            code(tiers.get(t)) for t in ("opus", "sonnet", "haiku", "subagent", "fable"))
            + f" | {window(f.get('context_window'))} |")
    rows += ["", "| preset | prices | also sets | checked | source |", "| --- | --- | --- | --- | --- |"]
    for p in PRESETS.values():
        rows.append(f"| `{p.name}` | {prices(p)} | {extras(p)} | {p.checked} | <{p.docs}> |")
    return "\n".join(rows) + "\n"


def main() -> None:
    text = tables()
    if sys.argv[1:] == ["--write"]:
        page = PAGE.read_text(encoding="utf-8")
        head, _, rest = page.partition(BEGIN + "\n")
        _, _, tail = rest.partition(END)
        PAGE.write_text(f"{head}{BEGIN}\n{text}{END}{tail}", encoding="utf-8")
    else:
        print(text, end="")


if __name__ == "__main__":
    main()
