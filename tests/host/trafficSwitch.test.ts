// host/traffic-switch.sh against a real HAProxy (Debian's binary, config from lib/haproxyConfig.ts)
// in front of two real HTTP backends on loopback, with real keep-alive load while it switches.
import { strict as assert } from "node:assert";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { renderHaproxyConfig } from "../../lib/haproxyConfig";
import { Colour } from "../../lib/colour";
import { ColourBackend, startColourBackends } from "../support/colourBackends";
import { HaproxyEdge, freePort, parseServerStates, routedColours } from "../support/haproxyEdge";
import { LoadClient, probeColours, requestsNotServedBy, routingChangeWindow } from "../support/loadClient";
import { requireCommands } from "../support/realComponent";

// Per process: other suites' `npx mocha <file>` runs pick this file up too (the spec glob), and two
// edges must never share an admin socket or state file.
const WORK = path.resolve(__dirname, "../../.test-work/traffic-switch", String(process.pid));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe("traffic switch (real HAProxy edge, real backends, host/traffic-switch.sh)", function () {
    this.timeout(60_000);
    let backends: { blue: ColourBackend; green: ColourBackend } | undefined;
    let edge: HaproxyEdge;
    let load: LoadClient | undefined;

    const stateFileBytes = (): Buffer => fs.readFileSync(edge.stateFile);
    const stateFileMtime = (): number => fs.statSync(edge.stateFile).mtimeMs;
    const persistedRouted = (): Colour[] => routedColours(parseServerStates(stateFileBytes().toString()));
    const runtimeRouted = async (): Promise<Colour[]> => routedColours(await edge.serverStates());
    const allServedBy = async (colour: Colour, count = 20): Promise<void> => {
        assert.deepEqual(await probeColours(edge.baseUrl, count), Array(count).fill(colour));
    };

    before(async function () {
        requireCommands(this, ["haproxy", "socat", "curl"], "apt-get install -y haproxy socat curl");
        fs.rmSync(WORK, { recursive: true, force: true });
        fs.mkdirSync(WORK, { recursive: true });
        backends = await startColourBackends();
        edge = new HaproxyEdge(path.join(WORK, "edge"), await freePort(), {
            blue: { address: backends.blue.address },
            green: { address: backends.green.address },
        });
        await edge.start();
        await edge.waitForHealth("blue", true);
        await edge.waitForHealth("green", true);
    });

    after(async () => {
        await load?.stop();
        await edge?.stop();
        await backends?.blue.stop();
        await backends?.green.stop();
        fs.rmSync(WORK, { recursive: true, force: true });
    });

    it("haproxy -c accepts the rendered config, with IP servers and with container names + Docker DNS", () => {
        assert.doesNotThrow(() => execFileSync("haproxy", ["-c", "-q", "-f", edge.configFile], { stdio: "pipe" }));
        const dockerConfig = path.join(WORK, "docker-haproxy.cfg");
        fs.writeFileSync(
            dockerConfig,
            renderHaproxyConfig({
                bindAddress: "0.0.0.0",
                bindPort: 8080,
                servers: { blue: { address: "medusa-prod-blue-server:9000" }, green: { address: "medusa-prod-green-server:9000" } },
                adminSocketPath: "/var/run/edge/admin.sock",
                stateFilePath: "/var/run/edge/server-state",
                resolver: { nameserver: "127.0.0.11:53" },
                trustedProxies: ["172.16.0.0/12"],
                logToStdout: true,
                adminSocketOwner: { uid: 1000, gid: 1000 },
            }),
        );
        // The names do not resolve here, like a colour not deployed yet: the edge must still start.
        const check = spawnSync("haproxy", ["-c", "-f", dockerConfig], { encoding: "utf8" });
        assert.equal(check.status, 0, check.stderr);
        assert.match(check.stderr, /could not resolve address 'medusa-prod-green-server'/);
        assert.match(fs.readFileSync(dockerConfig, "utf8"), /stats socket \/var\/run\/edge\/admin\.sock mode 600 uid 1000 gid 1000 level admin/);
    });

    it("first switch (no state file yet): blue becomes the only routed colour and is persisted", async () => {
        assert.equal(fs.existsSync(edge.stateFile), false);
        assert.deepEqual(await runtimeRouted(), ["blue", "green"], "a fresh edge routes to every healthy colour");
        const result = await edge.runSwitch("blue");
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stdout, /live: blue\n$/);
        assert.deepEqual(await runtimeRouted(), ["blue"]);
        assert.deepEqual(persistedRouted(), ["blue"]);
        await allServedBy("blue");
    });

    it("22 switches back and forth under keep-alive load: zero failed requests, new requests go to the target once it returns", async () => {
        load = new LoadClient({ baseUrl: edge.baseUrl, workers: 8, slowShare: 0.1 });
        load.start();
        await sleep(300);
        const switches: { target: Colour; startedAt: number; endedAt: number }[] = [];
        for (let i = 0; i < 22; i++) {
            const target: Colour = i % 2 === 0 ? "green" : "blue";
            const result = await edge.runSwitch(target);
            assert.equal(result.code, 0, `switch ${i + 1} to ${target}: ${result.stderr}`);
            assert.match(result.stdout, new RegExp(`live: ${target}\\n$`));
            switches.push({ target, startedAt: result.startedAt, endedAt: result.endedAt });
            // Let at least 20 requests start after the switch returned (the slow ones may hold every
            // client for a while) so that the check below is never vacuous.
            const waitUntil = Date.now() + 5000;
            while (load.records.filter((r) => r.startedAt >= result.endedAt).length < 20 && Date.now() < waitUntil) await sleep(25);
        }
        await sleep(600); // slow requests started on the drained colour finish
        await load.stop();
        const records = load.records;
        const failures = load.failures;
        assert.equal(failures.length, 0, `failed requests: ${JSON.stringify(failures.slice(0, 5))}`);
        switches.forEach((s, i) => {
            const nextStart = switches[i + 1]?.startedAt ?? Infinity;
            const after = records.filter((r) => r.startedAt >= s.endedAt && r.startedAt < nextStart);
            assert.ok(after.length >= 20, `only ${after.length} requests were issued after switch ${i + 1} returned`);
            const strays = requestsNotServedBy(records, s.target, s.endedAt, nextStart);
            assert.equal(strays.length, 0, `switch ${i + 1} to ${s.target}: ${strays.length} later requests served otherwise`);
        });
        const worst = Math.max(
            ...switches.map((s, i) => routingChangeWindow(records, s.target, s.startedAt, switches[i + 1]?.startedAt ?? Infinity).firstOnlyTargetMs),
        );
        const slow = records.filter((r) => r.endedAt - r.startedAt >= 200).length;
        console.log(`      ${records.length} requests (${slow} slow), 0 failed; slowest switch: every new request on the target by ${worst.toFixed(1)} ms after it began`);
        assert.ok(records.length > 1000, `only ${records.length} requests were served`);
        assert.ok(records.some((r) => r.method === "POST") && records.some((r) => r.method === "GET"));
        assert.deepEqual(await runtimeRouted(), ["blue"]);
        assert.deepEqual(persistedRouted(), ["blue"]);
        load = undefined;
    });

    it("switching to the colour already live changes nothing (state file bytes and mtime, runtime)", async () => {
        const bytes = stateFileBytes();
        const mtime = stateFileMtime();
        const runtime = await edge.serverStates();
        await sleep(20);
        const result = await edge.runSwitch("blue");
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stdout, /already live/);
        assert.match(result.stdout, /live: blue\n$/);
        assert.deepEqual(stateFileBytes(), bytes);
        assert.equal(stateFileMtime(), mtime);
        const after = await edge.serverStates();
        assert.deepEqual(
            [after.blue?.adminState, after.green?.adminState],
            [runtime.blue?.adminState, runtime.green?.adminState],
        );
    });

    it("refuses when the target's health check fails: traffic and state file stay on the old colour", async () => {
        const green = backends!.green;
        const bytes = stateFileBytes();
        green.mode = "failing-health";
        try {
            await edge.waitForHealth("green", false);
            const result = await edge.runSwitch("green");
            assert.equal(result.code, 3, result.stdout + result.stderr);
            assert.match(result.stderr, /refusing to switch to green: .*traffic stays on blue/);
            assert.deepEqual(stateFileBytes(), bytes);
            assert.deepEqual(await runtimeRouted(), ["blue"]);
            await allServedBy("blue");
        } finally {
            green.mode = "healthy";
        }
        await edge.waitForHealth("green", true);
    });

    it("waits for HAProxy's checks when the target turns healthy during the switch, then switches", async () => {
        const green = backends!.green;
        green.mode = "failing-health";
        await edge.waitForHealth("green", false);
        const switching = edge.runSwitch("green", { HEALTH_WAIT_TIMEOUT: "15" });
        await new Promise((resolve) => setTimeout(resolve, 1500));
        green.mode = "healthy";
        const result = await switching;
        assert.equal(result.code, 0, result.stdout + result.stderr);
        assert.match(result.stdout, /live: green\s*$/);
        await allServedBy("green");
        const back = await edge.runSwitch("blue");
        assert.equal(back.code, 0, back.stdout + back.stderr);
    });

    it("refuses when the target is down (its server is gone): nothing changes", async () => {
        const green = backends!.green;
        const port = green.port;
        const bytes = stateFileBytes();
        await green.stop();
        try {
            await edge.waitForHealth("green", false);
            const result = await edge.runSwitch("green");
            assert.equal(result.code, 3, result.stdout + result.stderr);
            assert.match(result.stderr, /traffic stays on blue/);
            assert.deepEqual(stateFileBytes(), bytes);
            await allServedBy("blue");
        } finally {
            await green.start(port);
        }
        await edge.waitForHealth("green", true);
    });

    it("verification failure (target healthy on /health but the app answers 500): routing reverted, state file unchanged", async () => {
        const green = backends!.green;
        const bytes = stateFileBytes();
        const mtime = stateFileMtime();
        const before = await edge.serverStates();
        green.mode = "broken-app";
        try {
            const result = await edge.runSwitch("green", { VERIFY_URL: `${edge.baseUrl}/store/products`, VERIFY_TIMEOUT: "2" });
            assert.equal(result.code, 4, result.stdout + result.stderr);
            assert.match(result.stderr, /switch to green failed: verification .*HTTP 500 served by 'green'.*; traffic restored to blue/);
        } finally {
            green.mode = "healthy";
        }
        const after = await edge.serverStates();
        assert.deepEqual(
            [after.blue?.adminState, after.green?.adminState, after.blue?.userWeight, after.green?.userWeight],
            [before.blue?.adminState, before.green?.adminState, before.blue?.userWeight, before.green?.userWeight],
        );
        assert.deepEqual(stateFileBytes(), bytes);
        assert.equal(stateFileMtime(), mtime);
        await allServedBy("blue");
    });

    it("a switch terminated during verification (SIGTERM) restores routing and the state file", async () => {
        const green = backends!.green;
        const bytes = stateFileBytes();
        green.mode = "broken-app";
        try {
            const result = await edge.runSwitch("green", { VERIFY_URL: `${edge.baseUrl}/store/products` }, 1000);
            assert.equal(result.code, 4, result.stdout + result.stderr);
            assert.match(result.stderr, /switch to green failed: interrupted by a signal; traffic restored to blue/);
        } finally {
            green.mode = "healthy";
        }
        assert.deepEqual(stateFileBytes(), bytes);
        assert.deepEqual(await runtimeRouted(), ["blue"]);
        await allServedBy("blue");
    });

    it("a restarted edge comes back on the live colour from the persisted state", async () => {
        const result = await edge.runSwitch("green");
        assert.equal(result.code, 0, result.stderr);
        await edge.stop();
        await edge.start();
        // First requests after start, before any health check could have run.
        await allServedBy("green");
        assert.deepEqual(await runtimeRouted(), ["green"]);
        await edge.waitForHealth("blue", true);
        await allServedBy("green");
    });

    for (const lockMethod of ["flock", "mkdir"]) {
        it(`two switches started at once (${lockMethod} lock) both finish and leave one consistent live colour`, async () => {
            const [toBlue, toGreen] = await Promise.all([
                edge.runSwitch("blue", { EDGE_LOCK_METHOD: lockMethod }),
                edge.runSwitch("green", { EDGE_LOCK_METHOD: lockMethod }),
            ]);
            assert.equal(toBlue.code, 0, toBlue.stderr);
            assert.equal(toGreen.code, 0, toGreen.stderr);
            const routed = await runtimeRouted();
            assert.equal(routed.length, 1, `routed: ${routed}`);
            assert.deepEqual(persistedRouted(), routed);
            await allServedBy(routed[0]);
            // The one that finished last names the colour that is live.
            const last = toBlue.endedAt > toGreen.endedAt ? toBlue : toGreen;
            assert.match(last.stdout, new RegExp(`live: ${routed[0]}\\n$`));
        });
    }

    it("a stale mkdir lock left by a dead switch is cleared", async () => {
        const dead = spawnSync("sh", ["-c", "echo $$"], { encoding: "utf8" }).stdout.trim();
        const lockDir = `${edge.stateFile}.lock.d`;
        fs.mkdirSync(lockDir);
        fs.writeFileSync(path.join(lockDir, "pid"), `${dead}\n`);
        const result = await edge.runSwitch("blue", { EDGE_LOCK_METHOD: "mkdir", EDGE_LOCK_TIMEOUT: "5" });
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stderr, /removed stale lock/);
        assert.equal(fs.existsSync(lockDir), false);
        await allServedBy("blue");
    });

    it("rejects a bad TARGET_COLOUR and missing inputs without touching anything", async () => {
        const bytes = stateFileBytes();
        const bad = await edge.runSwitch("purple");
        assert.equal(bad.code, 2);
        assert.match(bad.stderr, /TARGET_COLOUR must be blue or green, got 'purple'; nothing changed/);
        const noUrl = await edge.runSwitch("green", { VERIFY_URL: "" });
        assert.equal(noUrl.code, 2);
        assert.match(noUrl.stderr, /VERIFY_URL is not set/);
        assert.deepEqual(stateFileBytes(), bytes);
        assert.deepEqual(await runtimeRouted(), ["blue"]);
    });
});
