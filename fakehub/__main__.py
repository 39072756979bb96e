"""python -m fakehub --port P --webhook-url URL --webhook-secret S [--state-dir DIR]
[--webhook-timeout SECONDS]"""

from __future__ import annotations

import argparse
import threading
from pathlib import Path

from fakehub import FakeHub
from fakehub.webhooks import GITHUB_TIMEOUT


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m fakehub")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--webhook-url")
    parser.add_argument("--webhook-secret", default="")
    parser.add_argument("--state-dir", type=Path)
    parser.add_argument(
        "--webhook-timeout", type=float, default=GITHUB_TIMEOUT, help="seconds (GitHub: 10)"
    )
    args = parser.parse_args()
    hub = FakeHub(args.webhook_url, args.webhook_secret, args.state_dir, args.webhook_timeout)
    print(f"fakehub on {hub.start(args.port, args.host)}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
