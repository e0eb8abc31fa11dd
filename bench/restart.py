#!/usr/bin/env python3
"""A restart under a big room: N line clients in hubbub's default room, the
server stopped (SIGTERM) and started again on the same port, every client
reconnecting as a real one would (at once, then with backoff), and one
message after it to all of them.

Reports: clients connected before the restart, how long the old server took
to stop, how long until every client was greeted again by the new one (from
the moment the new one listens), how many attempts that took, and how many
clients the one message after the restart reached.

Usage: bench/restart.py [--clients N] [--binary target/release/hubbub]
                        [--port 7501] [--timeout 120]

Only 127.0.0.1 is used; the server gets a fresh data directory under /tmp,
removed afterwards. Raise the open-files limit first (ulimit -n 20000).
"""

import argparse
import asyncio
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HOST = "127.0.0.1"


class Client:
    """One line client that reconnects whenever its connection ends."""

    def __init__(self, port):
        self.port = port
        self.greeted = asyncio.Event()
        self.got_go = asyncio.Event()
        self.writer = None
        self.attempts = 0
        self.stopping = False

    async def run(self):
        backoff = 0.1
        while not self.stopping:
            try:
                self.attempts += 1
                reader, writer = await asyncio.open_connection(HOST, self.port)
            except OSError:
                # Refused while the server restarts: back off with jitter,
                # as the official clients do (up to 5 s).
                await asyncio.sleep(backoff * (0.5 + random.random()))
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.1
            self.writer = writer
            try:
                while True:
                    line = await reader.readline()
                    if not line:
                        break
                    if line.startswith(b"You are "):
                        self.greeted.set()
                    elif line.rstrip(b"\n").endswith(b": restart-go"):
                        self.got_go.set()
            except (ConnectionError, OSError):
                pass
            self.greeted.clear()
            self.writer = None
            writer.close()


def start_server(binary, port, data_dir):
    """Starts hubbub in the background (see wait_listening)."""
    process = subprocess.Popen(
        [binary, "--data-dir", data_dir,
         "--tcp-addr", f"{HOST}:{port}", "--http-addr", "off", "--admin-addr", f"{HOST}:0",
         "--flood-rate", "0", "--max-connections-per-ip", "0", "--max-connections", "0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return process


async def wait_listening(port, deadline):
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection(HOST, port)
            writer.close()
            return True
        except OSError:
            await asyncio.sleep(0.01)
    return False


async def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=10000)
    parser.add_argument("--binary", default="target/release/hubbub")
    parser.add_argument("--port", type=int, default=7501)
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()
    deadline = time.monotonic() + args.timeout
    data_dir = tempfile.mkdtemp(prefix="hubbub-restart-")
    server = start_server(args.binary, args.port, data_dir)
    try:
        if not await wait_listening(args.port, deadline):
            sys.exit("the server did not start")
        # Everyone connects at once.
        clients = [Client(args.port) for _ in range(args.clients)]
        tasks = [asyncio.create_task(c.run()) for c in clients]
        for c in clients:
            await asyncio.wait_for(c.greeted.wait(), max(1, deadline - time.monotonic()))
        before = sum(c.greeted.is_set() for c in clients)
        attempts_before = sum(c.attempts for c in clients)
        await asyncio.sleep(2)

        stop_started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        await asyncio.get_running_loop().run_in_executor(None, server.wait)
        stop_secs = time.monotonic() - stop_started

        server = start_server(args.binary, args.port, data_dir)
        if not await wait_listening(args.port, deadline):
            sys.exit("the server did not start again")
        listening = time.monotonic()
        back = 0
        for c in clients:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                await asyncio.wait_for(c.greeted.wait(), left)
                back += 1
            except asyncio.TimeoutError:
                break
        all_back_secs = time.monotonic() - listening
        attempts = sum(c.attempts for c in clients) - attempts_before
        await asyncio.sleep(1)

        speaker = next((c for c in clients if c.writer is not None), None)
        reached = 0
        if speaker is not None:
            sent = time.monotonic()
            speaker.writer.write(b"restart-go\n")
            await speaker.writer.drain()
            try:
                await asyncio.wait_for(
                    asyncio.gather(*(c.got_go.wait() for c in clients)),
                    max(1, min(30, deadline - time.monotonic())))
            except asyncio.TimeoutError:
                pass
            reached = sum(c.got_go.is_set() for c in clients)
            go_secs = time.monotonic() - sent
        print(f"clients connected before the restart: {before} of {args.clients}")
        print(f"old server stopped (SIGTERM to exit) in {stop_secs:.2f} s")
        print(f"back after the restart: {back} of {before}, all within {all_back_secs:.2f} s "
              f"of the new server listening ({attempts} connection attempts)")
        if speaker is not None:
            print(f"one message after the restart reached {reached} of {args.clients} "
                  f"(the last within {go_secs:.2f} s)")
        for c in clients:
            c.stopping = True
        for t in tasks:
            t.cancel()
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
