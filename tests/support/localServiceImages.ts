// Builds Postgres and Redis images from this machine's own files, because no image can be pulled here
// (the official `postgres` and `redis` images are on Docker Hub). Same recipe as localHaproxyImage.ts:
// a merged-/usr rootfs with Debian's binaries, every library `ldd` lists for them, a static busybox
// for /bin/sh and the small tools scripts use, accounts, then `docker import` with --change lines.
//
// What they keep of the official images, as components/baseServices.ts uses them:
// - postgres: POSTGRES_PASSWORD / POSTGRES_USER / POSTGRES_DB seed an empty /var/lib/postgresql/data
//   (initdb, then the database) and are ignored once it holds a cluster; listen_addresses '*' and
//   `host all all all scram-sha-256`; pg_isready, psql, pg_dump on PATH; USER postgres (uid 999).
// - redis: `redis-server --appendonly yes` as the container command, WORKDIR /data, redis-cli on
//   PATH, USER redis (uid 999), protected mode off (the official build compiles it off).
// How they differ, and why it is fine for the deploy:
// - No STOPSIGNAL (`docker import` refuses it): postgres stays a child of the entry script, which
//   turns Docker's SIGTERM into SIGINT, the official stop signal (fast shutdown: clients are cut,
//   a checkpoint is written). A plain SIGTERM would be a smart shutdown that waits for Medusa's pool.
// - The temporary server during initialisation listens on a private socket folder, so a pg_isready
//   health check cannot report healthy before the real server is up (the official one can).
// - Locale C.UTF-8 (glibc's, the only one on this machine) instead of en_US.utf8; UTF8 encoding either way.
// - Local (socket) connections are trusted, TCP ones need the password even from 127.0.0.1; no
//   /docker-entrypoint-initdb.d; no JIT (llvmjit.so would pull in the 100 MB libLLVM).
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { PrivateDockerd } from "./privateDockerd";

export const LOCAL_POSTGRES_IMAGE = "medusa-deploy/postgres:15-local";
export const LOCAL_REDIS_IMAGE = "medusa-deploy/redis:7-local";

/** The official images' service accounts are uid/gid 999 too, so volumes they wrote stay usable. */
const SERVICE_ID = 999;
const PATH_ENV = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/** Bumped when the recipe changes in a way the entry scripts' text does not show; forces a rebuild. */
const RECIPE_REVISION = 1;

const PG_MAJOR = "15";
const PG_BIN = `/usr/lib/postgresql/${PG_MAJOR}/bin`;
const PG_PKGLIB = `/usr/lib/postgresql/${PG_MAJOR}/lib`;
const PG_SHARE = `/usr/share/postgresql/${PG_MAJOR}`;
export const PGDATA = "/var/lib/postgresql/data";
/** The server, what initialisation runs, the health check, and the clients a runbook uses through `docker exec`. */
const PG_PROGRAMS = ["postgres", "initdb", "pg_ctl", "pg_isready", "psql", "pg_dump", "pg_dumpall", "pg_restore"];

const REDIS_SERVER = "/usr/bin/redis-server";
const REDIS_CLI = "/usr/bin/redis-cli";

interface Account {
    name: string;
    home: string;
}

interface ImageRecipe {
    /** Short name: the rootfs folder and the label key. */
    name: string;
    /** What the label records: binary version and recipe hash. A different value rebuilds. */
    version: string;
    assemble: (rootfs: string) => void;
    changes: string[];
}

// ---------------------------------------------------------------------------------------------
// Postgres

const POSTGRES_ENTRYPOINT = `#!/bin/sh
# Entry point of ${LOCAL_POSTGRES_IMAGE} (tests/support/localServiceImages.ts): the part of the
# official image's docker-entrypoint.sh that the deploy relies on, for busybox sh.
set -eu
case "\${1:-}" in -*) set -- postgres "$@" ;; esac
[ "\${1:-}" = postgres ] || exec "$@"
: "\${PGDATA:=${PGDATA}}"
export PGDATA

if [ "$(id -u)" = 0 ]; then
    # Started with --user root: postgres refuses root, so own the folders and start again as postgres.
    mkdir -p "$PGDATA" /run/postgresql
    chown -R postgres:postgres "$PGDATA" /run/postgresql
    chmod 700 "$PGDATA"
    # busybox su reads options anywhere on its command line: -- keeps the server's own away from it.
    exec su -p -s /bin/sh -c 'exec "$0" "$@"' -- postgres "$0" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    user=\${POSTGRES_USER:-postgres}
    db=\${POSTGRES_DB:-$user}
    auth=\${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
    if [ -z "\${POSTGRES_PASSWORD:-}" ] && [ "$auth" != trust ]; then
        echo "Error: the database is uninitialized and POSTGRES_PASSWORD is not set." >&2
        exit 1
    fi
    # The password goes in through a pipe: on a command line every process could read it.
    if [ -n "\${POSTGRES_PASSWORD:-}" ]; then
        printf '%s\\n' "$POSTGRES_PASSWORD" | initdb --username="$user" --pwfile=/dev/stdin \\
            --auth-local=trust --auth-host="$auth" \${POSTGRES_INITDB_ARGS:-}
    else
        initdb --username="$user" --auth-local=trust --auth-host="$auth" \${POSTGRES_INITDB_ARGS:-}
    fi
    printf 'host all all all %s\\n' "$auth" >> "$PGDATA/pg_hba.conf"

    # A private socket folder and no TCP: nobody, not even a health check, sees this temporary server.
    socket=$(mktemp -d)
    pg_ctl -D "$PGDATA" -w -o "-c listen_addresses='' -c unix_socket_directories=$socket" start
    if [ "$db" != postgres ]; then
        echo 'CREATE DATABASE :"db";' | psql -v ON_ERROR_STOP=1 --no-psqlrc -h "$socket" -U "$user" -d postgres -v db="$db"
    fi
    pg_ctl -D "$PGDATA" -m fast -w stop
    rmdir "$socket"
    echo "PostgreSQL init process complete; ready for start up."
else
    echo "PostgreSQL Database directory appears to contain a database; Skipping initialization"
fi

# postgres runs as this shell's child, not PID 1, so that Docker's SIGTERM becomes SIGINT (fast
# shutdown) as with the official STOPSIGNAL; HUP (reload) and QUIT (immediate) pass through.
"$@" &
pid=$!
trap 'kill -INT "$pid"' INT TERM
trap 'kill -HUP "$pid"' HUP
trap 'kill -QUIT "$pid"' QUIT
set +e
while :; do
    # wait returns early (>128) when a trapped signal arrives; the child stays a zombie until waited
    # for, so kill -0 tells an interrupted wait from the real end.
    wait "$pid"
    status=$?
    kill -0 "$pid" 2>/dev/null || exit "$status"
done
`;

/** Makes sure `tag` exists in `dockerd` (imports it when absent or built from another postgres or recipe). Returns the tag. */
export function ensureLocalPostgresImage(dockerd: PrivateDockerd, tag: string = LOCAL_POSTGRES_IMAGE): string {
    const postgres = `${PG_BIN}/postgres`;
    if (!fs.existsSync(postgres)) throw new Error(`${postgres} is missing: apt-get install -y postgresql-${PG_MAJOR}`);
    const version = execFileSync(postgres, ["--version"], { encoding: "utf8" }).trim();
    const changes = [
        `ENV PATH=${PATH_ENV}:${PG_BIN}`,
        `ENV PGDATA=${PGDATA}`,
        // initdb takes the encoding (UTF8) and collation from the locale, as the official image's LANG does.
        "ENV LANG=C.UTF-8",
        `VOLUME ${PGDATA}`,
        "EXPOSE 5432",
        "USER postgres",
        'ENTRYPOINT ["docker-entrypoint.sh"]',
        'CMD ["postgres"]',
    ];
    return ensureImage(dockerd, tag, {
        name: "postgres",
        version: `${version}; recipe ${recipeHash(POSTGRES_ENTRYPOINT, changes)}`,
        assemble: assemblePostgresRootfs,
        changes,
    });
}

/** Writes the postgres rootfs into `rootfs`. */
export function assemblePostgresRootfs(rootfs: string): void {
    assembleBaseRootfs(rootfs, { name: "postgres", home: "/var/lib/postgresql" });
    const libraries = new Set<string>();
    for (const program of PG_PROGRAMS) copyWithLibraries(rootfs, `${PG_BIN}/${program}`, libraries);
    // Modules the server loads at run time: plpgsql and the snowball dictionaries (initdb needs
    // both), encoding conversions, replication, contrib. llvmjit.so is left out: without it JIT is
    // silently unavailable, with it the image would carry libLLVM.
    for (const module of fs.readdirSync(PG_PKGLIB).filter((f) => f.endsWith(".so") && !f.startsWith("llvmjit"))) {
        copyWithLibraries(rootfs, path.join(PG_PKGLIB, module), libraries);
    }
    // The catalog sources initdb reads, extension scripts, timezone abbreviations, tsearch data.
    copyTree(rootfs, PG_SHARE, ["man"]);
    const sample = path.join(rootfs, PG_SHARE, "postgresql.conf.sample");
    const listenAll = fs.readFileSync(sample, "utf8").replace(/^#?listen_addresses\s*=\s*\S+/m, "listen_addresses = '*'");
    if (!listenAll.includes("\nlisten_addresses = '*'")) throw new Error(`no listen_addresses line in ${PG_SHARE}/postgresql.conf.sample`);
    // initdb copies the sample into every new cluster, as the official image edits it for.
    fs.writeFileSync(sample, listenAll);
    // Debian builds postgres --with-system-tzdata. The `localtime` link points at /etc/localtime,
    // which the image lacks; a dangling entry makes `SELECT * FROM pg_timezone_names` fail.
    copyTree(rootfs, "/usr/share/zoneinfo", ["localtime"]);
    // The C.UTF-8 locale (LANG above), and `locale -a`, which initdb runs to import the libc collations.
    copyTree(rootfs, "/usr/lib/locale/C.utf8");
    copyWithLibraries(rootfs, "/usr/bin/locale", libraries);

    // Docker copies a mount point's owner and mode into a new, empty named volume: postgres must own
    // its data folder, and refuses one that others may read.
    makeOwnedDir(rootfs, "/var/lib/postgresql", 0o755);
    makeOwnedDir(rootfs, PGDATA, 0o700);
    // Debian's compiled-in socket folder (/var/run is a link to /run); world-writable and sticky like
    // the official image's, so a server started under another uid can still put its socket there.
    makeOwnedDir(rootfs, "/run/postgresql", 0o3777);
    writeScript(rootfs, "/usr/local/bin/docker-entrypoint.sh", POSTGRES_ENTRYPOINT);
}

// ---------------------------------------------------------------------------------------------
// Redis

const REDIS_ENTRYPOINT = `#!/bin/sh
# Entry point of ${LOCAL_REDIS_IMAGE} (tests/support/localServiceImages.ts): the official image's
# docker-entrypoint.sh behaviour, for busybox sh.
set -eu
case "\${1:-}" in -* | *.conf) set -- redis-server "$@" ;; esac
[ "\${1:-}" = redis-server ] || exec "$@"
shift

if [ "$(id -u)" = 0 ]; then
    # Started with --user root: own the data folder, then start again as redis, like the official gosu.
    find . \\! -user redis -exec chown redis:redis '{}' +
    # busybox su reads options anywhere on its command line: -- keeps --appendonly and friends away from it.
    exec su -p -s /bin/sh -c 'exec "$0" "$@"' -- redis "$0" redis-server "$@"
fi

# The official redis-server is compiled with protected mode off: its clients come from a Docker
# network, never from loopback, and protected mode would refuse them all (no password is set).
# Debian's has it on, so turn it off unless the command line or the config file says otherwise.
protected=""
for arg in "$@"; do
    if [ "$arg" = --protected-mode ]; then protected=yes; fi
done
if [ $# -gt 0 ] && [ "\${1#-}" = "$1" ] && grep -qiE '^[[:space:]]*protected-mode[[:space:]]' "$1"; then protected=yes; fi
if [ -z "$protected" ]; then set -- "$@" --protected-mode no; fi

# The data files are the shop's sessions and queues: nobody else in the container reads them.
if [ "$(umask)" = 0022 ]; then umask 0077; fi
exec redis-server "$@"
`;

/** Makes sure `tag` exists in `dockerd` (imports it when absent or built from another redis or recipe). Returns the tag. */
export function ensureLocalRedisImage(dockerd: PrivateDockerd, tag: string = LOCAL_REDIS_IMAGE): string {
    if (!fs.existsSync(REDIS_SERVER)) throw new Error(`${REDIS_SERVER} is missing: apt-get install -y redis-server`);
    if (!fs.existsSync(REDIS_CLI)) throw new Error(`${REDIS_CLI} is missing: apt-get install -y redis-tools`);
    const version = execFileSync(REDIS_SERVER, ["--version"], { encoding: "utf8" }).trim();
    const changes = [
        `ENV PATH=${PATH_ENV}`,
        "VOLUME /data",
        "WORKDIR /data",
        "EXPOSE 6379",
        "USER redis",
        'ENTRYPOINT ["docker-entrypoint.sh"]',
        'CMD ["redis-server"]',
    ];
    return ensureImage(dockerd, tag, {
        name: "redis",
        version: `${version}; recipe ${recipeHash(REDIS_ENTRYPOINT, changes)}`,
        assemble: assembleRedisRootfs,
        changes,
    });
}

/** Writes the redis rootfs into `rootfs`. */
export function assembleRedisRootfs(rootfs: string): void {
    assembleBaseRootfs(rootfs, { name: "redis", home: "/data" });
    const libraries = new Set<string>();
    // Debian's redis-server is a link to redis-check-rdb: one binary that picks its role from argv[0].
    copyWithLibraries(rootfs, REDIS_SERVER, libraries);
    fs.symlinkSync("redis-server", path.join(rootfs, "usr/bin/redis-check-aof"));
    fs.symlinkSync("redis-server", path.join(rootfs, "usr/bin/redis-check-rdb"));
    copyWithLibraries(rootfs, REDIS_CLI, libraries);
    makeOwnedDir(rootfs, "/data", 0o755);
    writeScript(rootfs, "/usr/local/bin/docker-entrypoint.sh", REDIS_ENTRYPOINT);
}

// ---------------------------------------------------------------------------------------------
// Shared steps

function ensureImage(dockerd: PrivateDockerd, tag: string, recipe: ImageRecipe): string {
    const label = `medusa-deploy.${recipe.name}-version`;
    const version = recipe.version.replace(/"/g, "");
    if (existingLabel(dockerd, tag, label) === version) return tag;
    const rootfs = path.join(dockerd.root, `${recipe.name}-rootfs`);
    const tar = `${rootfs}.tar`;
    fs.rmSync(rootfs, { recursive: true, force: true });
    try {
        recipe.assemble(rootfs);
        // No --owner override: the data folders' uid 999 must reach the image (and so new volumes).
        execFileSync("tar", ["--numeric-owner", "-C", rootfs, "-cf", tar, "."]);
        const changes = [...recipe.changes, `LABEL ${label}="${version}"`].flatMap((change) => ["--change", change]);
        dockerd.docker(["import", ...changes, tar, tag]);
    } finally {
        fs.rmSync(rootfs, { recursive: true, force: true });
        fs.rmSync(tar, { force: true });
    }
    return tag;
}

function existingLabel(dockerd: PrivateDockerd, tag: string, label: string): string | undefined {
    try {
        // Quiet: "no such image" is the expected answer the first time.
        const format = `{{index .Config.Labels "${label}"}}`;
        const out = execFileSync("docker", ["image", "inspect", "--format", format, tag], { env: dockerd.env(), encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
        return out.trim() || undefined;
    } catch {
        return undefined;
    }
}

function recipeHash(script: string, changes: string[]): string {
    return createHash("sha256").update(JSON.stringify({ RECIPE_REVISION, script, changes })).digest("hex").slice(0, 12);
}

/**
 * The layout both images share: merged /usr like Debian 12 (so ldd's paths resolve unchanged), a
 * sticky /tmp, a static busybox for /bin/sh and its applets, root plus one service account (uid and
 * gid 999), and nsswitch for glibc's lookups of users and of Docker's DNS names.
 */
function assembleBaseRootfs(rootfs: string, account: Account): void {
    for (const dir of ["usr/bin", "usr/sbin", "usr/lib", "usr/lib64", "usr/local/bin", "etc", "root", "tmp", "run", "var/tmp", "proc", "sys", "dev"]) {
        fs.mkdirSync(path.join(rootfs, dir), { recursive: true });
    }
    for (const [link, target] of [["bin", "usr/bin"], ["sbin", "usr/sbin"], ["lib", "usr/lib"], ["lib64", "usr/lib64"], ["var/run", "../run"]]) {
        fs.symlinkSync(target, path.join(rootfs, link));
    }
    fs.chmodSync(path.join(rootfs, "tmp"), 0o1777);
    fs.chmodSync(path.join(rootfs, "var/tmp"), 0o1777);
    fs.chmodSync(path.join(rootfs, "root"), 0o700);

    const busybox = ["/bin/busybox", "/usr/bin/busybox"].find((p) => fs.existsSync(p));
    if (!busybox) throw new Error("no busybox on this machine: apt-get install -y busybox-static");
    if (!/statically linked|not a dynamic executable/.test(execFileSync("sh", ["-c", `ldd '${busybox}' 2>&1 || true`], { encoding: "utf8" }))) {
        throw new Error(`${busybox} is not static: apt-get install -y busybox-static`);
    }
    fs.copyFileSync(busybox, path.join(rootfs, "usr/bin/busybox"));
    fs.chmodSync(path.join(rootfs, "usr/bin/busybox"), 0o755);
    for (const applet of execFileSync(busybox, ["--list"], { encoding: "utf8" }).split("\n").filter(Boolean)) {
        if (applet === "busybox" || applet.includes("/")) continue;
        fs.symlinkSync("busybox", path.join(rootfs, "usr/bin", applet));
    }

    const id = SERVICE_ID;
    fs.writeFileSync(path.join(rootfs, "etc/passwd"), `root:x:0:0:root:/root:/bin/sh\n${account.name}:x:${id}:${id}:${account.name}:${account.home}:/bin/sh\n`);
    fs.writeFileSync(path.join(rootfs, "etc/group"), `root:x:0:\n${account.name}:x:${id}:\n`);
    fs.writeFileSync(path.join(rootfs, "etc/nsswitch.conf"), "passwd: files\ngroup: files\nhosts: files dns\n");
}

/** Copies `file` (dereferenced) to the same path in the rootfs, with the libraries and loader ldd lists for it. */
function copyWithLibraries(rootfs: string, file: string, copied: Set<string>): void {
    copyDereferenced(rootfs, file);
    for (const library of linkedLibraries(file)) {
        if (copied.has(library)) continue;
        copyDereferenced(rootfs, library);
        copied.add(library);
    }
}

/** Absolute paths ldd prints for `binary`; a library ldd cannot find fails the build here, not in the container. */
function linkedLibraries(binary: string): string[] {
    const out = execFileSync("ldd", [binary], { encoding: "utf8" });
    const missing = out.split("\n").filter((line) => line.includes("not found"));
    if (missing.length > 0) throw new Error(`${binary} needs libraries this machine lacks:\n${missing.join("\n")}`);
    return out
        .split("\n")
        .map((line) => /(\/\S+)/.exec(line.split("=>").pop() ?? "")?.[1])
        .filter((p): p is string => p !== undefined);
}

/** Copies the file behind `file` to its path in the rootfs, with directory links such as /lib64 resolved. */
function copyDereferenced(rootfs: string, file: string): void {
    const inImage = path.join(fs.realpathSync(path.dirname(file)), path.basename(file));
    const dest = path.join(rootfs, inImage);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    // A busybox applet of the same name is a link to busybox: copying through it would overwrite busybox.
    fs.rmSync(dest, { force: true });
    fs.copyFileSync(fs.realpathSync(file), dest);
    fs.chmodSync(dest, 0o755);
}

/** Copies a folder as it is (links inside it kept), leaving out the top-level entries named in `except`. */
function copyTree(rootfs: string, dir: string, except: string[] = []): void {
    const dest = path.join(rootfs, dir);
    fs.mkdirSync(dest, { recursive: true });
    for (const entry of fs.readdirSync(dir).filter((e) => !except.includes(e))) {
        execFileSync("cp", ["-a", path.join(dir, entry), path.join(dest, entry)]);
    }
}

function makeOwnedDir(rootfs: string, dir: string, mode: number): void {
    const dest = path.join(rootfs, dir);
    fs.mkdirSync(dest, { recursive: true });
    fs.chownSync(dest, SERVICE_ID, SERVICE_ID);
    // After chown: chown clears the setgid bit of 3777.
    fs.chmodSync(dest, mode);
}

function writeScript(rootfs: string, file: string, text: string): void {
    const dest = path.join(rootfs, file);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.writeFileSync(dest, text, { mode: 0o755 });
}
