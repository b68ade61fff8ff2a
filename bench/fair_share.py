"""What each socket's fair share costs on the message path, in CPU microseconds (eventlet).

The yield after each event is one ``eventlet.sleep(0)``; the bound on unsent bytes adds a
count to each packet's trip through its socket's queue (one put and one get per recipient
socket). Both measured alone, against a plain eventlet queue:

    python -m bench.fair_share
"""

from __future__ import annotations

if __name__ == "__main__":
    import warnings

    warnings.filterwarnings("ignore", message="\nEventlet is deprecated")
    import eventlet

    eventlet.monkey_patch()

import time
from collections.abc import Callable
from typing import Any

ROUNDS = 200_000
# A delivered message as python-socketio queues it: about 250 bytes of JSON.
FRAME = '42["message_received_from_current_chat",{"message":{"body":"' + "x" * 200 + '"}}]'


def cpu_us(run: Callable[[int], None], count: int = ROUNDS) -> float:
    """CPU microseconds per call of ``run``'s body."""
    started = time.process_time()
    run(count)
    return (time.process_time() - started) / count * 1e6


def main() -> None:
    """Print each figure, the median of five runs."""
    import statistics

    import eventlet
    from engineio import packet
    from eventlet import queue

    import socket_budget

    class NoServer:
        def start_background_task(self, *_args: Any) -> None:
            raise AssertionError("the limit is never reached here")

    counted = type(
        "Counted", (socket_budget.UnsentBytes, queue.Queue), {"limit": 1 << 40, "eio": NoServer()}
    )
    pkt = packet.Packet(packet.MESSAGE, data=FRAME)

    def yields(count: int) -> None:
        for _ in range(count):
            eventlet.sleep(0)

    def through(make: Callable[[], Any]) -> Callable[[int], None]:
        q = make()

        def run(count: int) -> None:
            for _ in range(count):
                q.put(pkt)
                q.get()

        return run

    figures = {
        "sleep(0) after an event": yields,
        "a packet through a plain queue": through(queue.Queue),
        "a packet through a counting queue": through(counted),
    }
    for name, run in figures.items():
        print(f"{name}: {statistics.median(cpu_us(run) for _ in range(5)):.2f} us")


if __name__ == "__main__":
    main()
