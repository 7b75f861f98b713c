"""README is the contract: its console examples must be what the console prints."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = re.compile(
    r"```console\n\$ \.venv/bin/kindred run <<'EOF'\n(?P<script>.*?)EOF\n(?P<output>.*?)```",
    re.DOTALL,
)
# What depends on the day the example runs: dates, clock times, solver timings, and
# the conversation starter (drawn with the round's time as seed).
VARYING = [
    (re.compile(r"Conversation starter:\*\* .*"), "Conversation starter:** <starter>"),
    (re.compile(r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{1,2} [A-Z][a-z]{2}, \d\d:\d\d"), "<date>"),
    (re.compile(r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d\d:\d\d"), "<day time>"),
    (re.compile(r"\(now \d\d:\d\d\)"), "(now <time>)"),
    (re.compile(r"\d+\.\d ms"), "<n> ms"),
    (re.compile(r"The clock is now .*"), "The clock is now <time>."),
]


def normalised(text: str) -> str:
    for pattern, replacement in VARYING:
        text = pattern.sub(replacement, text)
    return text


def test_readme_console_examples_are_what_the_console_prints(tmp_path: Path) -> None:
    """Every console example, each on a fresh database."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    examples = list(EXAMPLE.finditer(readme))
    assert examples, "README lost its console example"
    for number, example in enumerate(examples):
        run = tmp_path / f"example-{number}"
        run.mkdir()
        environment = {
            k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DISCORD_"))
        }
        environment["DATABASE_URL"] = f"sqlite+aiosqlite:///{run / 'kindred.db'}"
        environment.pop("KINDRED_LOG_LEVEL", None)
        result = subprocess.run(
            [sys.executable, "-m", "bot.core.cli", "run"],
            input=example.group("script"),
            capture_output=True,
            text=True,
            cwd=run,
            env=environment,
            timeout=60,
            check=True,
        )
        assert normalised(result.stdout) == normalised(example.group("output")), number
