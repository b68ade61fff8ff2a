"""How long the browser takes to draw a chat opened with 500 unread messages.

Starts the chat as the other benchmarks do (``bench.servers.start_chat``: ``python
app.py`` on eventlet, a fresh SQLite database), registers alice and bob through the real
forms, opens their direct chat and stores ``--messages`` messages from alice in it straight
in the database. Then, ``--runs`` times, it sets bob's read pointer back so that every one
of them is unread and opens ``/chats?chat=<id>`` as bob in headless Chromium.

The figure is measured in the page by the client itself: ``conversation.js`` marks
``chat-open:answer`` when join_chat's answer arrives and records the measure
``chat-open:render`` once the messages are built, laid out (the scroll to the "New
messages" divider reads the layout) and the next frame has been painted. Server and
network time are not in it; the time from the start of the navigation to that paint is
reported beside it. ``--cpu-slowdown 4`` runs Chromium's CPU four times slower, as a
mid-range phone.

Run: ``.venv/bin/python -m bench.render [--runs 15] [--messages 500] [--cpu-slowdown 1]``
(needs requirements-dev.txt for Playwright, and Chromium at ``CHROMIUM_PATH``, by default
``/usr/bin/chromium``). Not a test: nothing here fails on a slow figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, sync_playwright

from bench import seed
from bench.clients import RealClient
from bench.servers import Server, start_chat

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
VIEWPORT = {"width": 1280, "height": 800}
WARM_UP_RUNS = 2
# Bodies of several lengths, a link now and then: what a busy chat looks like.
BODIES = [
    "Morning! Did anyone look at the numbers from yesterday?",
    "Yes",
    "I put the draft here: https://example.org/drafts/quarterly-report-v3 (comments welcome)",
    "The build is green again after the fix to the date parsing; thanks for the quick review.",
    "Lunch at 12:30?",
    "Can we move the meeting to Thursday? Half of the team is out on Wednesday, and the "
    "room is booked anyway. I will send a new invitation once everyone has answered.",
    "ok, sounds good",
    "Reminder: the office is closed on Friday.",
]


def prepare(server: Server, messages: int) -> tuple[RealClient, int, int]:
    """Alice and bob, their chat with ``messages`` from alice; returns bob, the chat's id
    and the read pointer that leaves them all unread."""
    alice = RealClient(server, "alice").register()
    bob = RealClient(server, "bob").register()
    page = alice.http.get(f"{server.url}/find").text
    csrf = page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
    response = alice.http.post(
        f"{server.url}/add",
        data={"user_id": bob.id, "csrf_token": csrf},
        allow_redirects=False,
    )
    chat_id = int(response.headers["Location"].rsplit("=", 1)[1])
    start = datetime.now(UTC) - timedelta(minutes=messages)
    bodies = [BODIES[i % len(BODIES)] for i in range(messages)]
    ids = seed.add_messages(
        server, chat_id, seed.spread(["alice"], bodies, start, timedelta(minutes=1))
    )
    return bob, chat_id, ids[0] - 1


def open_once(page: Page, chat_id: int) -> dict[str, Any]:
    """Open the chat; the client's measure and what the page shows."""
    page.goto(f"/chats?chat={chat_id}")
    page.wait_for_function(
        "() => performance.getEntriesByName('chat-open:render').length > 0", timeout=60_000
    )
    return page.evaluate(
        """() => {
            const measure = performance.getEntriesByName('chat-open:render')[0];
            return {
                render_ms: measure.duration,
                since_navigation_ms: measure.startTime + measure.duration,
                shown: document.querySelectorAll('#messages .message').length,
                divider: document.querySelectorAll('#messages .unread-divider').length,
            };
        }"""
    )


def percentile(values: list[float], fraction: float) -> float:
    """The value below which ``fraction`` of ``values`` lie (nearest rank)."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def measure(runs: int, messages: int, cpu_slowdown: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="render-bench-") as folder:
        server = start_chat(Path(folder))
        try:
            bob, chat_id, unread_from = prepare(server, messages)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, args=["--headless", "--no-sandbox"]
                )
                context = browser.new_context(base_url=server.url, viewport=VIEWPORT)
                context.add_cookies(
                    [
                        {"name": c.name, "value": c.value, "url": server.url}
                        for c in bob.http.cookies
                    ]
                )
                page = context.new_page()
                if cpu_slowdown != 1:
                    cdp = context.new_cdp_session(page)
                    cdp.send("Emulation.setCPUThrottlingRate", {"rate": cpu_slowdown})
                results = []
                for run in range(WARM_UP_RUNS + runs):
                    seed.set_read_pointer(server, chat_id, "bob", unread_from)
                    result = open_once(page, chat_id)
                    if result["shown"] != messages or result["divider"] != 1:
                        raise RuntimeError(f"the page did not show {messages} unread: {result}")
                    if run >= WARM_UP_RUNS:
                        results.append(result)
                version = browser.version
                browser.close()
        finally:
            server.stop()
    render = [r["render_ms"] for r in results]
    total = [r["since_navigation_ms"] for r in results]
    return {
        "messages": messages,
        "runs": runs,
        "cpu_slowdown": cpu_slowdown,
        "chromium": version,
        "render_ms": {
            "median": statistics.median(render),
            "p95": percentile(render, 0.95),
            "min": min(render),
            "max": max(render),
        },
        "since_navigation_ms": {
            "median": statistics.median(total),
            "p95": percentile(total, 0.95),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--cpu-slowdown", type=float, default=1.0)
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    figures = measure(args.runs, args.messages, args.cpu_slowdown)
    render, total = figures["render_ms"], figures["since_navigation_ms"]
    print(
        f"{figures['messages']} unread messages, {figures['runs']} runs, CPU slowdown "
        f"{figures['cpu_slowdown']:g}x, Chromium {figures['chromium']}\n"
        f"  join_chat's answer -> painted: median {render['median']:.0f} ms, "
        f"p95 {render['p95']:.0f} ms (min {render['min']:.0f}, max {render['max']:.0f})\n"
        f"  navigation start -> painted:   median {total['median']:.0f} ms, "
        f"p95 {total['p95']:.0f} ms"
    )
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
