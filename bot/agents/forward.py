"""Inside an agent's sandbox: a TCP port on 127.0.0.1 that leads to the egress proxy.

The sandbox has a network of its own with nothing but loopback in it; the
egress proxy (bot/agents/egress.py) listens outside, on a Unix socket bound
into the sandbox. Agent CLIs want a TCP proxy address (HTTPS_PROXY), so this
forwards each connection on 127.0.0.1:PORT to that socket.

Run as `python3 -I -c SOURCE HOST:PORT SOCKET` with the system python, inside
the sandbox: it listens first, then goes to the background and exits 0, so a
command started after it finds the port open. Stdlib only, on purpose; the
egress proxy imports `pipe` from here.
"""

import os
import selectors
import socket
import sys
import threading

CHUNK = 65536


def pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until both sides are done, then close both.

    One side's end of stream is passed on as a half close (shutdown), so a
    client that sends its request and then shuts its side still gets its answer.
    """
    peers = {a: b, b: a}
    selector = selectors.DefaultSelector()
    try:
        for sock in peers:
            selector.register(sock, selectors.EVENT_READ)
        while selector.get_map():
            for key, _ in selector.select():
                source = key.fileobj
                assert isinstance(source, socket.socket)
                data = source.recv(CHUNK)
                if data:
                    peers[source].sendall(data)
                    continue
                selector.unregister(source)
                peers[source].shutdown(socket.SHUT_WR)
    except (OSError, ValueError):
        pass  # a reset, or closed meanwhile (ValueError): the connection is over either way
    finally:
        selector.close()
        a.close()
        b.close()


def serve(client: socket.socket, target: str) -> None:
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        upstream.connect(target)
    except OSError:
        client.close()
        upstream.close()
        return
    pipe(client, upstream)


def main(listen: str, target: str) -> None:
    host, _, port = listen.rpartition(":")
    server = socket.create_server((host, int(port)))
    if os.fork():
        os._exit(0)  # listening: the command may start
    # Not holding the command's output open: its reader waits for the end of it.
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    while True:
        client, _ = server.accept()
        threading.Thread(target=serve, args=(client, target), daemon=True).start()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
