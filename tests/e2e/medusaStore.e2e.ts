// The embedded default for real: the example Medusa v2 store in examples/medusa-store, built into an
// image with docker/medusa.Dockerfile on the shared build dockerd, migrated and started against a
// real PostgreSQL 15 and Redis on loopback. Not in the default spec (it builds ~1,100 packages):
//   npx mocha --timeout 1800000 tests/e2e/medusaStore.e2e.ts
import { strict as assert } from "node:assert";
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import type { PrivateDockerd } from "../support/privateDockerd";
import { sleep } from "../support/privateDockerd";
import { acquireBuildDockerd, releaseBuildDockerd, dockerBuild, buildLocalBaseImage } from "../support/buildDockerd";
import { ADMIN_ASSETS } from "../../lib/edgeControls";
import { HaproxyEdge } from "../support/haproxyEdge";
import { LOCAL_NODE_IMAGE } from "../support/localNodeImage";
import { requireCommands, requireReal, isRoot } from "../support/realComponent";

const repo = path.resolve(__dirname, "../..");
const store = path.join(repo, "examples/medusa-store");
const work = path.join(repo, ".test-work/medusa-store-e2e");
const pgBin = "/usr/lib/postgresql/15/bin";
const baseImage = "medusa-deploy/base:e2e-local";
const image = "medusa-deploy/example-store:e2e";
const release = `e2e-${process.pid}-${Date.now()}`;
const serverName = `medusa-store-e2e-server-${process.pid}`;
const workerName = `medusa-store-e2e-worker-${process.pid}`;
const serverBName = `medusa-store-e2e-server-b-${process.pid}`;
const storeB = path.join(work, "store-b");
const imageB = "medusa-deploy/example-store:e2e-b";
/** What makes release B's admin differ from A's: a widget, so its bundle has chunks A lacks. */
const RELEASE_B_WIDGET = `import { defineWidgetConfig } from "@medusajs/admin-sdk"

const ReleaseBanner = () => <div>Release B</div>

export const config = defineWidgetConfig({ zone: "product.list.before" })

export default ReleaseBanner
`;

/** The admin's hashed assets reachable from /app/ at `base`: index.html's, then every chunk they import, transitively. */
async function adminAssets(base: string): Promise<string[]> {
    const found = new Set<string>();
    const pending: string[] = [];
    const collect = (text: string) => {
        for (const match of text.matchAll(/(?:\/app\/)?assets\/[A-Za-z0-9_.-]+\.(?:js|css)/g)) {
            const asset = match[0].startsWith("/app/") ? match[0] : `/app/${match[0]}`;
            if (!found.has(asset)) {
                found.add(asset);
                pending.push(asset);
            }
        }
    };
    collect((await httpGet(`${base}/app/`)).body);
    while (pending.length > 0) {
        const asset = pending.shift() as string;
        if (asset.endsWith(".js")) collect((await httpGet(`${base}${asset}`)).body);
    }
    return [...found].sort();
}

/** Seconds with one decimal, for the timings this test prints. */
const seconds = (ms: number) => (ms / 1000).toFixed(1);

/** Whether a listener can be bound on `port` at `host` right now. */
function canListen(port: number, host: string): Promise<boolean> {
    return new Promise((resolve) => {
        const server = net.createServer();
        server.once("error", () => resolve(false));
        server.listen(port, host, () => server.close(() => resolve(true)));
    });
}

/**
 * A port nobody listens on, on IPv4 and IPv6. Random in 20000-29999, below Linux's ephemeral range
 * (32768-60999) that `listen(0)` and outgoing connections of other tests draw from, so a port chosen
 * here is unlikely to be taken between this check and the container's listen.
 */
async function freePort(): Promise<number> {
    for (let attempt = 0; attempt < 50; attempt += 1) {
        const port = 20000 + Math.floor(Math.random() * 10000);
        if ((await canListen(port, "0.0.0.0")) && (await canListen(port, "::"))) return port;
    }
    throw new Error("no free port found in 20000-29999");
}

/** A PostgreSQL 15 cluster of this test's own (initdb into `root`), listening on 127.0.0.1 only. */
class LoopbackPostgres {
    private readonly data: string;
    constructor(private readonly root: string, readonly port: number) {
        this.data = path.join(root, "data");
    }

    start(): void {
        fs.mkdirSync(this.root, { recursive: true });
        execFileSync("chown", ["postgres:postgres", this.root]);
        this.asPostgres([path.join(pgBin, "initdb"), "-D", this.data, "-A", "trust", "-U", "postgres"]);
        this.asPostgres([
            path.join(pgBin, "pg_ctl"), "-D", this.data, "-l", path.join(this.root, "postgres.log"), "-w", "-t", "60",
            "-o", `-p ${this.port} -k ${this.root} -c listen_addresses=127.0.0.1`, "start",
        ]);
    }

    createDatabase(name: string): string {
        execFileSync("psql", ["-h", "127.0.0.1", "-p", String(this.port), "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-c", `CREATE DATABASE "${name}"`], { stdio: "pipe" });
        return `postgres://postgres@127.0.0.1:${this.port}/${name}`;
    }

    stop(): void {
        if (!fs.existsSync(path.join(this.data, "postmaster.pid"))) return;
        this.asPostgres([path.join(pgBin, "pg_ctl"), "-D", this.data, "-m", "fast", "-w", "stop"]);
    }

    private asPostgres(command: string[]): void {
        // cwd /tmp: postgres cannot read the caller's working directory under /root.
        execFileSync("runuser", ["-u", "postgres", "--", ...command], { cwd: "/tmp", stdio: "pipe" });
    }
}

/** A Redis of this test's own on 127.0.0.1, no persistence. */
class LoopbackRedis {
    private readonly pidFile: string;
    constructor(private readonly root: string, readonly port: number) {
        this.pidFile = path.join(root, "redis.pid");
    }

    start(): void {
        fs.mkdirSync(this.root, { recursive: true });
        execFileSync("redis-server", [
            "--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--daemonize", "yes", "--pidfile", this.pidFile, "--logfile", path.join(this.root, "redis.log"), "--dir", this.root,
        ]);
        for (let i = 0; i < 50; i += 1) {
            if (spawnSync("redis-cli", ["-p", String(this.port), "ping"], { encoding: "utf8" }).stdout.trim() === "PONG") return;
            execFileSync("sleep", ["0.1"]);
        }
        throw new Error(`redis-server on port ${this.port} did not answer PING`);
    }

    get url(): string {
        return `redis://127.0.0.1:${this.port}`;
    }

    stop(): void {
        try {
            process.kill(Number(fs.readFileSync(this.pidFile, "utf8").trim()), "SIGTERM");
        } catch {
            // not running
        }
    }
}

async function httpGet(url: string): Promise<{ status: number; body: string }> {
    const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
    return { status: response.status, body: await response.text() };
}

/**
 * Polls until the container has logged that it listens on `port` and `/health` there answers 200
 * (the log line makes sure the answer is this container's, as every test here shares the host
 * network); fails when the container stops. Returns milliseconds from `since`.
 */
async function waitForHealth(dockerd: PrivateDockerd, container: string, port: number, since: number, timeoutMs: number): Promise<number> {
    const deadline = since + timeoutMs;
    while (Date.now() < deadline) {
        try {
            const ready = logs(dockerd, container, 400).includes(`Server is ready on port: ${port}`);
            if (ready && (await httpGet(`http://127.0.0.1:${port}/health`)).status === 200) return Date.now() - since;
        } catch {
            // not listening yet
        }
        if (inspect(dockerd, container, "{{.State.Running}}") !== "true") {
            throw new Error(`${container} stopped before its /health answered:\n${logs(dockerd, container)}`);
        }
        await sleep(250);
    }
    throw new Error(`${container} did not answer /health with 200 within ${timeoutMs} ms:\n${logs(dockerd, container)}`);
}

function inspect(dockerd: PrivateDockerd, container: string, format: string): string {
    return dockerd.docker(["inspect", "--format", format, container]).trim();
}

function logs(dockerd: PrivateDockerd, container: string, lines = 40): string {
    const result = spawnSync("docker", ["logs", "--tail", String(lines), container], { env: dockerd.env(), encoding: "utf8" });
    return `${result.stdout}${result.stderr}`;
}

describe("example Medusa store: image, migration and server against real Postgres and Redis", function () {
    this.timeout(30 * 60 * 1000);
    let dockerd: PrivateDockerd | undefined;
    let postgres: LoopbackPostgres | undefined;
    let redis: LoopbackRedis | undefined;
    let databaseUrl = "";
    let serverPort = 0;
    let workerPort = 0;
    const timings: Record<string, string> = {};
    let edge: HaproxyEdge | undefined;

    /** The environment a server, worker or migration container of the store reads. */
    const storeEnv = (extra: Record<string, string>): string[] =>
        Object.entries({
            DATABASE_URL: databaseUrl,
            REDIS_URL: redis?.url ?? "",
            JWT_SECRET: "e2e-jwt-secret",
            COOKIE_SECRET: "e2e-cookie-secret",
            MEDUSA_RELEASE: release,
            MEDUSA_DISABLE_TELEMETRY: "true",
            ...extra,
        }).flatMap(([name, value]) => ["-e", `${name}=${value}`]);

    before(async function () {
        requireReal(this, "root (dockerd and postgres need it)", isRoot(), "run the e2e tests as root");
        requireCommands(this, ["dockerd", "busybox", "tar", "redis-server", "redis-cli", "psql", "runuser"],
            "apt-get install -y docker.io busybox-static tar redis-server postgresql-client util-linux");
        requireReal(this, "PostgreSQL 15 server binaries", fs.existsSync(path.join(pgBin, "initdb")), "apt-get install -y postgresql-15");
        requireReal(this, "examples/medusa-store/package-lock.json", fs.existsSync(path.join(store, "package-lock.json")),
            "run npm install in examples/medusa-store");

        fs.rmSync(work, { recursive: true, force: true });
        fs.mkdirSync(work, { recursive: true });
        postgres = new LoopbackPostgres(path.join(work, "pg"), await freePort());
        postgres.start();
        databaseUrl = postgres.createDatabase("medusa");
        redis = new LoopbackRedis(path.join(work, "redis"), await freePort());
        redis.start();

        dockerd = await acquireBuildDockerd();
        await buildLocalBaseImage(dockerd, baseImage);
    });

    after(async function () {
        await edge?.stop();
        if (dockerd) {
            for (const name of [serverName, workerName, serverBName]) spawnSync("docker", ["rm", "-f", name], { env: dockerd.env(), stdio: "ignore" });
            await releaseBuildDockerd();
        }
        redis?.stop();
        postgres?.stop();
        if (Object.keys(timings).length > 0) {
            console.log("      timings (s):", JSON.stringify(timings));
        }
    });

    it("builds the store with docker/medusa.Dockerfile, and rebuilds it from cache when nothing changed", async function () {
        assert.ok(dockerd);
        const options = {
            context: store,
            dockerfile: path.join(repo, "docker/medusa.Dockerfile"),
            tag: image,
            buildArgs: { NODE_IMAGE: LOCAL_NODE_IMAGE, BASE_IMAGE: baseImage },
            timeoutMs: 25 * 60 * 1000,
        };
        const first = await dockerBuild(dockerd, options);
        timings.build = seconds(first.durationMs);
        const again = await dockerBuild(dockerd, options);
        timings.rebuildNoChange = seconds(again.durationMs);
        const ran = again.steps.filter((s) => / RUN /.test(s.name) && !s.cached);
        assert.deepEqual(ran.map((s) => s.name), [], "a rebuild without changes runs no RUN step");
        const size = Number(dockerd.docker(["image", "inspect", "--format", "{{.Size}}", image]).trim());
        timings.imageMB = (size / 1e6).toFixed(0);
        assert.ok(size > 0);
    });

    it("migrates an empty database with the built image (medusa db:migrate --execute-safe-links)", function () {
        assert.ok(dockerd);
        const migrate = (): number => {
            const started = Date.now();
            const result = spawnSync("docker", [
                "run", "--rm", "--network", "host", ...storeEnv({ MEDUSA_WORKER_MODE: "server" }),
                image, "medusa", "db:migrate", "--execute-safe-links",
            ], { env: dockerd?.env(), encoding: "utf8", maxBuffer: 64 * 1024 * 1024, timeout: 10 * 60 * 1000 });
            assert.equal(result.status, 0, `migration failed:\n${result.stdout.slice(-4000)}\n${result.stderr.slice(-4000)}`);
            return Date.now() - started;
        };
        timings.migrateEmpty = seconds(migrate());
        const tables = execFileSync("psql", [databaseUrl, "-tAc", "select count(*) from information_schema.tables where table_schema = 'public'"], { encoding: "utf8" });
        assert.ok(Number(tables.trim()) > 50, `expected Medusa's tables, found ${tables.trim()}`);
        timings.migrateNothingToDo = seconds(migrate());
    });

    it("starts the server: /health answers 200, Docker reports it healthy, /deploy-info names the release", async function () {
        assert.ok(dockerd);
        serverPort = await freePort();
        const started = Date.now();
        dockerd.docker(["run", "-d", "--name", serverName, "--network", "host",
            ...storeEnv({ MEDUSA_WORKER_MODE: "server", PORT: String(serverPort) }), image]);
        timings.startToHealth = seconds(await waitForHealth(dockerd, serverName, serverPort, started, 180000));

        const info = await httpGet(`http://127.0.0.1:${serverPort}/deploy-info`);
        assert.equal(info.status, 200);
        assert.deepEqual(JSON.parse(info.body), { release, colour: null, workerMode: "server" });
        // The admin was built into the image and is served by the server.
        assert.equal((await httpGet(`http://127.0.0.1:${serverPort}/app/`)).status, 200);

        const deadline = Date.now() + 120000;
        let health = "";
        while (Date.now() < deadline) {
            health = inspect(dockerd, serverName, "{{.State.Health.Status}}");
            if (health === "healthy") break;
            assert.notEqual(health, "unhealthy", logs(dockerd, serverName));
            await sleep(500);
        }
        assert.equal(health, "healthy");
        timings.startToHealthy = seconds(Date.now() - started);

        const log = logs(dockerd, serverName);
        for (const module of ["event-bus-redis", "cache-redis", "locking-redis", "workflow-engine-redis"]) {
            assert.match(log, new RegExp(`Connection to Redis.*${module}`), `the server should use ${module}`);
        }
    });

    it("starts a worker from the same image: healthy, but it serves no routes and no admin", async function () {
        assert.ok(dockerd);
        workerPort = await freePort();
        const started = Date.now();
        dockerd.docker(["run", "-d", "--name", workerName, "--network", "host",
            ...storeEnv({ MEDUSA_WORKER_MODE: "worker", PORT: String(workerPort) }), image]);
        timings.workerStartToHealth = seconds(await waitForHealth(dockerd, workerName, workerPort, started, 180000));
        assert.equal((await httpGet(`http://127.0.0.1:${workerPort}/deploy-info`)).status, 404);
        assert.equal((await httpGet(`http://127.0.0.1:${workerPort}/app/`)).status, 404);
    });

    it("npm run exec's host script creates the first admin user in the server's release; the user logs in; an invite prints its token", async function () {
        assert.ok(dockerd);
        const oneoff = (words: string[]) =>
            spawnSync("sh", [path.join(repo, "host/run-oneoff.sh"), ...words], {
                env: dockerd?.env({ ONEOFF_FROM: serverName, ONEOFF_NAME: `${serverName}-oneoff` }),
                encoding: "utf8",
                timeout: 300000,
            });
        const email = "owner@e2e.example";
        const password = `e2e-${process.pid}-Admin!`;
        const started = Date.now();
        const created = oneoff(["npx", "medusa", "user", "--email", email, "--password", password]);
        timings.oneoffUser = seconds(Date.now() - started);
        assert.equal(created.status, 0, `medusa user failed:\n${created.stdout}\n${created.stderr}`);
        assert.match(created.stderr, new RegExp(`oneoff: running in ${serverName}-oneoff .* of ${serverName}, network host`));
        assert.equal(spawnSync("docker", ["inspect", `${serverName}-oneoff`], { env: dockerd.env() }).status, 1, "the one-off container is gone");

        const login = await fetch(`http://127.0.0.1:${serverPort}/auth/user/emailpass`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ email, password }) });
        assert.equal(login.status, 200, await login.clone().text());
        const { token } = (await login.json()) as { token: string };
        const me = await fetch(`http://127.0.0.1:${serverPort}/admin/users/me`, { headers: { authorization: `Bearer ${token}` } });
        assert.equal(me.status, 200);
        assert.equal(((await me.json()) as { user: { email: string } }).user.email, email);

        const invited = oneoff(["npx", "medusa", "user", "--email", "second@e2e.example", "--invite"]);
        assert.equal(invited.status, 0, `medusa user --invite failed:\n${invited.stdout}\n${invited.stderr}`);
        assert.match(invited.stdout + invited.stderr, /token/i, "the invite's token is printed for the runbook's /app/invite?token= link");
    });

    it("builds release B of the store whose admin differs (one widget more): only the app build runs again", async function () {
        assert.ok(dockerd);
        fs.rmSync(storeB, { recursive: true, force: true });
        fs.mkdirSync(storeB, { recursive: true });
        execFileSync("sh", ["-c", 'tar --exclude=./node_modules --exclude=./.medusa -C "$1" -cf - . | tar -C "$2" -xf -', "copy", store, storeB]);
        fs.mkdirSync(path.join(storeB, "src/admin/widgets"), { recursive: true });
        fs.writeFileSync(path.join(storeB, "src/admin/widgets/release-banner.tsx"), RELEASE_B_WIDGET);
        const built = await dockerBuild(dockerd, {
            context: storeB,
            dockerfile: path.join(repo, "docker/medusa.Dockerfile"),
            tag: imageB,
            buildArgs: { NODE_IMAGE: LOCAL_NODE_IMAGE, BASE_IMAGE: baseImage },
            timeoutMs: 25 * 60 * 1000,
        });
        timings.buildB = seconds(built.durationMs);
    });

    it("asset continuity through the production edge config: a tab opened on A keeps loading A's admin chunks after the switch to B, under a loop of them; everything else is B's", async function () {
        assert.ok(dockerd);
        const portB = await freePort();
        dockerd.docker(["run", "-d", "--name", serverBName, "--network", "host",
            ...storeEnv({ MEDUSA_WORKER_MODE: "server", PORT: String(portB), MEDUSA_RELEASE: `${release}-b` }), imageB]);
        await waitForHealth(dockerd, serverBName, portB, Date.now(), 180000);
        edge = new HaproxyEdge(path.join(work, "edge"), await freePort(), { blue: { address: `127.0.0.1:${serverPort}` }, green: { address: `127.0.0.1:${portB}` } }, {}, { controls: true });
        await edge.start();
        assert.equal((await edge.runSwitch("blue")).code, 0);

        // What a tab opened on A has loaded or will load: A's index.html and every chunk reachable from it.
        // Collected from each colour directly: through the edge, the asset backend may answer from either.
        const assetsA = await adminAssets(`http://127.0.0.1:${serverPort}`);
        const assetsB = await adminAssets(`http://127.0.0.1:${portB}`);
        const onlyA = assetsA.filter((asset) => !assetsB.includes(asset));
        assert.ok(onlyA.length > 0, `the two builds share every asset (${assetsA.length}): the test would prove nothing`);
        timings.adminAssets = `${assetsA.length} of A, ${onlyA.length} only in A`;

        // A's own bytes of each asset, from A directly: a 200 with other bytes (an SPA fallback page) is a failure too.
        const digestOf = (bytes: ArrayBuffer) => createHash("sha256").update(Buffer.from(bytes)).digest("hex");
        const bytesA = new Map<string, string>();
        for (const asset of assetsA) bytesA.set(asset, digestOf(await (await fetch(`http://127.0.0.1:${serverPort}${asset}`)).arrayBuffer()));
        const failures: string[] = [];
        let requests = 0;
        let looping = true;
        const loop = (async () => {
            while (looping) {
                for (const asset of assetsA) {
                    requests += 1;
                    try {
                        const response = await fetch(new URL(asset, edge?.baseUrl));
                        const digest = digestOf(await response.arrayBuffer());
                        if (response.status !== 200 || digest !== bytesA.get(asset)) failures.push(`${asset}: ${response.status} ${response.headers.get("content-type")}${digest !== bytesA.get(asset) ? ", not A's bytes" : ""}`);
                    } catch (error) {
                        failures.push(`${asset}: ${(error as Error).message}`);
                    }
                }
            }
        })();
        await sleep(2000);
        // As the deploy does right before the switch (components/assetHandover.ts).
        const handover = spawnSync("sh", [path.join(repo, "host/edge-assets.sh")], {
            encoding: "utf8",
            env: dockerd.env({
                EDGE_ADMIN_SOCKET: edge.adminSocket,
                EDGE_DIR: edge.edgeDir,
                EDGE_DIR_IN_EDGE: edge.edgeDir,
                EDGE_CONTROL_DIR: edge.controlDir,
                TARGET_COLOUR: "green",
                SERVER_BLUE: serverName,
                SERVER_GREEN: serverBName,
                ASSET_FOLDER: ADMIN_ASSETS.folder,
                ASSET_URL_PREFIX: ADMIN_ASSETS.urlPrefix,
            }),
        });
        assert.equal(handover.status, 0, `${handover.stdout}${handover.stderr}`);
        const kept = /assets: ([0-9]+) kept on blue\n$/.exec(handover.stdout);
        assert.ok(kept && Number(kept[1]) >= onlyA.length, `A's ${onlyA.length} own chunks should be in the map: ${handover.stdout}`);
        timings.assetHandover = handover.stdout.trim().split("\n").pop() ?? "";
        const switched = await edge.runSwitch("green");
        assert.equal(switched.code, 0, switched.stderr);
        await sleep(3000);
        looping = false;
        await loop;
        timings.assetRequests = `${requests}, ${failures.length} failed`;
        assert.deepEqual(failures.slice(0, 5), [], `${failures.length} of ${requests} requests for A's assets failed`);

        // Everything else goes to the live colour only: B's admin page (its index.html differs from A's), B's chunks.
        const indexA = await httpGet(`http://127.0.0.1:${serverPort}/app/`);
        const indexB = await httpGet(`http://127.0.0.1:${portB}/app/`);
        assert.notEqual(indexA.body, indexB.body);
        const onlyB = assetsB.filter((asset) => !assetsA.includes(asset));
        for (let i = 0; i < 10; i += 1) {
            assert.equal((await httpGet(`${edge.baseUrl}/app/`)).body, indexB.body, "the admin page is B's");
            assert.equal((await httpGet(`${edge.baseUrl}${onlyB[i % onlyB.length]}`)).status, 200);
        }
        // B itself answers A's chunk with its admin page (200 text/html), not A's bytes: the edge's map found it on A.
        const onB = await fetch(`http://127.0.0.1:${portB}${onlyA[0]}`);
        timings.onlyAFromB = `${onB.status} ${onB.headers.get("content-type")}`;
        assert.notEqual(digestOf(await onB.arrayBuffer()), bytesA.get(onlyA[0]), `B itself has ${onlyA[0]}: the test proves nothing`);
    });

    it("stops gracefully on docker stop: Medusa, as PID 1, handles SIGTERM and exits 0", function () {
        assert.ok(dockerd);
        for (const name of [serverName, workerName]) {
            // Both logged "Server is ready" in the tests above, so Medusa's SIGTERM handler is installed.
            const processes = dockerd.docker(["top", name]);
            const started = Date.now();
            dockerd.docker(["stop", "--time", "30", name]);
            const stopMs = Date.now() - started;
            timings[`${name.includes("worker") ? "worker" : "server"}Stop`] = seconds(stopMs);
            fs.writeFileSync(path.join(work, `${name}.log`), logs(dockerd, name, 100000));
            assert.equal(inspect(dockerd, name, "{{.State.ExitCode}}"), "0",
                `${name} did not exit 0 on docker stop; processes before the stop:\n${processes}\nlast log lines:\n${logs(dockerd, name, 10)}`);
            assert.ok(stopMs < 25000, `docker stop took ${stopMs} ms: SIGTERM was not handled, Docker had to SIGKILL`);
            assert.match(logs(dockerd, name), /Gracefully shutting down server/);
        }
    });
});
