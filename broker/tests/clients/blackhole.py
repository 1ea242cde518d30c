"""A TCP relay that can be cut: while cut, open connections are dropped and new ones are
accepted and then never answered, as an object store behind a failed network path looks to
its clients (timeouts, not refusals)."""

from __future__ import annotations

import socket
import threading

from harness import free_port


class Blackhole:
    """Relays 127.0.0.1:`port` to `target_port` until `cut()`; `restore()` relays again."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        self._cut = False
        self._open: set[socket.socket] = set()
        self._held: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.settimeout(0.2)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="blackhole", daemon=True)
        self._thread.start()

    def cut(self) -> None:
        """Drops every relayed connection; new ones hang unanswered."""
        with self._lock:
            self._cut = True
            for s in list(self._open):
                _close(s)
            self._open.clear()

    def restore(self) -> None:
        """Relays again; the connections held while cut are closed."""
        with self._lock:
            self._cut = False
            for s in self._held:
                _close(s)
            self._held.clear()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(5)
        self.cut()
        self.restore()
        _close(self._listener)

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                if self._cut:
                    self._held.append(client)
                    continue
                try:
                    upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                except OSError:
                    _close(client)
                    continue
                self._open.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                for s in (source, sink):
                    self._open.discard(s)
            _close(source)
            _close(sink)


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass
