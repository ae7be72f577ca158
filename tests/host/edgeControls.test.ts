// The edge's runtime controls on a real HAProxy (Debian's binary, the production config from
// lib/haproxyConfig.ts with lib/edgeControls.ts), in front of two real HTTP backends on loopback:
// maintenance mode (page and hold) through host/edge-maintenance.sh, the operator preview through
// host/edge-preview.sh, and the asset map that keeps the previous release's admin chunks reachable after a switch. Requests are
// counted under keep-alive load; the edge's process must never change (no reload, no restart).
import { strict as assert } from "node:assert";
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { COLOUR_HEADER } from "../../lib/haproxyConfig";
import { ASSETS_MAP_NAME, PREVIEW_COOKIE } from "../../lib/edgeControls";
import { ColourBackend, startColourBackends } from "../support/colourBackends";
import { HaproxyEdge, MAINTENANCE_SCRIPT, PREVIEW_SCRIPT, freePort, parseServerStates } from "../support/haproxyEdge";
import { LoadClient, RequestRecord, requestsNotServedBy } from "../support/loadClient";
import { requireCommands } from "../support/realComponent";

const WORK = path.resolve(__dirname, "../../.test-work/edge-controls", String(process.pid));
// Loads pause 20 ms between requests: a 503 page is answered at once, and unpaced clients would hit
// the edge's per-client rate limit (429), which is not what these tests are about.
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Answer {
    status: number;
    headers: http.IncomingHttpHeaders;
    body: string;
    ms: number;
}

function get(url: string, cookie?: string): Promise<Answer> {
    const started = performance.now();
    return new Promise((resolve, reject) => {
        const request = http.get(url, { headers: cookie === undefined ? {} : { cookie }, agent: false }, (response) => {
            let body = "";
            response.setEncoding("utf8");
            response.on("data", (chunk: string) => (body += chunk));
            response.on("end", () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body, ms: performance.now() - started }));
        });
        request.on("error", reject);
    });
}

const colourOf = (answer: Answer): string | undefined => {
    try {
        return (JSON.parse(answer.body) as { colour?: string }).colour;
    } catch {
        return undefined;
    }
};
const kinds = (records: RequestRecord[]): string => {
    const counts = new Map<string, number>();
    for (const r of records) counts.set(r.error ?? "ok", (counts.get(r.error ?? "ok") ?? 0) + 1);
    return [...counts].map(([k, n]) => `${n} ${k}`).join(", ") || "none";
};

describe("edge runtime controls on a real HAProxy: maintenance, preview, asset continuity", function () {
    this.timeout(180_000);
    let backends: { blue: ColourBackend; green: ColourBackend };
    let edge: HaproxyEdge;
    let load: LoadClient | undefined;

    const edgePid = async (): Promise<string> => /^Pid: ([0-9]+)$/m.exec(await edge.admin("show info"))?.[1] ?? "none";
    const maintenance = async (mode: string, env: Record<string, string> = {}) => {
        const run = await edge.runControl(MAINTENANCE_SCRIPT, { MODE: mode, ...env });
        return { ...run, last: run.stdout.trimEnd().split("\n").pop() ?? "" };
    };
    const preview = (env: Record<string, string> = {}) => edge.runControl(PREVIEW_SCRIPT, env);
    const tokenOf = (stdout: string): string => {
        const token = /^preview token: ([0-9a-f]{64})$/m.exec(stdout)?.[1];
        assert.ok(token, `no token in ${JSON.stringify(stdout)}`);
        return token;
    };

    before(async function () {
        requireCommands(this, ["haproxy", "socat", "curl", "sha256sum"], "apt-get install -y haproxy socat curl coreutils");
        fs.rmSync(WORK, { recursive: true, force: true });
        fs.mkdirSync(WORK, { recursive: true });
        backends = await startColourBackends();
        edge = new HaproxyEdge(path.join(WORK, "host"), await freePort(), { blue: { address: backends.blue.address }, green: { address: backends.green.address } }, {}, { controls: true });
        await edge.start();
        await edge.waitForHealth("blue", true);
        await edge.waitForHealth("green", true);
        const switched = await edge.runSwitch("blue");
        assert.equal(switched.code, 0, switched.stderr);
    });

    afterEach(async () => {
        await load?.stop();
        load = undefined;
    });

    after(async () => {
        await edge?.stop();
        await backends?.blue.stop();
        await backends?.green.stop();
        fs.rmSync(WORK, { recursive: true, force: true });
    });

    it("maintenance page under load: requests already in flight are served, each new one gets the 503 page with Retry-After, off restores service; the edge is never reloaded", async () => {
        const pid = await edgePid();
        load = new LoadClient({ baseUrl: edge.baseUrl, workers: 8, slowShare: 0.3, pauseMs: 20 });
        load.start();
        // Counts, not time: on a busy machine a second may hold few requests.
        const startedSince = (since: number) => load!.records.filter((r) => r.startedAt > since).length;
        const waitForRequests = async (since: number, count: number) => {
            const deadline = Date.now() + 20_000;
            while (startedSince(since) < count && Date.now() < deadline) await sleep(100);
        };
        await waitForRequests(0, 60);
        const onStarted = performance.now();
        const on = await maintenance("page");
        const onEnded = performance.now();
        assert.equal(on.status, 0, on.stderr);
        assert.equal(on.last, "maintenance: page hold=30");
        const answer = await get(`${edge.baseUrl}/store/products`);
        assert.equal(answer.status, 503);
        assert.equal(answer.headers["retry-after"], "30");
        assert.match(answer.body, /Back in a moment/);
        await waitForRequests(onEnded, 60);
        const offStarted = performance.now();
        const off = await maintenance("off");
        const offEnded = performance.now();
        assert.equal(off.status, 0, off.stderr);
        await waitForRequests(offEnded, 60);
        await load.stop();

        const records = load.records;
        const before = records.filter((r) => r.startedAt < onStarted);
        const during = records.filter((r) => r.startedAt > onEnded && r.endedAt < offStarted);
        const after = records.filter((r) => r.startedAt > offEnded);
        assert.ok(before.length > 50 && during.length > 50 && after.length > 50, `requests before/during/after: ${before.length}/${during.length}/${after.length}`);
        assert.equal(before.filter((r) => r.error).length, 0, `before maintenance: ${kinds(before)}`);
        assert.deepEqual(during.filter((r) => r.error !== "HTTP 503"), [], `during maintenance: ${kinds(during)}`);
        assert.equal(after.filter((r) => r.error).length, 0, `after maintenance: ${kinds(after)}`);
        // Nothing but a 503 page ever failed: no connection was dropped by turning it on or off.
        assert.deepEqual(records.filter((r) => r.error && r.error !== "HTTP 503"), []);
        assert.equal(await edgePid(), pid);
    });

    it("maintenance hold under load: new requests wait while it is on and every one is answered by the app once it is off", async () => {
        const pid = await edgePid();
        const on = await maintenance("hold", { HOLD_SECONDS: "60" });
        const onEnded = performance.now();
        assert.equal(on.status, 0, on.stderr);
        load = new LoadClient({ baseUrl: edge.baseUrl, workers: 8, slowShare: 0, pauseMs: 20 });
        load.start();
        await sleep(2000);
        assert.equal(load.records.length, 0, `answered while held: ${kinds(load.records)}`);
        const offStarted = performance.now();
        const off = await maintenance("off");
        assert.equal(off.status, 0, off.stderr);
        assert.match(off.stdout, /held requests are on their way/);
        await sleep(1000);
        await load.stop();
        const held = load.records.filter((r) => r.startedAt > onEnded && r.startedAt < offStarted);
        assert.equal(held.length, 8, "each of the 8 workers had one request held");
        for (const r of held) assert.ok(r.endedAt > offStarted, "a held request was answered before maintenance ended");
        assert.equal(load.failures.length, 0, `failed: ${kinds(load.failures)}`);
        assert.ok(load.records.length > held.length + 20, "traffic flowed again after off");
        assert.equal(await edgePid(), pid);
    });

    it("a request held past HOLD_SECONDS gets the maintenance page with Retry-After, not a hang", async () => {
        assert.equal((await maintenance("hold", { HOLD_SECONDS: "1" })).status, 0);
        try {
            const answer = await get(`${edge.baseUrl}/store/products`);
            assert.equal(answer.status, 503);
            assert.equal(answer.headers["retry-after"], "30");
            assert.ok(answer.ms >= 900, `answered after ${Math.round(answer.ms)} ms, before the 1 s bound`);
        } finally {
            assert.equal((await maintenance("off")).status, 0);
        }
        assert.equal((await get(`${edge.baseUrl}/store/products`)).status, 200);
    });

    it("the mode is kept in the map file, so a restarted edge comes back in maintenance; show reports it", async () => {
        assert.equal((await maintenance("page")).status, 0);
        assert.match(fs.readFileSync(path.join(edge.edgeDir, "maintenance.map"), "utf8"), /^mode page$/m);
        await edge.stop();
        await edge.start();
        await edge.waitForHealth("blue", true);
        assert.equal((await get(`${edge.baseUrl}/store/products`)).status, 503);
        assert.equal((await maintenance("show")).last, "maintenance: page hold=30");
        assert.equal((await maintenance("off")).status, 0);
        assert.equal((await get(`${edge.baseUrl}/store/products`)).status, 200);
        assert.equal((await maintenance("show")).last, "maintenance: off hold=30");
    });

    it("bad input is refused by name and changes nothing", async () => {
        const wrongMode = await maintenance("pause");
        assert.equal(wrongMode.status, 2);
        assert.match(wrongMode.stderr, /MODE must be page, hold, off or show, got 'pause'; nothing changed/);
        const longHold = await maintenance("hold", { HOLD_SECONDS: "600" });
        assert.equal(longHold.status, 2);
        assert.match(longHold.stderr, /HOLD_SECONDS must be 1-120/);
        const wrongColour = await preview({ COLOUR: "red" });
        assert.equal(wrongColour.status, 2);
        assert.match(wrongColour.stderr, /COLOUR must be blue, green or idle, got 'red'/);
        assert.equal((await get(`${edge.baseUrl}/store/products`)).status, 200);
        assert.equal((await maintenance("show")).last, "maintenance: off hold=30");
    });

    it("preview: only the host's token reaches the idle colour (and sees which colour answered); its hash, a wrong token or none reach the live one", async () => {
        const on = await preview();
        assert.equal(on.status, 0, on.stderr);
        assert.match(on.stdout, /^preview: green$/m);
        const token = tokenOf(on.stdout);
        const tokenFile = path.join(edge.controlDir, "preview-token");
        assert.equal(fs.statSync(tokenFile).mode & 0o777, 0o600);
        const hash = createHash("sha256").update(token).digest("hex");
        const map = fs.readFileSync(path.join(edge.edgeDir, "preview.map"), "utf8");
        assert.equal(map, `${hash} green\n`);
        assert.ok(!map.includes(token), "the edge's folder must not hold the token itself");

        for (let i = 0; i < 10; i++) {
            const previewed = await get(`${edge.baseUrl}/store/products`, `${PREVIEW_COOKIE}=${token}`);
            assert.equal(colourOf(previewed), "green");
            assert.equal(previewed.headers[COLOUR_HEADER.toLowerCase()], "green");
        }
        for (const cookie of [undefined, `${PREVIEW_COOKIE}=${randomBytes(32).toString("hex")}`, `${PREVIEW_COOKIE}=${hash}`, `${PREVIEW_COOKIE}=${token.toUpperCase()}`]) {
            const answer = await get(`${edge.baseUrl}/store/products`, cookie);
            assert.equal(colourOf(answer), "blue", `cookie ${cookie}`);
            assert.equal(answer.headers[COLOUR_HEADER.toLowerCase()], undefined);
        }
        // The operator can look at the new release while customers see the maintenance page.
        assert.equal((await maintenance("page")).status, 0);
        try {
            assert.equal(colourOf(await get(`${edge.baseUrl}/store/products`, `${PREVIEW_COOKIE}=${token}`)), "green");
            assert.equal((await get(`${edge.baseUrl}/store/products`)).status, 503);
        } finally {
            await maintenance("off");
        }
        // Routing is untouched: the switch's drain of green still holds for everyone else.
        assert.deepEqual(Object.keys(parseServerStates(await edge.admin("show servers state medusa"))).sort(), ["blue", "green"]);

        const rotated = await preview({ ROTATE: "1" });
        assert.equal(rotated.status, 0, rotated.stderr);
        const newToken = tokenOf(rotated.stdout);
        assert.notEqual(newToken, token);
        assert.equal(colourOf(await get(`${edge.baseUrl}/store/products`, `${PREVIEW_COOKIE}=${token}`)), "blue");
        assert.equal(colourOf(await get(`${edge.baseUrl}/store/products`, `${PREVIEW_COOKIE}=${newToken}`)), "green");

        const off = await preview({ ACTION: "off" });
        assert.equal(off.status, 0, off.stderr);
        assert.equal(colourOf(await get(`${edge.baseUrl}/store/products`, `${PREVIEW_COOKIE}=${newToken}`)), "blue");
        assert.equal(fs.readFileSync(path.join(edge.edgeDir, "preview.map"), "utf8"), "");
    });

    it("preview refuses a colour that is not up, changing nothing", async () => {
        const greenPort = backends.green.port;
        await backends.green.stop();
        try {
            await edge.waitForHealth("green", false);
            const refused = await preview({ COLOUR: "green" });
            assert.equal(refused.status, 2);
            assert.match(refused.stderr, /green is not up on the edge .*nothing changed/);
        } finally {
            await backends.green.start(greenPort);
        }
    });

    it("asset routing: a path in the asset map goes to the colour it names, before and after a switch, under load; every other path (the live colour's own chunks, the admin page, a file nobody has) to the live colour only", async () => {
        const chunk = (release: string, i: number) => `/app/assets/${release}-${i}-${createHash("sha256").update(`${release}${i}`).digest("hex").slice(0, 8)}.js`;
        const shared = Array.from({ length: 5 }, (_, i) => chunk("vendor", i));
        const oldOnly = Array.from({ length: 30 }, (_, i) => chunk("old", i));
        const newOnly = Array.from({ length: 30 }, (_, i) => chunk("new", i));
        backends.blue.assets = new Set([...oldOnly, ...shared]);
        backends.green.assets = new Set([...newOnly, ...shared]);
        // The previous test stopped green and started it again on its address.
        await edge.waitForHealth("green", true, 15_000);
        // What host/edge-assets.sh writes before the switch to green: the files only blue has.
        const mapFile = path.join(edge.edgeDir, ASSETS_MAP_NAME);
        const version = /New version created: ([0-9]+)/.exec(await edge.admin(`prepare map ${mapFile}`))?.[1];
        assert.ok(version, "prepare map gave no version");
        for (const asset of oldOnly) assert.equal((await edge.admin(`add map @${version} ${mapFile} ${asset} blue`)).trim(), "");
        assert.equal((await edge.admin(`commit map @${version} ${mapFile}`)).trim(), "");

        // An admin tab opened on blue keeps asking for its chunks, across the switch.
        const expectBlue = [...oldOnly, ...shared].map((asset) => ({ asset, body: `blue:${asset}` }));
        const tabFailures: string[] = [];
        let tabRequests = 0;
        let tabOpen = true;
        const tab = (async () => {
            while (tabOpen) {
                for (const { asset, body } of expectBlue) {
                    const answer = await get(`${edge.baseUrl}${asset}`);
                    tabRequests += 1;
                    // A shared file is the same bytes on both colours; here each colour labels its own.
                    const wanted = shared.includes(asset) ? [body, `green:${asset}`] : [body];
                    if (answer.status !== 200 || !wanted.includes(answer.body)) tabFailures.push(`${asset}: ${answer.status} ${answer.body.slice(0, 40)}`);
                }
            }
        })();
        load = new LoadClient({ baseUrl: edge.baseUrl, workers: 6, slowShare: 0.1, pauseMs: 20 });
        load.start();
        await sleep(500);
        const switched = await edge.runSwitch("green");
        assert.equal(switched.code, 0, switched.stderr);
        const switchedAt = switched.endedAt;
        await sleep(1500);
        tabOpen = false;
        await tab;
        await load.stop();
        assert.ok(tabRequests > 2 * expectBlue.length, `the tab made too few requests to mean anything: ${tabRequests}`);
        assert.deepEqual(tabFailures.slice(0, 5), [], `${tabFailures.length} of ${tabRequests} chunk requests of the old tab failed`);
        assert.equal(load.failures.length, 0, `load: ${kinds(load.failures)}`);
        const late = requestsNotServedBy(load.records, "green", switchedAt, Number.POSITIVE_INFINITY);
        assert.deepEqual(late, [], "a non-asset request reached the old colour after the switch");

        // Not in the map: the live colour answers, whatever the other one has.
        for (const asset of [...newOnly.slice(0, 5), ...shared]) assert.equal((await get(`${edge.baseUrl}${asset}`)).body, `green:${asset}`, asset);
        assert.match((await get(`${edge.baseUrl}/app/assets/missing-00000000.js`)).body, /green admin/);
        assert.equal(colourOf(await get(`${edge.baseUrl}/app`)), "green");
        // An exact path only: a query string or a path below a mapped one is not the mapped file.
        assert.equal((await get(`${edge.baseUrl}${oldOnly[0]}?v=1`)).body, `blue:${oldOnly[0]}`, "the query is not part of the path");
        assert.match((await get(`${edge.baseUrl}${oldOnly[0]}/x`)).body, /green admin/);

        // The colour the map names is down: the live colour answers (as it would without a map), not an error.
        const bluePort = backends.blue.port;
        await backends.blue.stop();
        try {
            await edge.waitForHealth("blue", false);
            const answer = await get(`${edge.baseUrl}${oldOnly[0]}`);
            assert.equal(answer.status, 200);
            assert.match(answer.body, /green admin/);
        } finally {
            await backends.blue.start(bluePort);
        }
    });
});
