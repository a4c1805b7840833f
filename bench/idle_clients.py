#!/usr/bin/env python3
"""Opens COUNT keep-alive HTTP/1.1 connections to 127.0.0.1:PORT and keeps them idle.

    idle_clients.py PORT COUNT [HOST_HEADER] [h2c]

Each connection sends one GET and reads its whole response (so the proxy has served a request
on it and holds it as an idle keep-alive connection), then stays open and silent. With `h2c`
the connection is HTTP/2 with prior knowledge: the preface, an empty SETTINGS, the server's
SETTINGS acknowledged, one GET on stream 1 read to its END_STREAM. When every
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


def h2c_request(host):
    """The client's first bytes: the preface, an empty SETTINGS, and a GET on stream 1 (HPACK:
    :method GET, :scheme http, :path / from the static table, :authority as a literal)."""
    block = bytes([0x82, 0x86, 0x84, 0x41, len(host)]) + host.encode()
    headers = len(block).to_bytes(3, "big") + bytes([0x1, 0x5]) + (1).to_bytes(4, "big")
    settings = (0).to_bytes(3, "big") + bytes([0x4, 0x0]) + (0).to_bytes(4, "big")
    return b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + settings + headers + block


async def read_h2c_response(loop, sock):
    """Reads frames until stream 1 ends; acknowledges the server's SETTINGS. Returns 200 when
    the response's first header is the static table's `:status 200`, else 0."""
    data = b""
    status = 0

    async def need(n):
        nonlocal data
        while len(data) < n:
            chunk = await loop.sock_recv(sock, 16384)
            if not chunk:
                raise ConnectionError("closed before the response ended")
            data += chunk

    while True:
        await need(9)
        length = int.from_bytes(data[:3], "big")
        kind, flags, stream = data[3], data[4], int.from_bytes(data[5:9], "big") & 0x7FFFFFFF
        await need(9 + length)
        payload, data = data[9 : 9 + length], data[9 + length :]
        if kind == 0x4 and not flags & 0x1:
            await loop.sock_sendall(sock, (0).to_bytes(3, "big") + bytes([0x4, 0x1]) + bytes(4))
        elif kind == 0x7:
            raise ConnectionError("GOAWAY")
        elif stream == 1 and kind == 0x1:
            status = 200 if payload[:1] == b"\x88" else 0
            if flags & 0x1:
                return status
        elif stream == 1 and kind == 0x0 and flags & 0x1:
            return status
        elif stream == 1 and kind == 0x3:
            raise ConnectionError("stream reset")


async def open_one(loop, port, request, gate, h2c=False):
    """One connection past its first request, or None when it failed."""
    async with gate:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            async with asyncio.timeout(TIMEOUT_SECONDS):
                await loop.sock_connect(sock, ("127.0.0.1", port))
                await loop.sock_sendall(sock, request)
                read = read_h2c_response if h2c else read_response
                status = await read(loop, sock)
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
    h2c = len(sys.argv) > 4 and sys.argv[4] == "h2c"
    request = h2c_request(host) if h2c else f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(PARALLEL)
    results = await asyncio.gather(*(open_one(loop, port, request, gate, h2c) for _ in range(count)))
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
