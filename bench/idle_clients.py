#!/usr/bin/env python3
"""Opens COUNT keep-alive HTTP/1.1 connections to 127.0.0.1:PORT and keeps them idle.

    idle_clients.py PORT COUNT [HOST_HEADER]

Each connection sends one GET and reads its whole response (so the proxy has served a request
on it and holds it as an idle keep-alive connection), then stays open and silent. When every
connection is done the script prints `ready OPENED FAILED` on stdout. On SIGUSR1 it checks
that the connections are still open (not closed by the proxy), prints `alive ALIVE`, closes
them all and exits. Used by `bench/memory`; stdlib only.
"""

import asyncio
import signal
import socket
import sys

# Connections being set up at once: stays below the proxies' listen backlogs.
PARALLEL = 64
# How long one connection may take to connect and get its response.
TIMEOUT_SECONDS = 30
# How long the connections are held at most while waiting for SIGUSR1.
MAX_IDLE_SECONDS = 600


async def read_response(loop, sock):
    """Reads one response with a Content-Length body; returns its status code."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await loop.sock_recv(sock, 4096)
        if not chunk:
            raise ConnectionError("closed before the response head")
        data += chunk
        if len(data) > 65536:
            raise ConnectionError("response head too large")
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = await loop.sock_recv(sock, 4096)
        if not chunk:
            raise ConnectionError("closed in the response body")
        body += chunk
    return status


async def open_one(loop, port, request, gate):
    """One connection past its first request, or None when it failed."""
    async with gate:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            async with asyncio.timeout(TIMEOUT_SECONDS):
                await loop.sock_connect(sock, ("127.0.0.1", port))
                await loop.sock_sendall(sock, request)
                status = await read_response(loop, sock)
            if status != 200:
                raise ConnectionError(f"status {status}")
            return sock
        except (OSError, ConnectionError, TimeoutError, ValueError, IndexError) as error:
            print(f"connection failed: {error!r}", file=sys.stderr)
            sock.close()
            return None


def still_open(sock):
    """Whether the peer has not closed the connection (nothing to read, no EOF)."""
    try:
        data = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return bool(data)


async def main():
    port, count = int(sys.argv[1]), int(sys.argv[2])
    host = sys.argv[3] if len(sys.argv) > 3 else "app.example.com"
    request = f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(PARALLEL)
    results = await asyncio.gather(*(open_one(loop, port, request, gate) for _ in range(count)))
    sockets = [sock for sock in results if sock is not None]
    checked = asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, checked.set)
    print(f"ready {len(sockets)} {count - len(sockets)}", flush=True)
    try:
        # Bounded: a client left behind by its script gives up after MAX_IDLE_SECONDS.
        await asyncio.wait_for(checked.wait(), MAX_IDLE_SECONDS)
    except TimeoutError:
        pass
    alive = sum(1 for sock in sockets if still_open(sock))
    print(f"alive {alive}", flush=True)
    for sock in sockets:
        sock.close()


if __name__ == "__main__":
    asyncio.run(main())
