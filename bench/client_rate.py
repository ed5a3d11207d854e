"""Request rate of our client next to the unmodified agentrun-sdk, on the same server.

Both call `file_system.stat` on the same sandbox, alternating in rounds.

    python bench/client_rate.py [--requests 300]
"""

from __future__ import annotations

import argparse
import os
import time

from common import Row, embedded_server, print_table

from sandbox_kernel import CodeInterpreterSandbox


def rate(call, requests: int) -> float:
    """Calls per second of `call` over `requests` calls."""
    started = time.perf_counter()
    for _ in range(requests):
        call()
    return requests / (time.perf_counter() - started)


def measure(requests: int = 300) -> list[Row]:
    from agentrun.sandbox import Sandbox, TemplateType
    from agentrun.utils.config import Config

    with embedded_server() as server:
        ours = CodeInterpreterSandbox.create(endpoint=server.url, token=server.token)
        os.environ["AGENTRUN_DATA_ENDPOINT"] = server.url
        config = Config(headers={"X-API-Key": server.token})
        theirs = Sandbox.connect(
            ours.sandbox_id, template_type=TemplateType.CODE_INTERPRETER, config=config
        )
        ours.file_system.stat("/home/user")
        theirs.file_system.stat("/home/user")
        our_rates, their_rates = [], []
        for _ in range(3):
            our_rates.append(rate(lambda: ours.file_system.stat("/home/user"), requests))
            their_rates.append(rate(lambda: theirs.file_system.stat("/home/user"), requests))
        ours.delete()
    return [
        Row("client requests/s (file_system.stat)", max(our_rates), max(their_rates), ">= 3"),
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    print_table(measure(parser.parse_args().requests))
