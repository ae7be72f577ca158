// host/traffic-switch.sh against a real HAProxy (Debian's binary, config from lib/haproxyConfig.ts)
// in front of two real HTTP backends on loopback, with real keep-alive load while it switches. The
// switch verifies through the edge's operator socket (the public frontend does not say which colour
// answered); its refusals of planted links are in tests/host/edgeLinkRefusal.test.ts.
import { strict as assert } from "node:assert";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { renderHaproxyConfig } from "../../lib/haproxyConfig";
import { Colour } from "../../lib/colour";
import { SWITCH_WATCH_DEFAULTS, switchWatchEnv } from "../../components/trafficSwitch";
import { ColourBackend, startColourBackends } from "../support/colourBackends";
import { HaproxyEdge, SWITCH_SCRIPT, SwitchResult, freePort, operatorUrl, parseServerStates, routedColours } from "../support/haproxyEdge";
import { LoadClient, RequestRecord, probeColours, requestsNotServedBy, routingChangeWindow } from "../support/loadClient";
import { requireCommands } from "../support/realComponent";

// Per process: other suites' `npx mocha <file>` runs pick this file up too (the spec glob), and two
// edges must never share an admin socket or state file.
const WORK = path.resolve(__dirname, "../../.test-work/traffic-switch", String(process.pid));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const lastLine = (result: SwitchResult): string => result.stdout.trimEnd().split("\n").pop() ?? "";
const scriptMs = (result: SwitchResult): number => result.endedAt - result.startedAt;
/** From the start of the first failed request to the end of the last one; 0 when none failed. */
/** Every failed request started before `endedAt` (the switch's end): none failed once it had reverted. */
function assertNoFailureAfter(failures: RequestRecord[], endedAt: number): void {
    const late = failures.filter((f) => f.startedAt > endedAt);
    assert.equal(late.length, 0, `${late.length} requests failed after the switch ended: ${JSON.stringify(late.slice(0, 3))}`);
}

const errorWindowMs = (failures: RequestRecord[]): number =>
    failures.length === 0 ? 0 : Math.max(...failures.map((f) => f.endedAt)) - Math.min(...failures.map((f) => f.startedAt));
const failureKinds = (failures: RequestRecord[]): string => {
    const kinds = new Map<string, number>();
    for (const f of failures) kinds.set(f.error ?? "?", (kinds.get(f.error ?? "?") ?? 0) + 1);
    return [...kinds].map(([kind, count]) => `${count} ${kind}`).join(", ") || "none";
};

describe("traffic switch watch settings (components/trafficSwitch.ts and the script agree)", () => {
    it("the script's fallbacks are SWITCH_WATCH_DEFAULTS, and the component passes them when no watch is given", () => {
        const script = fs.readFileSync(SWITCH_SCRIPT, "utf8");
        const fallback = (name: string): string | undefined => new RegExp(`^${name}=\\$\\{${name}:-([^}]*)\\}$`, "m").exec(script)?.[1];
        const env = switchWatchEnv();
        assert.deepEqual(env, { WATCH_SECONDS: "30", WATCH_MAX_ERROR_RATE: "0.05", WATCH_MIN_REQUESTS: "20" });
        assert.equal(String(SWITCH_WATCH_DEFAULTS.seconds), env.WATCH_SECONDS);
        for (const [name, value] of Object.entries(env)) assert.equal(fallback(name), value, `${name} fallback in host/traffic-switch.sh`);
    });

    it("fills in what is not given, writes rates in plain decimals, and rejects bad values by name", () => {
        assert.deepEqual(switchWatchEnv({ seconds: 0 }), { WATCH_SECONDS: "0", WATCH_MAX_ERROR_RATE: "0.05", WATCH_MIN_REQUESTS: "20" });
        assert.deepEqual(switchWatchEnv({ maxErrorRate: 0.0001, minRequests: 100, seconds: undefined }), {
            WATCH_SECONDS: "30",
            WATCH_MAX_ERROR_RATE: "0.0001",
            WATCH_MIN_REQUESTS: "100",
        });
        assert.equal(switchWatchEnv({ maxErrorRate: 1 }).WATCH_MAX_ERROR_RATE, "1");
        assert.equal(switchWatchEnv({ maxErrorRate: 0 }).WATCH_MAX_ERROR_RATE, "0");
        assert.throws(() => switchWatchEnv({ seconds: -1 }), /watch\.seconds -1 is invalid/);
        assert.throws(() => switchWatchEnv({ seconds: 1.5 }), /watch\.seconds 1\.5 is invalid/);
        assert.throws(() => switchWatchEnv({ maxErrorRate: 1.5 }), /watch\.maxErrorRate 1\.5 is invalid: expected a share between 0 and 1/);
        assert.throws(() => switchWatchEnv({ maxErrorRate: Number.NaN }), /watch\.maxErrorRate/);
        assert.throws(() => switchWatchEnv({ minRequests: 0 }), /watch\.minRequests 0 is invalid/);
    });
});

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
        edge = new HaproxyEdge(
            path.join(WORK, "host"),
            await freePort(),
            { blue: { address: backends.blue.address }, green: { address: backends.green.address } },
            {},
            { operatorTcpPort: await freePort() },
        );
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
                adminSocketPath: "/run/medusa-edge/admin.sock",
                operatorSocketPath: "/run/medusa-edge/operator.sock",
                stateFilePath: "/usr/local/etc/haproxy/server-state",
                resolver: { nameserver: "127.0.0.11:53" },
                trustedProxies: ["172.16.0.0/12"],
                logToStdout: true,
            }),
        );
        // The names do not resolve here, like a colour not deployed yet: the edge must still start.
        const check = spawnSync("haproxy", ["-c", "-f", dockerConfig], { encoding: "utf8" });
        assert.equal(check.status, 0, check.stderr);
        assert.match(check.stderr, /could not resolve address 'medusa-prod-green-server'/);
        // HAProxy creates the sockets as the (non-root) user it runs as: no owner on the socket lines.
        assert.match(fs.readFileSync(dockerConfig, "utf8"), /stats socket \/run\/medusa-edge\/admin\.sock mode 600 level admin/);
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

    /** Runs `body` under keep-alive load; returns the load's records and failures. */
    const underLoad = async (body: () => Promise<void>): Promise<{ records: RequestRecord[]; failures: RequestRecord[] }> => {
        const client = new LoadClient({ baseUrl: edge.baseUrl, workers: 8, slowShare: 0.1 });
        load = client;
        client.start();
        try {
            await sleep(300);
            await body();
            await sleep(300);
        } finally {
            await client.stop();
            load = undefined;
        }
        return { records: client.records, failures: client.failures };
    };
    const restoreGreen = async (): Promise<void> => {
        const green = backends!.green;
        green.mode = "healthy";
        await edge.waitForHealth("green", true);
    };

    it("(b) target answering 500 except /health: reverted at the first bad verification answer, under load; state file unchanged", async () => {
        const green = backends!.green;
        const bytes = stateFileBytes();
        const mtime = stateFileMtime();
        const before = await edge.serverStates();
        let result: SwitchResult | undefined;
        green.mode = "broken-app";
        let outcome;
        try {
            outcome = await underLoad(async () => {
                result = await edge.runSwitch("green", { VERIFY_URL: operatorUrl("/store/products"), VERIFY_TIMEOUT: "30" });
            });
        } finally {
            green.mode = "healthy";
        }
        const r = result!;
        assert.equal(r.code, 4, r.stdout + r.stderr);
        assert.match(r.stderr, /switch to green failed: verification .*HTTP 500 served by 'green'.*; traffic restored to blue/);
        assert.equal(lastLine(r), "result: reverted stage=verify live=blue");
        console.log(`      reverted ${scriptMs(r).toFixed(0)} ms after launch; ${outcome.failures.length} of ${outcome.records.length} requests failed (${failureKinds(outcome.failures)}) within ${errorWindowMs(outcome.failures).toFixed(0)} ms`);
        // Behaviour, not speed (bench/switch.ts measures that): it did not wait for VERIFY_TIMEOUT (30 s),
        // and nothing failed once it had reverted.
        assert.ok(scriptMs(r) < 20000, `took ${scriptMs(r).toFixed(0)} ms: it waited for VERIFY_TIMEOUT (30 s)`);
        assertNoFailureAfter(outcome.failures, r.endedAt);
        const after = await edge.serverStates();
        assert.deepEqual(
            [after.blue?.adminState, after.green?.adminState, after.blue?.userWeight, after.green?.userWeight],
            [before.blue?.adminState, before.green?.adminState, before.blue?.userWeight, before.green?.userWeight],
        );
        assert.deepEqual(stateFileBytes(), bytes);
        assert.equal(stateFileMtime(), mtime);
        await allServedBy("blue");
    });

    it("(b) the same target behind a healthy /health (the production VERIFY_URL): the watch reverts it, under load", async () => {
        const green = backends!.green;
        let result: SwitchResult | undefined;
        green.mode = "broken-app";
        let outcome;
        try {
            outcome = await underLoad(async () => {
                result = await edge.runSwitch("green", { WATCH_SECONDS: "10" });
            });
        } finally {
            green.mode = "healthy";
        }
        const r = result!;
        assert.equal(r.code, 7, r.stdout + r.stderr);
        assert.match(r.stderr, /green failed during the watch: \d+ of its last \d+ requests failed .*; traffic switched back to blue \(verified/);
        assert.equal(lastLine(r), "result: reverted stage=watch live=blue");
        console.log(`      reverted ${scriptMs(r).toFixed(0)} ms after launch; ${outcome.failures.length} of ${outcome.records.length} requests failed (${failureKinds(outcome.failures)}) within ${errorWindowMs(outcome.failures).toFixed(0)} ms`);
        // Reverted by the watch as soon as it saw the errors, not at the end of its 10 s.
        assert.ok(scriptMs(r) < 10000, `took ${scriptMs(r).toFixed(0)} ms: the watch ran to its end`);
        assertNoFailureAfter(outcome.failures, r.endedAt);
        assert.deepEqual(await runtimeRouted(), ["blue"]);
        assert.deepEqual(persistedRouted(), ["blue"]);
        await allServedBy("blue");
    });

    it("(a) target process dies right after HAProxy's check passed: reverted before clients see errors, under load", async () => {
        const green = backends!.green;
        const port = green.port;
        const bytes = stateFileBytes();
        let result: SwitchResult | undefined;
        let outcome;
        try {
            outcome = await underLoad(async () => {
                await green.nextHealthCheck();
                await green.stop();
                // HAProxy still calls green UP for up to 2 s (inter 1s, fall 2): the gate lets it through.
                result = await edge.runSwitch("green", { VERIFY_TIMEOUT: "30" });
            });
        } finally {
            await green.start(port);
        }
        await restoreGreen();
        const r = result!;
        assert.equal(r.code, 4, r.stdout + r.stderr);
        assert.match(r.stdout, /switching medusa from blue to green/, "the gate let it through: this is the case after the gate");
        assert.match(r.stderr, /switch to green failed: .*(L4CON|DOWN).*; traffic restored to blue/);
        assert.equal(lastLine(r), "result: reverted stage=verify live=blue");
        const window = errorWindowMs(outcome.failures);
        console.log(`      reverted ${scriptMs(r).toFixed(0)} ms after launch; ${outcome.failures.length} of ${outcome.records.length} requests failed (${failureKinds(outcome.failures)}) within ${window.toFixed(0)} ms`);
        assert.ok(scriptMs(r) < 20000, `took ${scriptMs(r).toFixed(0)} ms: it waited for VERIFY_TIMEOUT (30 s)`);
        assertNoFailureAfter(outcome.failures, r.endedAt);
        assert.ok(outcome.failures.length <= 100, `${outcome.failures.length} failed requests`);
        assert.deepEqual(stateFileBytes(), bytes);
        await allServedBy("blue");
    });

    for (const failure of ["answers 500", "process dies"] as const) {
        it(`(c) target that starts failing during the watch (${failure}) is switched back during the watch, under load`, async () => {
            const green = backends!.green;
            const port = green.port;
            let result: SwitchResult | undefined;
            let brokeAt = 0;
            let outcome;
            try {
                outcome = await underLoad(async () => {
                    const switching = edge.runSwitch("green", { WATCH_SECONDS: "15" });
                    // Well into the watch: verified, persisted, and serving real traffic.
                    const deadline = Date.now() + 5000;
                    while ((persistedRouted()[0] !== "green" || (await runtimeRouted())[0] !== "green") && Date.now() < deadline) await sleep(50);
                    await sleep(1500);
                    assert.deepEqual(await runtimeRouted(), ["green"], "green is live before it breaks");
                    brokeAt = performance.now();
                    if (failure === "answers 500") green.mode = "broken-app";
                    else await green.stop();
                    result = await switching;
                });
            } finally {
                if (!green.running) await green.start(port);
            }
            await restoreGreen();
            const r = result!;
            assert.equal(r.code, 7, r.stdout + r.stderr);
            assert.match(r.stdout, /watching green for 15s/);
            assert.equal(lastLine(r), "result: reverted stage=watch live=blue");
            assert.match(r.stderr, /green failed during the watch: .*; traffic switched back to blue \(verified through/);
            const revertedMs = r.endedAt - brokeAt;
            const routedBack = routingChangeWindow(outcome.records, "blue", brokeAt, Infinity).firstOnlyTargetMs;
            console.log(`      switched back ${revertedMs.toFixed(0)} ms after green broke (all new requests on blue by ${routedBack.toFixed(0)} ms); ${outcome.failures.length} of ${outcome.records.length} requests failed (${failureKinds(outcome.failures)}) within ${errorWindowMs(outcome.failures).toFixed(0)} ms`);
            // Switched back while the 15 s watch still ran, not at its end (how fast: bench/switch.ts).
            assert.ok(revertedMs < 10000, `script ended ${revertedMs.toFixed(0)} ms after green broke: the watch ran to its end`);
            assert.ok(routedBack < revertedMs + 1000, `new requests on blue only ${routedBack.toFixed(0)} ms after green broke`);
            assertNoFailureAfter(outcome.failures, r.endedAt);
            assert.deepEqual(await runtimeRouted(), ["blue"]);
            assert.deepEqual(persistedRouted(), ["blue"]);
            await allServedBy("blue");
        });
    }

    it("(d) a healthy target under load with the watch on is never switched back (4 switches, 3 s watches)", async () => {
        const results: SwitchResult[] = [];
        const outcome = await underLoad(async () => {
            for (const target of ["green", "blue", "green", "blue"] as const) {
                const result = await edge.runSwitch(target, { WATCH_SECONDS: "3" });
                results.push(result);
                assert.equal(result.code, 0, `switch to ${target}: ${result.stdout}${result.stderr}`);
            }
        });
        results.forEach((r, i) => {
            assert.match(r.stdout, /watched (green|blue) for 3s: \d+ requests, 0 failed; it stays live\n/, `switch ${i + 1}`);
            assert.match(lastLine(r), /^live: (green|blue)$/);
            assert.ok(scriptMs(r) >= 3000, `switch ${i + 1} watched for ${scriptMs(r).toFixed(0)} ms`);
        });
        console.log(`      ${outcome.records.length} requests during 4 watched switches, ${outcome.failures.length} failed`);
        assert.equal(outcome.failures.length, 0, failureKinds(outcome.failures));
        assert.deepEqual(await runtimeRouted(), ["blue"]);
    });

    for (const lockMethod of ["flock", "mkdir"]) {
        it(`a switch started while another one watches is not blocked (${lockMethod} lock); the watching one stands down (exit 8)`, async () => {
            const watching = edge.runSwitch("green", { WATCH_SECONDS: "20", EDGE_LOCK_TIMEOUT: "60", EDGE_LOCK_METHOD: lockMethod });
            const deadline = Date.now() + 5000;
            while ((persistedRouted()[0] !== "green" || (await runtimeRouted())[0] !== "green") && Date.now() < deadline) await sleep(50);
            await sleep(1000);
            const other = await edge.runSwitch("blue", { EDGE_LOCK_TIMEOUT: "60", EDGE_LOCK_METHOD: lockMethod });
            assert.equal(other.code, 0, other.stdout + other.stderr);
            assert.ok(scriptMs(other) < 15000, `the second switch took ${scriptMs(other).toFixed(0)} ms: it waited for the 20 s watch`);
            const first = await watching;
            assert.equal(first.code, 8, first.stdout + first.stderr);
            assert.equal(lastLine(first), "result: superseded live=blue");
            assert.match(first.stderr, /another switch changed the edge \(it now routes to blue\); this switch stands down/);
            assert.ok(first.endedAt - other.endedAt < 10000, "the watching switch ran on instead of standing down");
            assert.deepEqual(await runtimeRouted(), ["blue"]);
            assert.deepEqual(persistedRouted(), ["blue"]);
            assert.equal(fs.existsSync(path.join(edge.controlDir, "edge.lock.d")), false, "no lock folder left behind");
        });
    }

    it("SIGTERM during the watch switches back (a failed switch leaves traffic where it was)", async () => {
        // The mkdir lock: released for the watch, taken again to switch back, removed at the end.
        // Signalled once the watch has begun (a fixed delay missed it on a loaded machine).
        const result = await edge.runSwitch("green", { WATCH_SECONDS: "20", EDGE_LOCK_METHOD: "mkdir" }, { stdout: /watching green for/, afterMs: 500 });
        assert.equal(result.code, 7, result.stdout + result.stderr);
        assert.match(result.stderr, /the watch of green was interrupted by a signal; traffic switched back to blue \(verified/);
        assert.equal(fs.existsSync(path.join(edge.controlDir, "edge.lock.d")), false, "no lock folder left behind");
        assert.equal(lastLine(result), "result: reverted stage=watch live=blue");
        assert.deepEqual(await runtimeRouted(), ["blue"]);
        assert.deepEqual(persistedRouted(), ["blue"]);
    });

    it("a failing target with no previous colour to return to is reported and left serving (exit 5)", async () => {
        const green = backends!.green;
        // Blue in maintenance: nothing serves before this switch, as on a first deploy.
        await edge.admin("set server medusa/blue state maint");
        assert.deepEqual(await runtimeRouted(), [], "nothing routed");
        try {
            const switching = edge.runSwitch("green", { WATCH_SECONDS: "10" });
            const deadline = Date.now() + 5000;
            while ((await runtimeRouted())[0] !== "green" && Date.now() < deadline) await sleep(50);
            await sleep(800);
            green.mode = "broken-app";
            await probeColours(edge.baseUrl, 25);
            const result = await switching;
            assert.equal(result.code, 5, result.stdout + result.stderr);
            assert.match(result.stderr, /blue did not serve before this switch, so there is nothing to switch back to: traffic stays on green/);
            assert.equal(lastLine(result), "result: failed stage=watch live=green");
        } finally {
            green.mode = "healthy";
            await edge.admin("set server medusa/blue state ready");
            await edge.waitForHealth("blue", true);
        }
        const back = await edge.runSwitch("blue");
        assert.equal(back.code, 0, back.stdout + back.stderr);
        await allServedBy("blue");
    });

    it("a switch terminated during verification (SIGTERM) restores routing and the state file", async () => {
        const green = backends!.green;
        const bytes = stateFileBytes();
        // Verification requests hang (no answer for 30 s), so the script is still verifying 1 s after it switched.
        green.mode = "hanging-app";
        try {
            const result = await edge.runSwitch("green", { VERIFY_URL: operatorUrl("/store/products") }, { stdout: /switching medusa from blue to green/, afterMs: 1000 });
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

    it("a switch started while the edge is still starting waits for its admin socket, then switches", async () => {
        await edge.stop();
        const switching = edge.runSwitch("blue");
        await new Promise((resolve) => setTimeout(resolve, 2500));
        await edge.start();
        const result = await switching;
        assert.equal(result.code, 0, `the switch did not wait for the edge:\n${result.stdout}\n${result.stderr}`);
        assert.equal(lastLine(result), "live: blue");
        await allServedBy("blue");
    });

    it("an edge that never opens its admin socket is reported after HEALTH_WAIT_TIMEOUT; nothing changed", async () => {
        await edge.stop();
        try {
            const result = await edge.runSwitch("green", { HEALTH_WAIT_TIMEOUT: "2" });
            assert.equal(result.code, 3, result.stderr);
            assert.match(result.stderr, /cannot reach the edge's admin socket .* after waiting 2s for it; nothing changed/);
            assert.equal(lastLine(result), "result: unchanged");
        } finally {
            await edge.start();
        }
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
        const lockDir = path.join(edge.controlDir, "edge.lock.d");
        fs.mkdirSync(lockDir);
        fs.writeFileSync(path.join(lockDir, "pid"), `${dead}\n`);
        const result = await edge.runSwitch("blue", { EDGE_LOCK_METHOD: "mkdir", EDGE_LOCK_TIMEOUT: "5" });
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stderr, /removed stale lock/);
        assert.equal(fs.existsSync(lockDir), false);
        await allServedBy("blue");
    });

    describe("(e) a state-file path that is not a regular file is refused, nothing changed", () => {
        const aside = (): string => `${edge.stateFile}.aside`;
        const runtimeAdminStates = async (): Promise<number[]> => {
            const states = await edge.serverStates();
            return [states.blue?.adminState ?? -1, states.green?.adminState ?? -1];
        };
        const refused = async (what: RegExp): Promise<void> => {
            const before = await runtimeAdminStates();
            const result = await edge.runSwitch("green");
            assert.equal(result.code, 2, result.stdout + result.stderr);
            assert.match(result.stderr, what);
            assert.match(result.stderr, /; refusing to switch, nothing changed/);
            assert.equal(lastLine(result), "result: unchanged");
            assert.deepEqual(await runtimeAdminStates(), before, "runtime routing unchanged");
            assert.deepEqual(await runtimeRouted(), ["blue"]);
            await allServedBy("blue", 5);
        };
        beforeEach(() => fs.renameSync(edge.stateFile, aside()));
        afterEach(() => {
            fs.rmSync(edge.stateFile, { recursive: true, force: true });
            fs.renameSync(aside(), edge.stateFile);
        });

        it("a directory: refused, and nothing is written into it", async () => {
            fs.mkdirSync(edge.stateFile);
            await refused(/the state file \S*\/edge\/server-state exists and is not a regular file/);
            assert.deepEqual(fs.readdirSync(edge.stateFile), []);
        });

        it("a symlink to a regular file: refused, the file it points to is untouched", async () => {
            const elsewhere = path.join(WORK, "elsewhere-state");
            fs.copyFileSync(aside(), elsewhere);
            const bytes = fs.readFileSync(elsewhere);
            const mtime = fs.statSync(elsewhere).mtimeMs;
            fs.symlinkSync(elsewhere, edge.stateFile);
            await refused(/the state file .*server-state is a symbolic link/);
            assert.deepEqual(fs.readFileSync(elsewhere), bytes);
            assert.equal(fs.statSync(elsewhere).mtimeMs, mtime);
            assert.ok(fs.lstatSync(edge.stateFile).isSymbolicLink());
        });

        it("a dangling symlink and a symlink to a directory: refused, nothing created", async () => {
            const missing = path.join(WORK, "no-such-state");
            fs.symlinkSync(missing, edge.stateFile);
            await refused(/is a symbolic link/);
            assert.equal(fs.existsSync(missing), false);
            fs.rmSync(edge.stateFile);
            const folder = path.join(WORK, "state-folder");
            fs.mkdirSync(folder, { recursive: true });
            fs.symlinkSync(folder, edge.stateFile);
            await refused(/is a symbolic link/);
            assert.deepEqual(fs.readdirSync(folder), []);
        });
    });

    it("switches, reverts and watches leave no temporary files in the edge folder, the control folder or TMPDIR", () => {
        assert.deepEqual(fs.readdirSync(edge.edgeDir).sort(), ["haproxy.cfg", "server-state"]);
        assert.deepEqual(fs.readdirSync(edge.controlDir), ["edge.lock"], "only the lock file stays in the control folder");
        assert.deepEqual(fs.readdirSync(edge.runDir).sort(), ["admin.sock", "operator.sock"], "the switch writes nothing where the edge can write");
        assert.deepEqual(fs.readdirSync(edge.tempDir), [], "TMPDIR is not used");
        assert.ok(fs.lstatSync(edge.stateFile).isFile());
        assert.equal(fs.statSync(edge.stateFile).mode & 0o777, 0o644);
        assert.equal(fs.statSync(edge.controlDir).mode & 0o777, 0o700);
    });

    it("VERIFY_URL-only mode (no VERIFY_UNIX_SOCKET) verifies over TCP; the public frontend's answers name no colour, so verifying there refuses the switch", async () => {
        const viaTcp = await edge.runSwitch("green", { VERIFY_UNIX_SOCKET: "", VERIFY_URL: `${edge.operatorTcpUrl}/health` });
        assert.equal(viaTcp.code, 0, viaTcp.stdout + viaTcp.stderr);
        assert.equal(lastLine(viaTcp), "live: green");
        await allServedBy("green");

        const bytes = stateFileBytes();
        const viaPublic = await edge.runSwitch("blue", { VERIFY_UNIX_SOCKET: "", VERIFY_URL: `${edge.baseUrl}/health`, VERIFY_TIMEOUT: "3" });
        assert.equal(viaPublic.code, 4, viaPublic.stdout + viaPublic.stderr);
        assert.match(viaPublic.stderr, /served by 'no X-Medusa-Colour header'/);
        assert.equal(lastLine(viaPublic), "result: reverted stage=verify live=green");
        assert.deepEqual(stateFileBytes(), bytes);
        await allServedBy("green");

        const back = await edge.runSwitch("blue");
        assert.equal(back.code, 0, back.stdout + back.stderr);
        await allServedBy("blue");
    });

    it("EDGE_CONTROL_DIR is required and must not be the state file's folder", async () => {
        const missing = await edge.runSwitch("green", { EDGE_CONTROL_DIR: "" });
        assert.equal(missing.code, 2);
        assert.match(missing.stderr, /EDGE_CONTROL_DIR is not set/);
        const same = await edge.runSwitch("green", { EDGE_CONTROL_DIR: edge.edgeDir });
        assert.equal(same.code, 2);
        assert.match(same.stderr, /EDGE_CONTROL_DIR \S+ is the state file's folder \(mounted into the edge\)/);
        assert.equal(lastLine(same), "result: unchanged");
        assert.deepEqual(await runtimeRouted(), ["blue"]);
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
