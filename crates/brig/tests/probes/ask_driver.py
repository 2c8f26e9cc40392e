#!/usr/bin/python3
"""Drives `brig run --ask` as a person at a terminal would: runs the command in a new pty,
answers each question `[o]nce [a]lways [n]o` with the next key of KEYS (none left: no answer,
the question times out; a last `+` repeats the key before it for every further question), and
prints everything the terminal showed, then `exit N`.

  ask_driver.py KEYS COMMAND...
"""
import os
import pty
import select
import sys

keys = list(sys.argv[1])
repeat = None
if keys and keys[-1] == "+":
    keys.pop()
    repeat = keys[-1]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
out = b""
asked = 0
while True:
    r, _, _ = select.select([fd], [], [], 60)
    if not r:
        break
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
    while out.count(b"[o]nce [a]lways [n]o") > asked:
        asked += 1
        if keys:
            os.write(fd, keys.pop(0).encode())
        elif repeat:
            os.write(fd, repeat.encode())
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
print(f"\nexit {os.waitstatus_to_exitcode(status)}")
