#!/usr/bin/env python3
"""Benchmark of twauth's credential checks and logins against a trivial
actix-web handler, on SQLite and PostgreSQL, in one run on one machine.

It builds the release binaries, seeds users, sessions and key pairs straight
into fresh databases (digests are SHA-256 of the token string, as twauth
stores them, so the benchmark can present valid tokens), drives load with wrk at a
fixed number of connections, and writes every figure to a JSON file under
tools/bench/results/ and a table of ratios to the baseline to stdout.

Needs wrk (Debian package `wrk`), and for PostgreSQL psql, pgbench and a
server on 127.0.0.1:5432 where the user may create databases. It creates
only databases named twauth_bench_*, and drops them when it ends.

    python3 tools/bench/run.py                 # the documented run
    python3 tools/bench/run.py --duration 2 --sizes 1000 --login-seconds 3
"""

import argparse
import hashlib
import http.client
import json
import os
import queue
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "tools" / "bench"
BASE = "/api/auth/v2"
# Sessions per user in the seed.
SESSIONS_PER_USER = 10
# Credentials the load generator cycles through, drawn at random from the seed.
ROTATION = 2000


def log(message):
    print(f"== {message}", file=sys.stderr, flush=True)


# Machine and load.


def machine_info():
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory_mib": mem_kib // 1024,
        "kernel": os.uname().release,
    }


def load_average():
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def rss_kib(pid, field="VmRSS"):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except FileNotFoundError:
        pass
    return None


# Processes.


class Server:
    """A child process that prints the URL it listens on."""

    def __init__(self, command, env, pattern, log_path):
        self.log = open(log_path, "w")
        self.process = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        self.url = None
        deadline = time.time() + 60
        while time.time() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            match = re.search(pattern, line)
            if match:
                self.url = match.group(1)
                break
        if self.url is None:
            self.stop()
            raise RuntimeError(f"{command[0]} did not start; see {log_path}")
        # Keep reading stdout so the child never blocks on a full pipe.
        threading.Thread(target=self.process.stdout.read, daemon=True).start()

    @property
    def pid(self):
        return self.process.pid

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def wrk(url, credentials, args, pid=None):
    """Runs wrk against `url`, cycling through `credentials` (a file), and
    samples the server's resident memory while it runs."""
    command = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{args.duration}s",
        "--timeout",
        "5s",
        "-s",
        str(BENCH / "rotate.lua"),
        url,
        "--",
        str(credentials),
    ]
    samples = []
    stop = threading.Event()

    def sample():
        while not stop.wait(0.5):
            value = rss_kib(pid) if pid else None
            if value:
                samples.append(value)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    stop.set()
    sampler.join()
    line = next(x for x in output.splitlines() if x.startswith("JSON "))
    result = json.loads(line[5:])
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["rss_max_kib"] = max(samples) if samples else None
    return result


def warm_up(url, credentials, args):
    short = argparse.Namespace(**vars(args))
    short.duration = max(1, args.duration // 5)
    wrk(url, credentials, short)


# Seeding. Token, key and secret strings are derived from row numbers, so the
# benchmark can present valid credentials; the database holds only digests.


def token(i):
    return f"benchtoken{i}"


def api_key(i):
    return f"benchkey{i}"


def api_secret(i):
    return f"benchsecret{i}"


def md5_uuid(text):
    return uuid.UUID(hashlib.md5(text.encode()).hexdigest())


def seed_postgres(url, sessions):
    users = max(1, sessions // SESSIONS_PER_USER)
    sql = f"""
SET synchronous_commit = off;
INSERT INTO users (id, alias, alias_key, full_name, roles, groups, verified_at, created_at)
SELECT md5('user' || i)::uuid, 'bench' || i, 'bench' || i, 'Bench User',
       '["user"]', '["public"]', now(), now()
FROM generate_series(1, {users}) i;
INSERT INTO emails (id, user_id, address, verified, preferred, created_at)
SELECT md5('email' || i)::uuid, md5('user' || i)::uuid, 'bench' || i || '@example.com',
       true, true, now()
FROM generate_series(1, {users}) i;
INSERT INTO sessions (id, user_id, token_digest, ip, user_agent, created_at, verified_at,
                      expires_at, last_seen_at)
SELECT md5('session' || i)::uuid, md5('user' || ((i - 1) % {users} + 1))::uuid,
       sha256(convert_to('benchtoken' || i, 'UTF8')), '127.0.0.1', 'bench',
       now(), now(), now() + interval '30 days', now()
FROM generate_series(1, {sessions}) i;
INSERT INTO key_pairs (id, user_id, name, api_key, secret_digest, created_at, expires_at,
                       verified_at)
SELECT md5('keypair' || i)::uuid, md5('user' || i)::uuid, 'bench', 'benchkey' || i,
       sha256(convert_to('benchsecret' || i, 'UTF8')), now(), now() + interval '300 days', now()
FROM generate_series(1, {users}) i;
VACUUM ANALYZE;
"""
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", url], input=sql, text=True, check=True)
    return users


def seed_sqlite(path, sessions):
    users = max(1, sessions // SESSIONS_PER_USER)
    now = int(time.time())
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = OFF")
    with db:
        db.executemany(
            "INSERT INTO users (id, alias, alias_key, full_name, roles, groups, verified_at,"
            " created_at) VALUES (?, ?, ?, 'Bench User', '[\"user\"]', '[\"public\"]', ?, ?)",
            (
                (md5_uuid(f"user{i}").bytes, f"bench{i}", f"bench{i}", now, now)
                for i in range(1, users + 1)
            ),
        )
        db.executemany(
            "INSERT INTO emails (id, user_id, address, verified, preferred, created_at)"
            " VALUES (?, ?, ?, 1, 1, ?)",
            (
                (md5_uuid(f"email{i}").bytes, md5_uuid(f"user{i}").bytes,
                 f"bench{i}@example.com", now)
                for i in range(1, users + 1)
            ),
        )
        user_ids = [md5_uuid(f"user{i}").bytes for i in range(1, users + 1)]
        db.executemany(
            "INSERT INTO sessions (id, user_id, token_digest, ip, user_agent, created_at,"
            " verified_at, expires_at, last_seen_at)"
            " VALUES (?, ?, ?, '127.0.0.1', 'bench', ?, ?, ?, ?)",
            (
                (md5_uuid(f"session{i}").bytes, user_ids[(i - 1) % users],
                 hashlib.sha256(token(i).encode()).digest(), now, now, now + 30 * 86400, now)
                for i in range(1, sessions + 1)
            ),
        )
        db.executemany(
            "INSERT INTO key_pairs (id, user_id, name, api_key, secret_digest, created_at,"
            " expires_at, verified_at) VALUES (?, ?, 'bench', ?, ?, ?, ?, ?)",
            (
                (md5_uuid(f"keypair{i}").bytes, user_ids[i - 1], api_key(i),
                 hashlib.sha256(api_secret(i).encode()).digest(), now, now + 300 * 86400, now)
                for i in range(1, users + 1)
            ),
        )
    db.execute("ANALYZE")
    db.close()
    return users


def write_credentials(directory, sessions, users):
    rng = random.Random(sessions)
    files = {}
    picks = [rng.randint(1, sessions) for _ in range(ROTATION)]
    files["bearer"] = directory / "bearer.txt"
    files["bearer"].write_text("".join(f"Authorization: Bearer {token(i)}\n" for i in picks))
    files["invalid"] = directory / "invalid.txt"
    files["invalid"].write_text(
        "".join(f"Authorization: Bearer benchinvalid{i}\n" for i in range(ROTATION))
    )
    keys = [rng.randint(1, users) for _ in range(ROTATION)]
    files["keypair"] = directory / "keypair.txt"
    files["keypair"].write_text(
        "".join(f"api-key: {api_key(i)}\tapi-secret: {api_secret(i)}\n" for i in keys)
    )
    return files


# Logins: POST /session, read the code from the file outbox, PUT
# /session/verification. Each login hashes its code once and verifies it once.


class Outbox:
    """Reads codes from the server's outbox folder as messages arrive."""

    CODE = re.compile(r"^ +([0-9]{6})\r?$", re.M)

    def __init__(self, folder):
        self.folder = Path(folder)
        self.seen = set()
        self.codes = {}
        self.lock = threading.Condition()
        self.stopped = False
        threading.Thread(target=self.scan, daemon=True).start()

    def scan(self):
        while not self.stopped:
            try:
                names = os.listdir(self.folder)
            except FileNotFoundError:
                names = []
            for name in names:
                if name in self.seen or not name.endswith(".eml"):
                    continue
                text = (self.folder / name).read_text(errors="replace")
                to = re.search(r"^To: .*?<?([^<>\s]+@[^<>\s]+)>?\r?$", text, re.M)
                code = self.CODE.search(text)
                if not to or not code:
                    continue
                self.seen.add(name)
                with self.lock:
                    self.codes.setdefault(to.group(1).lower(), []).append(code.group(1))
                    self.lock.notify_all()
            time.sleep(0.01)

    def take(self, address, timeout=30):
        deadline = time.time() + timeout
        with self.lock:
            while not self.codes.get(address):
                left = deadline - time.time()
                if left <= 0:
                    raise TimeoutError(f"no code for {address}")
                self.lock.wait(left)
            return self.codes[address].pop(0)


def login_run(url, outbox_dir, users, seconds, workers):
    host, port = url.split("//", 1)[1].split(":")
    outbox = Outbox(outbox_dir)
    done = []
    failures = []
    deadline = time.time() + seconds

    def worker(index):
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        user = index + 1
        while time.time() < deadline:
            address = f"bench{user}@example.com"
            started = time.time()
            try:
                conn.request("POST", f"{BASE}/session", json.dumps({"email": address}),
                             {"content-type": "application/json"})
                response = conn.getresponse()
                body = json.loads(response.read())
                if response.status != 202:
                    raise RuntimeError(f"login returned {response.status}: {body}")
                code = outbox.take(address)
                conn.request("PUT", f"{BASE}/session/verification",
                             json.dumps({"verificationCodeID": body["verificationCodeID"],
                                         "code": code}),
                             {"content-type": "application/json"})
                response = conn.getresponse()
                response.read()
                if response.status != 202:
                    raise RuntimeError(f"verification returned {response.status}")
                done.append(time.time() - started)
            except Exception as err:  # noqa: BLE001 - counted and reported
                failures.append(str(err))
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=60)
            user = (user - 1 + workers) % users + 1

    started = time.time()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.time() - started
    outbox.stopped = True
    done.sort()
    return {
        "logins": len(done),
        "seconds": elapsed,
        "logins_per_second": len(done) / elapsed,
        "p50_ms": 1000 * done[len(done) // 2] if done else None,
        "p99_ms": 1000 * done[min(len(done) - 1, len(done) * 99 // 100)] if done else None,
        "failures": len(failures),
        "first_failure": failures[0] if failures else None,
    }


# One backend at one size.


def twauth_env(args, database_url, outbox, cache):
    env = {
        "PATH": os.environ.get("PATH", ""),
        "TWAUTH_SERVER__LISTEN": "127.0.0.1:0",
        "TWAUTH_SERVER__WORKERS": str(args.workers),
        "TWAUTH_DATABASE__URL": database_url,
        "TWAUTH_DATABASE__MIGRATE_ON_START": "true",
        "TWAUTH_MAIL__TRANSPORT__TRANSPORT": "file",
        "TWAUTH_MAIL__TRANSPORT__DIR": str(outbox),
        "TWAUTH_AUTH__CODE_HASH_COST": str(args.cost),
        "TWAUTH_CACHE__ENABLED": "true" if cache else "false",
        # The login run sends many codes to few addresses from one client.
        "TWAUTH_LIMITS__CODES_PER_ADDRESS": "1000000",
        "TWAUTH_LIMITS__CODES_PER_ADDRESS_GAP": "0",
        "TWAUTH_LIMITS__LOGINS_PER_CLIENT": "1000000",
        "TWAUTH_LIMITS__VERIFICATIONS_PER_CLIENT": "1000000",
        "TWAUTH_LOG__LEVEL": args.log_level,
    }
    return env


def start_twauth(args, database_url, work, cache, name):
    outbox = work / f"outbox-{name}"
    outbox.mkdir(exist_ok=True)
    env = twauth_env(args, database_url, outbox, cache)
    server = Server([str(args.bin / "twauth"), "serve"], env,
                    r"twauth listening on (http://\S+)", work / f"{name}.log")
    time.sleep(1)
    return server, outbox


def measure_backend(args, backend, size, work, results):
    log(f"{backend}, {size} sessions: seeding")
    if backend == "sqlite":
        path = work / f"bench-{size}.db"
        url = f"sqlite://{path}"
        subprocess.run([str(args.bin / "twauth"), "migrate"], check=True,
                       env=twauth_env(args, url, work / "outbox", True), capture_output=True)
        started = time.time()
        users = seed_sqlite(path, size)
    else:
        name = f"twauth_bench_{size}"
        admin = args.postgres
        subprocess.run(["psql", "-q", admin, "-c", f"DROP DATABASE IF EXISTS {name}"], check=True)
        subprocess.run(["psql", "-q", admin, "-c", f"CREATE DATABASE {name}"], check=True)
        url = admin.rsplit("/", 1)[0] + "/" + name
        subprocess.run([str(args.bin / "twauth"), "migrate"], check=True,
                       env=twauth_env(args, url, work / "outbox", True), capture_output=True)
        started = time.time()
        users = seed_postgres(url, size)
    seed_seconds = time.time() - started
    credentials = write_credentials(work, size, users)
    entry = {"backend": backend, "sessions": size, "users": users,
             "seed_seconds": seed_seconds}

    for cache in (True, False):
        label = "cache" if cache else "nocache"
        server, outbox = start_twauth(args, url, work, cache, f"{backend}-{size}-{label}")
        try:
            endpoint = f"{server.url}{BASE}"
            if cache:
                entry["rss_idle_kib"] = rss_kib(server.pid)
            kinds = ["bearer", "keypair", "invalid"] if cache else ["bearer", "keypair"]
            for kind in kinds:
                path = "/keypair" if kind == "keypair" else "/session"
                log(f"{backend}, {size} sessions, {label}: {kind}")
                warm_up(endpoint + path, credentials[kind], args)
                entry[f"{kind}_{label}"] = wrk(endpoint + path, credentials[kind], args,
                                               server.pid)
            if cache and size == min(args.sizes) and args.login_seconds > 0:
                log(f"{backend}, {size} sessions: logins for {args.login_seconds} s")
                entry["login"] = login_run(server.url, outbox, users, args.login_seconds,
                                           args.login_workers)
            entry[f"rss_peak_kib_{label}"] = rss_kib(server.pid, "VmHWM")
        finally:
            server.stop()

    if size == min(args.sizes) and args.log_level != "warn":
        # The same check with the per-request log line filtered out, to show
        # what logging costs.
        quiet = argparse.Namespace(**vars(args))
        quiet.log_level = "warn"
        server, _ = start_twauth(quiet, url, work, True, f"{backend}-{size}-quiet")
        try:
            log(f"{backend}, {size} sessions, cache, log level warn: bearer")
            endpoint = f"{server.url}{BASE}/session"
            warm_up(endpoint, credentials["bearer"], args)
            entry["bearer_cache_quiet"] = wrk(endpoint, credentials["bearer"], args, server.pid)
        finally:
            server.stop()
    if backend == "postgres":
        subprocess.run(["psql", "-q", args.postgres, "-c",
                        f"DROP DATABASE IF EXISTS twauth_bench_{size} WITH (FORCE)"], check=True)
    results["runs"].append(entry)


def measure_baseline(args, work):
    log("baseline: trivial actix-web handler")
    server = Server([str(args.bin / "bench-baseline"), "127.0.0.1:0", str(args.workers)],
                    {"PATH": os.environ.get("PATH", "")}, r"listening on (http://\S+)",
                    work / "baseline.log")
    try:
        credentials = work / "baseline.txt"
        credentials.write_text("Authorization: Bearer benchtoken1\n")
        url = f"{server.url}{BASE}/session"
        warm_up(url, credentials, args)
        result = wrk(url, credentials, args, server.pid)
        result["rss_idle_kib"] = None
        return result
    finally:
        server.stop()


def measure_pgbench(args):
    log("pgbench -S")
    name = "twauth_bench_pgbench"
    admin = args.postgres
    url = admin.rsplit("/", 1)[0] + "/" + name
    subprocess.run(["psql", "-q", admin, "-c", f"DROP DATABASE IF EXISTS {name}"], check=True)
    subprocess.run(["psql", "-q", admin, "-c", f"CREATE DATABASE {name}"], check=True)
    try:
        subprocess.run(["pgbench", "-i", "-q", "-s", "10", url], check=True, capture_output=True)
        output = subprocess.run(
            ["pgbench", "-S", "-M", "prepared", "-c", str(args.connections), "-j",
             str(args.threads), "-T", str(args.duration), url],
            check=True, capture_output=True, text=True).stdout
    finally:
        subprocess.run(["psql", "-q", admin, "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
                       check=True)
    tps = float(re.search(r"tps = ([0-9.]+)", output).group(1))
    latency = re.search(r"latency average = ([0-9.]+) ms", output)
    return {"tps": tps, "latency_avg_ms": float(latency.group(1)) if latency else None,
            "clients": args.connections, "mode": "prepared", "scale": 10}


def measure_bcrypt(args):
    log(f"bcrypt rate at cost {args.cost}")
    output = subprocess.run(
        [str(args.bin / "bench-bcrypt"), str(args.cost), str(os.cpu_count()), "5"],
        check=True, capture_output=True, text=True).stdout
    return json.loads(output)


# The report.


def ratio(value, base):
    return value / base if value is not None and base else None


def targets(results):
    """List every target with its measured ratio and limit."""
    base = results["baseline"]
    rows = []
    for run in results["runs"]:
        where = f'{run["backend"]} {run["sessions"]}'
        for kind in ("bearer", "keypair"):
            figure = run.get(f"{kind}_cache")
            if not figure:
                continue
            rows.append((f"{where}: {kind} req/s vs baseline", ratio(figure["rps"], base["rps"]),
                         ">=", 0.80))
            rows.append((f"{where}: {kind} p99 vs baseline p99",
                         ratio(figure["p99_us"], base["p99_us"]), "<=", 1.25))
        if run["backend"] == "postgres" and results.get("pgbench"):
            for kind in ("bearer", "keypair"):
                figure = run.get(f"{kind}_nocache")
                if figure:
                    rows.append((f"{where}: {kind} without cache vs pgbench -S",
                                 ratio(figure["rps"], results["pgbench"]["tps"]), ">=", 0.50))
        if run.get("login") and results.get("bcrypt"):
            # A login hashes a code once and verifies it once: two bcrypt runs.
            pairs = results["bcrypt"]["hashes_per_second"] / 2
            rows.append((f"{where}: logins/s vs bcrypt pairs/s",
                         ratio(run["login"]["logins_per_second"], pairs), ">=", 0.80))
        idle = run.get("rss_idle_kib")
        if idle:
            rows.append((f"{where}: RSS idle (MB)", idle / 1024, "<=", 40))
        peak = max(filter(None, [run.get("rss_peak_kib_cache"), run.get("rss_peak_kib_nocache")]),
                   default=None)
        if peak:
            rows.append((f"{where}: RSS peak under load (MB)", peak / 1024, "<=", 150))
    by_backend = {}
    for run in results["runs"]:
        by_backend.setdefault(run["backend"], {})[run["sessions"]] = run
    for backend, sizes in by_backend.items():
        if len(sizes) < 2:
            continue
        small, large = sizes[min(sizes)], sizes[max(sizes)]
        for label in ("cache", "nocache"):
            a, b = small.get(f"bearer_{label}"), large.get(f"bearer_{label}")
            if a and b:
                rows.append((f"{backend}: bearer p50 {max(sizes)} vs {min(sizes)} ({label})",
                             ratio(b["p50_us"], a["p50_us"]), "<=", 1.20))
    return [
        {"target": name, "value": value, "op": op, "limit": limit,
         "met": value is not None and (value >= limit if op == ">=" else value <= limit)}
        for name, value, op, limit in rows
    ]


def print_report(results):
    base = results["baseline"]
    print(f'load average before: {results["load_before"]}, after: {results["load_after"]}')
    print(f'baseline: {base["rps"]:.0f} req/s, p50 {base["p50_us"] / 1000:.2f} ms, '
          f'p99 {base["p99_us"] / 1000:.2f} ms')
    if results.get("pgbench"):
        print(f'pgbench -S: {results["pgbench"]["tps"]:.0f} tps')
    if results.get("bcrypt"):
        print(f'bcrypt cost {results["bcrypt"]["cost"]}: '
              f'{results["bcrypt"]["hashes_per_second"]:.1f} hashes/s')
    print()
    print("| run | kind | req/s | x baseline | p50 ms | p99 ms | p99 x baseline |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for run in results["runs"]:
        for key in ("bearer_cache", "keypair_cache", "invalid_cache", "bearer_nocache",
                    "keypair_nocache", "bearer_cache_quiet"):
            figure = run.get(key)
            if not figure:
                continue
            print(f'| {run["backend"]} {run["sessions"]} | {key} | {figure["rps"]:.0f} | '
                  f'{figure["rps"] / base["rps"]:.2f} | {figure["p50_us"] / 1000:.2f} | '
                  f'{figure["p99_us"] / 1000:.2f} | {figure["p99_us"] / base["p99_us"]:.2f} |')
        if run.get("login"):
            login = run["login"]
            print(f'| {run["backend"]} {run["sessions"]} | login | '
                  f'{login["logins_per_second"]:.1f} | | {login["p50_ms"] or 0:.0f} | '
                  f'{login["p99_ms"] or 0:.0f} | |')
    print()
    print("| target | achieved | limit | met |")
    print("|---|---:|---|---|")
    for row in results["targets"]:
        value = "n/a" if row["value"] is None else f'{row["value"]:.2f}'
        print(f'| {row["target"]} | {value} | {row["op"]} {row["limit"]} | '
              f'{"yes" if row["met"] else "no"} |')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per figure")
    parser.add_argument("--connections", type=int, default=64, help="open HTTP connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=os.cpu_count(),
                        help="HTTP workers of twauth and of the baseline")
    parser.add_argument("--sizes", default="10000,1000000",
                        help="sessions to seed, comma-separated")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432/postgres",
                        help="admin URL of a local PostgreSQL server")
    parser.add_argument("--cost", type=int, default=10, help="bcrypt cost of codes")
    parser.add_argument("--login-seconds", type=int, default=15)
    parser.add_argument("--login-workers", type=int, default=8)
    parser.add_argument("--log-level", default="info", help="twauth's log filter")
    parser.add_argument("--skip-build", action="store_true")
    parser.add_argument("--out", help="JSON file to write; default results/<time>.json")
    args = parser.parse_args()
    args.sizes = [int(x) for x in args.sizes.split(",")]
    backends = args.backends.split(",")
    if not args.postgres.startswith("postgres://postgres@127.0.0.1:"):
        # Load goes to this machine only.
        parser.error("--postgres must name a server on 127.0.0.1")
    for tool in ["wrk"] + (["psql", "pgbench"] if "postgres" in backends else []):
        if not shutil.which(tool):
            parser.error(f"{tool} is not installed (wrk: apt-get install wrk)")

    target_dir = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    args.bin = target_dir / "release"
    if not args.skip_build:
        log("cargo build --release")
        subprocess.run(["cargo", "build", "--release", "-p", "twauth-server", "-p",
                        "twauth-bench"], cwd=ROOT, check=True)

    results = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(),
        "load_before": load_average(),
        "settings": {k: v for k, v in vars(args).items() if k != "bin"},
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="twauth-bench-") as work:
        work = Path(work)
        results["baseline"] = measure_baseline(args, work)
        results["bcrypt"] = measure_bcrypt(args)
        if "postgres" in backends:
            results["pgbench"] = measure_pgbench(args)
        for backend in backends:
            for size in args.sizes:
                measure_backend(args, backend, size, work, results)
    results["load_after"] = load_average()
    results["targets"] = targets(results)

    out = Path(args.out) if args.out else BENCH / "results" / (
        time.strftime("%Y%m%d-%H%M%S") + ".json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print_report(results)
    print(f"\nraw figures: {out}")


if __name__ == "__main__":
    main()
