#!/usr/bin/python3
"""Hostile program for the broker tests: runs inside a prison and attacks the supervisor's
broker through the syscalls it sees. Prints one `name: result` line per step.

  flood N THREADS      N refused syscalls (ptrace) spread over THREADS threads: all EPERM
  race PATH SECRET N   open PATH N times while other threads rewrite the buffer to SECRET:
                       how many opens returned SECRET's content
  bad                  unmapped, unterminated, over-long and NUL-laden paths and addresses
  die                  threads blocked in the broker while the process kills itself
"""
import ctypes
import os
import sys
import threading
import time

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
SYS_ptrace, SYS_openat, SYS_connect, SYS_execve, SYS_mkdir = 101, 257, 42, 59, 83
AT_FDCWD = -100


def sys_(nr, *args):
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    return r if r >= 0 else -ctypes.get_errno()


def flood(n, threads):
    per = n // threads
    bad = [0] * threads

    def work(i):
        for _ in range(per):
            if sys_(SYS_ptrace, 0, 0, 0, 0) != -1:  # -EPERM
                bad[i] += 1

    t0 = time.monotonic()
    ts = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    dt = time.monotonic() - t0
    print(f"flood: {per * threads} calls, {sum(bad)} not EPERM, {dt * 1e6 / (per * threads):.1f} us each")


def race(path, secret, n):
    a = path.encode() + b"\0"
    b = secret.encode() + b"\0"
    size = max(len(a), len(b))
    buf = ctypes.create_string_buffer(size)
    stop = False

    def flip():
        while not stop:
            ctypes.memmove(buf, b, len(b))
            ctypes.memmove(buf, a, len(a))

    ts = [threading.Thread(target=flip) for _ in range(2)]
    for t in ts:
        t.start()
    leaked = opened = 0
    want = open(path, "rb").read()
    for _ in range(n):
        fd = sys_(SYS_openat, AT_FDCWD, ctypes.addressof(buf), os.O_RDONLY, 0)
        if fd >= 0:
            opened += 1
            if os.read(fd, 4096) != want:
                leaked += 1
            os.close(fd)
    stop = True
    for t in ts:
        t.join()
    print(f"race: {n} opens, {opened} opened, {leaked} secret")


def bad():
    page = 4096
    mm = ctypes.CDLL(None).mmap
    mm.restype = ctypes.c_void_p
    mm.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    base = mm(None, 2 * page, 3, 0x22, -1, 0)
    ctypes.CDLL(None).munmap(ctypes.c_void_p(base + page), page)
    # A path running into the unmapped page, unterminated.
    ctypes.memset(base, ord("a"), page)
    keep = []

    def c(b):
        keep.append(ctypes.create_string_buffer(b))
        return ctypes.addressof(keep[-1])

    results = {
        "unmapped": sys_(SYS_openat, AT_FDCWD, 8, 0, 0),
        "unterminated": sys_(SYS_openat, AT_FDCWD, base, 0, 0),
        "straddling": sys_(SYS_openat, AT_FDCWD, base + page - 3, 0, 0),
        "long": sys_(SYS_openat, AT_FDCWD, c(b"/" + b"x" * 5000), 0, 0),
        "nul": sys_(SYS_mkdir, c(b"/etc\0/../tmp/x"), 0o755),
        "exec-unmapped": sys_(SYS_execve, 16, 0, 0),
        "connect-unmapped": sys_(SYS_connect, 0, 8, 16),
        "connect-huge": sys_(SYS_connect, 0, base, 1 << 30),
        "proc-root": sys_(SYS_openat, AT_FDCWD, c(b"/proc/1/root/etc/shadow"), 0, 0),
        "bad-dirfd": sys_(SYS_openat, 999, c(b"x"), 0, 0),
    }
    for k, v in results.items():
        print(f"bad {k}: {v}")


def die():
    path = ctypes.create_string_buffer(b"/etc/passwd")

    def work():
        while True:
            sys_(SYS_ptrace, 0, 0, 0, 0)
            fd = sys_(SYS_openat, AT_FDCWD, ctypes.addressof(path), 0, 0)
            if fd >= 0:
                os.close(fd)

    for _ in range(8):
        threading.Thread(target=work, daemon=True).start()
    time.sleep(0.3)
    print("die: killing", flush=True)
    os.kill(os.getpid(), 9)


cmd = sys.argv[1]
if cmd == "flood":
    flood(int(sys.argv[2]), int(sys.argv[3]))
elif cmd == "race":
    race(sys.argv[2], sys.argv[3], int(sys.argv[4]))
elif cmd == "bad":
    bad()
elif cmd == "die":
    die()
