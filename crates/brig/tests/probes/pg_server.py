#!/usr/bin/python3
"""A server for the egress tests, on the host: listens on 127.0.0.1:PORT, appends one line per
connection to LOG, and answers a PostgreSQL client's start-up with a FATAL error naming
itself (so psql proves it reached this server), anything else with `hello from the host`.

  pg_server.py PORT LOG
"""
import socket
import struct
import sys
import threading

port, log = int(sys.argv[1]), sys.argv[2]
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(64)
print("ready", flush=True)


def serve(c):
    with c:
        data = c.recv(8)
        with open(log, "a") as f:
            f.write("connection\n")
        if len(data) == 8 and struct.unpack("!ii", data) == (8, 80877103):  # SSLRequest
            c.sendall(b"N")
            data = c.recv(8)
        if len(data) >= 8 and struct.unpack("!i", data[4:8])[0] == 196608:  # protocol 3.0
            body = b"SFATAL\0VFATAL\0C28000\0Mbrig egress reached the server\0\0"
            c.sendall(b"E" + struct.pack("!i", len(body) + 4) + body)
        else:
            c.sendall(b"hello from the host\n")


while True:
    conn, _ = srv.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
