// The Postgres and Redis images tests/support/localServiceImages.ts builds from this machine's files,
// run the way components/baseServices.ts runs the official ones: named data volume, the same health
// checks, the same command, a Docker network with the service's alias. Real clients (the host's psql
// and redis-cli) talk to them through a published 127.0.0.1 port; a second container reaches them
// by alias over the network, as the colours do. Then the container is replaced on the same volume
// and the data must still be there.
//
// The daemon runs in a network namespace of this suite's own (tests/support/netnsDockerd.ts), so its
// bridge and published ports never touch the host; the host clients run in that namespace.
import { strict as assert } from "node:assert";
import { ChildProcess, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { ensureLocalPostgresImage, ensureLocalRedisImage, PGDATA } from "../support/localServiceImages";
import { CommandResult, NetnsDockerd } from "../support/netnsDockerd";
import { PrivateDockerd, sleep, unmountUnder } from "../support/privateDockerd";
import { isRoot, requireCommands, requireReal } from "../support/realComponent";
import { sandboxRuntimeSettings } from "../support/sandboxRuntime";

const WORK = path.resolve(__dirname, "../../.test-work/local-service-images");
const NETNS = "medusa-svc-it";
const NETWORK = "medusa-svc-it";
const PG_IMAGE = "medusa-deploy/postgres:15-local-it";
const REDIS_IMAGE = "medusa-deploy/redis:7-local-it";
const PG_VOLUME = "medusa-svc-it-postgres-data";
const REDIS_VOLUME = "medusa-svc-it-redis-data";
/** Published inside the namespace, where nothing else listens. */
const PG_PORT = 15432;
const REDIS_PORT = 16379;
const PASSWORD = "it's a \"secret\" $with spaces";

describe("local postgres and redis images: built from this machine's files, used like the official ones (real dockerd)", function () {
    this.timeout(5 * 60 * 1000);
    let ns: NetnsDockerd;
    let dockerd: PrivateDockerd;
    let sleeper: ChildProcess | undefined;
    const timings: Record<string, string> = {};

    const docker = (args: string[]): string => dockerd.docker(args, { timeoutMs: 120000 }).trim();
    const inNetns = (command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<CommandResult> =>
        ns.run(command, args, { ...process.env, ...env }, 60000);

    /** The host's psql through the published port: -w never prompts, so a missing password fails at once. */
    const psql = (password: string | undefined, sql: string): Promise<CommandResult> =>
        inNetns("psql", ["-h", "127.0.0.1", "-p", String(PG_PORT), "-U", "medusa", "-d", "medusa", "-w", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql], {
            PGPASSWORD: password,
            PGCONNECT_TIMEOUT: "5",
        });
    async function psqlOk(sql: string, password = PASSWORD): Promise<string> {
        const result = await psql(password, sql);
        assert.equal(result.code, 0, `psql failed: ${result.stderr}`);
        return result.stdout.trim();
    }
    async function redisCli(...args: string[]): Promise<string> {
        const result = await inNetns("redis-cli", ["-h", "127.0.0.1", "-p", String(REDIS_PORT), ...args]);
        assert.equal(result.code, 0, `redis-cli failed: ${result.stderr}`);
        return result.stdout.trim();
    }

    /** Postgres as components/baseServices.ts declares it, plus a published port for the host's psql. */
    function runPostgres(name: string, password: string): void {
        docker([
            "run", "-d", "--name", name,
            "-e", `POSTGRES_PASSWORD=${password}`, "-e", "POSTGRES_USER=medusa", "-e", "POSTGRES_DB=medusa",
            "-v", `${PG_VOLUME}:${PGDATA}`,
            "--network", NETWORK, "--network-alias", "postgres",
            "-p", `127.0.0.1:${PG_PORT}:5432`,
            "--health-cmd", "pg_isready -U medusa -d medusa", "--health-interval", "2s", "--health-timeout", "3s", "--health-retries", "30", "--health-start-period", "5s",
            PG_IMAGE,
        ]);
    }

    /** Redis as components/baseServices.ts declares it (its CMD-form `redis-cli ping` check, in shell form here: the CLI has no other). */
    function runRedis(name: string): void {
        docker([
            "run", "-d", "--name", name,
            "-v", `${REDIS_VOLUME}:/data`,
            "--network", NETWORK, "--network-alias", "redis",
            "-p", `127.0.0.1:${REDIS_PORT}:6379`,
            "--health-cmd", "redis-cli ping", "--health-interval", "2s", "--health-timeout", "3s", "--health-retries", "30",
            REDIS_IMAGE,
            "redis-server", "--appendonly", "yes",
        ]);
    }

    /** Milliseconds until Docker reports the container healthy; fails at once if it exits. */
    async function waitHealthy(name: string, timeoutMs = 60000): Promise<number> {
        const started = Date.now();
        while (Date.now() - started < timeoutMs) {
            const [status, health] = docker(["inspect", "--format", "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}", name]).split(" ");
            if (health === "healthy") return Date.now() - started;
            if (status === "exited" || status === "dead") assert.fail(`${name} exited before it was healthy:\n${docker(["logs", name])}`);
            await sleep(200);
        }
        return assert.fail(`${name} not healthy within ${timeoutMs} ms:\n${docker(["logs", name])}`);
    }

    /** Numeric uids of every process of the container (host ps through docker top: no name lookup). */
    const processUids = (name: string): string[] =>
        docker(["top", name, "-o", "pid,uid"]).split("\n").slice(1).map((line) => line.trim().split(/\s+/)[1]);
    /** The container's log; postgres and redis write to stderr, which `docker logs` replays on its own stderr. */
    const logs = (name: string): string => {
        const result = spawnSync("docker", ["logs", name], { env: dockerd.env(), encoding: "utf8" });
        return result.stdout + result.stderr;
    };

    before(async function () {
        requireCommands(this, ["dockerd", "docker", "nsenter", "ip", "tar", "ldd", "psql", "redis-cli"],
            "apt-get install -y docker.io iproute2 util-linux postgresql-client redis-tools");
        requireReal(this, "root (dockerd and network namespaces need it)", isRoot(), "run the tests as root");
        requireReal(this, "Debian's PostgreSQL 15 server", fs.existsSync("/usr/lib/postgresql/15/bin/postgres"), "apt-get install -y postgresql-15");
        requireReal(this, "Debian's redis-server", fs.existsSync("/usr/bin/redis-server"), "apt-get install -y redis-server");
        requireReal(this, "a static busybox", fs.existsSync("/bin/busybox") || fs.existsSync("/usr/bin/busybox"), "apt-get install -y busybox-static");
        const started = Date.now();
        const daemon = () => new NetnsDockerd(NETNS, path.join(WORK, "dockerd"), { ...sandboxRuntimeSettings() });
        // A run killed half-way leaves its namespace, daemon and mounts: clear them, then start afresh.
        await daemon().stop();
        unmountUnder(WORK);
        fs.rmSync(WORK, { recursive: true, force: true });
        ns = daemon();
        await ns.start();
        dockerd = ns.dockerd;
        docker(["network", "create", NETWORK]);
        timings["namespaced dockerd up"] = `${((Date.now() - started) / 1000).toFixed(1)} s`;
    });

    after(async function () {
        if (sleeper && sleeper.exitCode === null) sleeper.kill("SIGTERM");
        if (ns) await ns.stop();
        unmountUnder(WORK);
        fs.rmSync(WORK, { recursive: true, force: true });
        for (const [what, value] of Object.entries(timings)) console.log(`      ${what}: ${value}`);
    });

    it("builds both images from this machine's files; a second call with nothing changed is a quick no-op", function () {
        for (const [what, ensure, tag] of [
            ["postgres", ensureLocalPostgresImage, PG_IMAGE],
            ["redis", ensureLocalRedisImage, REDIS_IMAGE],
        ] as const) {
            let started = Date.now();
            assert.equal(ensure(dockerd, tag), tag);
            const buildMs = Date.now() - started;
            const id = docker(["image", "inspect", "--format", "{{.Id}}", tag]);
            started = Date.now();
            assert.equal(ensure(dockerd, tag), tag);
            const againMs = Date.now() - started;
            assert.equal(docker(["image", "inspect", "--format", "{{.Id}}", tag]), id, `${what}: the second call rebuilt the image`);
            assert.ok(againMs < 3000, `${what}: the no-op took ${againMs} ms`);
            const size = Number(docker(["image", "inspect", "--format", "{{.Size}}", tag]));
            timings[`${what} image`] = `built in ${(buildMs / 1000).toFixed(1)} s, ${(size / 1e6).toFixed(1)} MB; no-op ${againMs} ms`;
        }
        assert.equal(docker(["image", "inspect", "--format", "{{.Config.User}}", PG_IMAGE]), "postgres");
        assert.equal(docker(["image", "inspect", "--format", "{{.Config.User}} {{.Config.WorkingDir}}", REDIS_IMAGE]), "redis /data");
        // Docker gives a new named volume the owner and mode of the image's mount point.
        assert.equal(docker(["run", "--rm", "--entrypoint", "stat", PG_IMAGE, "-c", "%u:%g %a", PGDATA]), "999:999 700");
        assert.equal(docker(["run", "--rm", "--entrypoint", "stat", REDIS_IMAGE, "-c", "%u:%g", "/data"]), "999:999");
    });

    it("postgres: a fresh volume is initialised from POSTGRES_*, and pg_isready turns it healthy", async function () {
        runPostgres("pg-1", PASSWORD);
        const healthyMs = await waitHealthy("pg-1");
        timings["postgres: first start (initdb) healthy after"] = `${(healthyMs / 1000).toFixed(1)} s`;
        const log = logs("pg-1");
        assert.match(log, /PostgreSQL init process complete/);
        assert.match(log, /listening on IPv4 address "0\.0\.0\.0", port 5432/);
        assert.deepEqual([...new Set(processUids("pg-1"))], ["999"], "every process of the container runs as postgres (uid 999)");
        assert.equal(docker(["exec", "pg-1", "pg_isready", "-U", "medusa", "-d", "medusa"]), "/var/run/postgresql:5432 - accepting connections");
    });

    it("postgres: the host's psql gets in on the published port with the password, and writes a row", async function () {
        await psqlOk("CREATE TABLE survivor (id int PRIMARY KEY, note text); INSERT INTO survivor VALUES (1, 'written by pg-1 ✓')");
        assert.equal(await psqlOk("SELECT note FROM survivor WHERE id = 1"), "written by pg-1 ✓");
        // What an official image's cluster has too: UTF8, stored as SCRAM, scram from any address.
        assert.equal(await psqlOk("SHOW server_encoding"), "UTF8");
        assert.equal(await psqlOk("SELECT left(rolpassword, 14) FROM pg_authid WHERE rolname = 'medusa'"), "SCRAM-SHA-256$");
        assert.equal(await psqlOk("SELECT auth_method FROM pg_hba_file_rules WHERE type = 'host' AND address = 'all'"), "scram-sha-256");
        assert.equal(await psqlOk("SELECT current_setting('data_directory'), current_setting('TimeZone')"), `${PGDATA}|UTC`);
        // The zoneinfo and share files are complete enough for the catalogue views that read them.
        assert.ok(Number(await psqlOk("SELECT count(*) FROM pg_timezone_names")) > 300);
        await psqlOk("CREATE EXTENSION pgcrypto");
        assert.equal(await psqlOk("SELECT length(gen_random_uuid()::text)"), "36");
    });

    it("postgres: a wrong password, or none, is refused from the network", async function () {
        const wrong = await psql("not-the-password", "SELECT 1");
        assert.notEqual(wrong.code, 0);
        assert.match(wrong.stderr, /password authentication failed for user "medusa"/);
        const none = await psql(undefined, "SELECT 1");
        assert.notEqual(none.code, 0);
        assert.match(none.stderr, /no password supplied/);
    });

    it("postgres: another container on the Docker network reaches it by its alias, as the colours do", function () {
        const out = docker(["run", "--rm", "--network", NETWORK, "-e", `PGPASSWORD=${PASSWORD}`, PG_IMAGE,
            "psql", "-h", "postgres", "-U", "medusa", "-d", "medusa", "-w", "-X", "-At", "-c", "SELECT note FROM survivor"]);
        assert.equal(out, "written by pg-1 ✓");
    });

    it("postgres: docker stop (SIGTERM) is a fast shutdown even with a client connected, and exits 0", async function () {
        sleeper = ns.spawn("psql", ["-h", "127.0.0.1", "-p", String(PG_PORT), "-U", "medusa", "-d", "medusa", "-w", "-X", "-c", "SELECT pg_sleep(120)"], { ...process.env, PGPASSWORD: PASSWORD });
        let clientErr = "";
        sleeper.stderr?.on("data", (c: Buffer) => (clientErr += c.toString()));
        const clientEnded = new Promise<number | null>((resolve) => sleeper!.on("close", resolve));
        for (let i = 0; i < 50 && (await psqlOk("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%'")) !== "1"; i++) await sleep(100);
        const started = Date.now();
        docker(["stop", "-t", "30", "pg-1"]);
        const stopMs = Date.now() - started;
        timings["postgres: docker stop with a client connected"] = `${stopMs} ms`;
        // A smart shutdown (plain SIGTERM to postgres) would wait the whole 30 s for the client, then be killed.
        assert.ok(stopMs < 10000, `docker stop took ${stopMs} ms`);
        assert.equal(docker(["inspect", "--format", "{{.State.ExitCode}}", "pg-1"]), "0");
        const log = logs("pg-1");
        assert.match(log, /received fast shutdown request/);
        assert.match(log, /database system is shut down/);
        assert.notEqual(await clientEnded, 0);
        assert.match(clientErr, /terminating connection due to administrator command/);
    });

    it("postgres: a new container on the same volume has the row; the first password stays, a new POSTGRES_PASSWORD is ignored", async function () {
        docker(["rm", "pg-1"]);
        runPostgres("pg-2", "a-new-password");
        timings["postgres: restart on the kept volume healthy after"] = `${((await waitHealthy("pg-2")) / 1000).toFixed(1)} s`;
        const log = logs("pg-2");
        assert.match(log, /Skipping initialization/);
        // The previous container shut down cleanly: no crash recovery.
        assert.match(log, /database system was shut down at/);
        assert.doesNotMatch(log, /was interrupted|automatic recovery/);
        assert.equal(await psqlOk("SELECT note FROM survivor WHERE id = 1"), "written by pg-1 ✓");
        const changed = await psql("a-new-password", "SELECT 1");
        assert.match(changed.stderr, /password authentication failed/);
    });

    it("redis: `redis-server --appendonly yes` as the command, healthy through redis-cli ping, open to network clients", async function () {
        runRedis("redis-1");
        timings["redis: first start healthy after"] = `${((await waitHealthy("redis-1")) / 1000).toFixed(1)} s`;
        assert.deepEqual([...new Set(processUids("redis-1"))], ["999"], "redis runs as the redis user (uid 999)");
        assert.equal(await redisCli("CONFIG", "GET", "appendonly"), "appendonly\nyes");
        assert.equal(await redisCli("CONFIG", "GET", "dir"), "dir\n/data");
        // Through docker-proxy the client comes from the network's gateway, not loopback: protected mode would say DENIED.
        assert.equal(await redisCli("CONFIG", "GET", "protected-mode"), "protected-mode\nno");
        assert.equal(await redisCli("SET", "medusa:survivor", "written by redis-1"), "OK");
        const viaAlias = docker(["run", "--rm", "--network", NETWORK, REDIS_IMAGE, "redis-cli", "-h", "redis", "GET", "medusa:survivor"]);
        assert.equal(viaAlias, "written by redis-1");
    });

    it("redis: the key survives a killed container (the append-only file, not a shutdown save), and SIGTERM exits 0", async function () {
        // SIGKILL: no final RDB save, so only the AOF can bring the key back.
        docker(["kill", "redis-1"]);
        docker(["rm", "redis-1"]);
        runRedis("redis-2");
        await waitHealthy("redis-2");
        assert.equal(await redisCli("GET", "medusa:survivor"), "written by redis-1");
        assert.match(docker(["run", "--rm", "-v", `${REDIS_VOLUME}:/data`, REDIS_IMAGE, "ls", "/data/appendonlydir"]), /appendonly\.aof\.\d+\.incr\.aof/);
        const started = Date.now();
        docker(["stop", "-t", "30", "redis-2"]);
        timings["redis: docker stop"] = `${Date.now() - started} ms`;
        assert.equal(docker(["inspect", "--format", "{{.State.ExitCode}}", "redis-2"]), "0");
        assert.match(logs("redis-2"), /ready to exit, bye bye/);
    });

    it("redis: a caller's own --protected-mode is left as it is", function () {
        docker(["run", "-d", "--name", "redis-protected", "--network", NETWORK, REDIS_IMAGE, "redis-server", "--protected-mode", "yes"]);
        let out = "";
        for (let i = 0; i < 50 && !/DENIED|PONG/.test(out); i++) {
            // Not a throwing docker(): redis-cli fails until the server listens.
            const ping = spawnSync("docker", ["run", "--rm", "--network", NETWORK, REDIS_IMAGE, "redis-cli", "-h", "redis-protected", "PING"], { env: dockerd.env(), encoding: "utf8" });
            out = ping.stdout + ping.stderr;
        }
        assert.match(out, /^DENIED Redis is running in protected mode/);
    });
});
