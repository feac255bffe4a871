"""Real, dynamically linked programs from the host (ld.so loads their libraries
through the sandbox's file-backed mmap), run natively and under the sentry."""
import pytest

PROGRAMS = {
    "bash-arith-loop-subshell": ["/bin/bash", "-c", 'echo $((6*7)); for i in 1 2 3; do printf "%s" $i; done; echo; echo $(echo sub) "$(basename /a/b)"'],
    "bash-pipes-and-exit": ["/bin/bash", "-c", "seq 1 200 | grep 7 | wc -l; (exit 3); echo status $?"],
    "coreutils-ls-sort-wc": ["/bin/bash", "-c", "ls -la /usr/bin | sort | wc -l"],
    "coreutils-find-head": ["/bin/bash", "-c", "find /usr/lib -maxdepth 2 -name '*.so*' | sort | head -5"],
    "coreutils-xargs": ["/bin/bash", "-c", "printf 'a\\nb\\nc\\n' | xargs echo joined:"],
    "dash-default-shell": ["/bin/sh", "-c", "echo dash; cat /etc/debian_version"],
    "python3-json": ["python3", "-c", "import json, hashlib; print(json.dumps(sorted({'b': 1, 'a': 2}))); print(hashlib.sha256(b'x').hexdigest())"],
    "python3-subprocess": ["python3", "-c", "import subprocess; print(subprocess.run(['echo', 'child'], capture_output=True, text=True).stdout.strip())"],
    "python3-threads": ["python3", "-c", "import threading; r = [0] * 16\n"
                        "def w(i): r[i] = sum(range(i * 10000, (i + 1) * 10000))\n"
                        "ts = [threading.Thread(target=w, args=(i,)) for i in range(16)]\n"
                        "[t.start() for t in ts]; [t.join() for t in ts]\n"
                        "print(sum(r) == sum(range(160000)), threading.active_count())"],
    "python3-multiprocessing-pool": ["python3", "-c", "import multiprocessing as m\n"
                                     "with m.Pool(2) as p: print(p.map(abs, range(-5, 0)))"],
    "python3-signal-alarm": ["python3", "-c", "import signal, time\n"
                             "signal.signal(signal.SIGALRM, lambda s, f: print('alarm', s))\n"
                             "signal.setitimer(signal.ITIMER_REAL, 0.05); time.sleep(1); print('woken')"],
    "bash-traps-and-jobs": ["/bin/bash", "-c", "trap 'echo trapped USR1' USR1; kill -USR1 $$; echo after; "
                            "sleep 0.1 & wait $!; echo bg $?; (sleep 5) & kill $!; wait $!; echo killed $?; "
                            "sleep 10 & p=$!; kill -STOP $p; kill -CONT $p; kill $p; wait $p; echo stopped-killed $?"],
    "python3-asyncio-unix": ["python3", "-c", "import asyncio, socket\n"
                             "async def main():\n"
                             "    a, b = socket.socketpair()\n"
                             "    r, w = await asyncio.open_unix_connection(sock=a)\n"
                             "    loop = asyncio.get_running_loop()\n"
                             "    await loop.sock_sendall(b, b'ping\\n')\n"
                             "    print((await r.readline()).decode().strip())\n"
                             "    w.write(b'pong'); await w.drain(); print(await loop.sock_recv(b, 10))\n"
                             "    w.close(); b.close()\n"
                             "asyncio.run(asyncio.sleep(0)); print('ok'); asyncio.run(main())"],
    "perl": ["perl", "-e", "print join(',', map { $_ * 2 } 1..5), qq(\\n)"],
}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_real_program(name, differential):
    differential(PROGRAMS[name])


def test_python_sees_sandbox_pid_and_release(run_sandboxed):
    proc = run_sandboxed(["python3", "-c", "import os, platform; print(os.getpid(), platform.release())"])
    assert proc.returncode == 0, proc.stderr
    pid, release = proc.stdout.split()
    assert pid == b"1" and release.endswith(b"-ringfence")


def test_inet_sockets_are_refused(run_sandboxed):
    """No inet or netlink sockets yet: socket() fails with EAFNOSUPPORT (natively it succeeds)."""
    proc = run_sandboxed(["python3", "-c", "import socket\n"
                          "for family in (socket.AF_INET, socket.AF_INET6, socket.AF_NETLINK):\n"
                          "    try: socket.socket(family, socket.SOCK_DGRAM)\n"
                          "    except OSError as e: print(e.errno)\n"
                          "print(socket.socket(socket.AF_UNIX).family.name)"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [b"97", b"97", b"97", b"AF_UNIX"]
