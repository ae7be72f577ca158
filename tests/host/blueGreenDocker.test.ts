// The Docker side of a blue/green deploy, for real: the edge (HAProxy in a container, config rendered
// by components/edge.ts and installed by host/install-edge-config.sh) on a user-defined Docker
// network, resolving the colour containers by name through Docker's embedded DNS (127.0.0.11);
// traffic moved by host/traffic-switch.sh through the admin socket and verified through the operator
// socket, both in the edge's socket folder (edge-run/); the edge container runs as the non-root user
// install-edge-config.sh names, with its config folder mounted read-only, a read-only root file
// system and no capabilities, as components/edge.ts runs it; a colour container replaced (new IP, its old IP taken by another container) and the edge following
// the name; an admin tab opened on one release loading its chunks from that colour after a switch
// (host/edge-assets.sh's map); the edge restarted as a container coming back on the live colour; a
// switch to a stopped colour refused. Light keep-alive load runs through the switches and must see zero failures.
//
// The daemon runs in a network namespace of this suite's own (tests/support/netnsDockerd.ts), so
// its bridge, veths and published port never touch the host; the HTTP clients and the switch
// script run in that namespace. The colour app is tests/fixtures/medusa-like-app built with
// docker/medusa.Dockerfile; it echoes MEDUSA_WORKER_MODE as `role`, which this suite sets to a
// per-container marker ("blue-server@r1") so a response tells which container answered: the public
// edge no longer names the colour in a header (a response that does counts as a failure).
import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { edgeInstallEnv, parseEdgeUser, renderEdgeConfig } from "../../components/edge";
import { Colour } from "../../lib/colour";
import { ADMIN_ASSETS, ASSETS_MAP_NAME } from "../../lib/edgeControls";
import { COLOUR_HEADER, EDGE_BACKEND_NAME, EDGE_SELF_HEALTH_PATH } from "../../lib/haproxyConfig";
import { EDGE_CONTAINER_PORT, hostNames, MEDUSA_PORT } from "../../lib/hostNames";
import { acquireBuildDockerd, dockerBuild, releaseBuildDockerd, buildLocalBaseImage } from "../support/buildDockerd";
import { EDGE_STOP_SIGNAL, ensureLocalHaproxyImage } from "../support/localHaproxyImage";
import { LOCAL_NODE_IMAGE } from "../support/localNodeImage";
import { CommandResult, NetnsDockerd } from "../support/netnsDockerd";
import { PrivateDockerd, sleep } from "../support/privateDockerd";
import { isRoot, requireCommands, requireReal } from "../support/realComponent";

const repo = path.resolve(__dirname, "../..");
const work = path.join(repo, ".test-work/blue-green-docker");
const names = hostNames("it", path.join(work, "host-state"));
const NETNS = "medusa-it";
/** The edge's published port, inside the namespace (nothing else listens there). */
const EDGE_PORT = 18080;
const EDGE_URL = `http://127.0.0.1:${EDGE_PORT}`;
const BASE_IMAGE = "medusa-deploy/base:blue-green-it";
const APP_IMAGE = "medusa-deploy/fixture-app:blue-green-it";
const SQUATTER = "medusa-it-squatter";
const adminSocket = names.adminSocket;
const stateFile = path.join(names.edgeDir, "server-state");
/** The uid:gid the edge runs as when host scripts run as root (the local image's haproxy user). */
const EDGE_USER = "99:99";
/** install-edge-config.sh's inputs as components/edge.ts passes them. */
const installEnv = (): Record<string, string> => edgeInstallEnv(names, "medusa-deploy/haproxy:local", EDGE_USER);
const marker = (colour: string, release: string): string => `${colour}-server@${release}`;

interface Probe {
    status: number;
    colour: string;
    role: string;
    error?: string;
}

interface LoadSummary {
    total: number;
    failed: number;
    failures: string[];
    served: Record<string, number>;
}

// Sequential GETs on fresh connections; prints one JSON array. Runs inside the namespace.
const PROBE_SCRIPT = `
const http = require("node:http");
const [url, count] = [process.env.PROBE_URL, Number(process.env.PROBE_COUNT)];
(async () => {
  const out = [];
  for (let i = 0; i < count; i++) {
    out.push(await new Promise((resolve) => {
      const req = http.get(url, { agent: false, timeout: 5000 }, (res) => {
        let body = "";
        res.on("data", (c) => (body += c));
        res.on("end", () => {
          let role = "";
          try { role = JSON.parse(body).role || ""; } catch {}
          const leaked = res.headers["${COLOUR_HEADER.toLowerCase()}"];
          resolve({ status: res.statusCode, colour: role.split("-server@")[0], role, error: leaked === undefined ? undefined : "public edge sent ${COLOUR_HEADER}: " + leaked });
        });
      });
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.on("error", (e) => resolve({ status: 0, colour: "", role: "", error: e.code || e.message }));
    }));
  }
  process.stdout.write(JSON.stringify(out));
})();
`;

// Keep-alive GET/POST load until stdin closes, then one JSON summary. Runs inside the namespace.
const LOAD_SCRIPT = `
const http = require("node:http");
const url = process.env.LOAD_URL, workers = Number(process.env.LOAD_WORKERS), pause = Number(process.env.LOAD_PAUSE_MS);
const agent = new http.Agent({ keepAlive: true, maxSockets: workers });
const summary = { total: 0, failed: 0, failures: [], served: {} };
let running = true;
const body = JSON.stringify({ items: [{ variant: "v_1", quantity: 2 }] });
const one = (i) => new Promise((resolve) => {
  const post = i % 2 === 1;
  const req = http.request(url + (post ? "/store/carts" : "/store/products"), { method: post ? "POST" : "GET", agent,
      headers: post ? { "content-type": "application/json", "content-length": Buffer.byteLength(body) } : {} }, (res) => {
    let text = "";
    res.on("data", (c) => (text += c));
    res.on("end", () => {
      const leaked = res.headers["${COLOUR_HEADER.toLowerCase()}"];
      let role = "";
      try { role = JSON.parse(text).role || ""; } catch {}
      if (leaked !== undefined) return resolve({ error: "public edge sent ${COLOUR_HEADER}: " + leaked });
      resolve(res.statusCode === 200 && role ? { ok: role } : { error: "HTTP " + res.statusCode + " " + role });
    });
  });
  req.on("error", (e) => resolve({ error: e.code || e.message }));
  req.end(post ? body : undefined);
});
const work = async (w) => {
  for (let i = w; running; i++) {
    const r = await one(i);
    summary.total++;
    if (r.error) { summary.failed++; if (summary.failures.length < 20) summary.failures.push(new Date().toISOString() + " " + r.error); }
    else summary.served[r.ok] = (summary.served[r.ok] || 0) + 1;
    if (pause > 0) await new Promise((s) => setTimeout(s, pause));
  }
};
const all = Array.from({ length: workers }, (_, w) => work(w));
process.stdin.on("end", async () => { running = false; await Promise.all(all); agent.destroy(); process.stdout.write(JSON.stringify(summary)); });
process.stdin.resume();
`;

// An admin tab loading its chunks on keep-alive connections until stdin closes, then one JSON summary
// of the answers each path got (body, or status and content type when it is not a chunk).
const ASSET_TAB_SCRIPT = `
const http = require("node:http");
const url = process.env.TAB_URL, paths = process.env.TAB_PATHS.split(" ");
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const answers = {};
let running = true, total = 0;
const get = (p) => new Promise((resolve) => {
  http.get(url + p, { agent }, (res) => {
    let text = "";
    res.on("data", (c) => (text += c));
    res.on("end", () => resolve(res.statusCode === 200 && String(res.headers["content-type"]).startsWith("text/javascript") ? text.trim() : "HTTP " + res.statusCode + " " + res.headers["content-type"]));
  }).on("error", (e) => resolve(e.code || e.message));
});
const loop = (async () => {
  while (running) for (const p of paths) {
    const answer = await get(p);
    total++;
    // A tab, not a flood: the edge answers more than 500 requests a second from one address with 429.
    await new Promise((s) => setTimeout(s, 20));
    answers[p] = answers[p] || {};
    answers[p][answer] = (answers[p][answer] || 0) + 1;
  }
})();
process.stdin.on("end", async () => { running = false; await loop; agent.destroy(); process.stdout.write(JSON.stringify({ total, answers })); });
process.stdin.resume();
`;

/** A chunk only one colour's release has, and what that colour answers for it. */
const chunkOf = (colour: Colour, release: string): { file: string; body: string } => ({ file: `${colour}-${release}-chunk.js`, body: `chunk of ${colour} ${release}` });

describe("blue/green on Docker: edge container, embedded DNS, replaced colour, edge restart (real dockerd)", function () {
    this.timeout(10 * 60 * 1000);
    let ns: NetnsDockerd;
    let dockerd: PrivateDockerd;
    let buildDockerdHeld = false;
    let stopLoad: (() => Promise<LoadSummary>) | undefined;
    const timings: Record<string, string> = {};
    const ips: Record<string, string> = {};

    const docker = (args: string[]) => dockerd.docker(args).trim();
    const inNetns = (command: string, args: string[], env: NodeJS.ProcessEnv = process.env) => ns.run(command, args, env);

    async function probe(count: number, urlPath = "/store/products"): Promise<Probe[]> {
        const result = await inNetns(process.execPath, ["-e", PROBE_SCRIPT], { ...process.env, PROBE_URL: EDGE_URL + urlPath, PROBE_COUNT: String(count) });
        assert.equal(result.code, 0, `probe client failed: ${result.stderr}`);
        return JSON.parse(result.stdout) as Probe[];
    }

    async function assertServedBy(colour: Colour, release: string, count = 10): Promise<void> {
        const probes = await probe(count);
        const role = marker(colour, release);
        const wrong = probes.filter((p) => p.status !== 200 || p.colour !== colour || p.role !== role || p.error !== undefined);
        assert.deepEqual(wrong, [], `expected all ${count} requests served by ${colour} (${role}); got ${JSON.stringify(probes)}`);
    }

    function switchTo(colour: Colour): Promise<CommandResult> {
        return inNetns("sh", [path.join(repo, "host/traffic-switch.sh")], {
            ...process.env,
            EDGE_ADMIN_SOCKET: adminSocket,
            EDGE_STATE_FILE: stateFile,
            EDGE_CONTROL_DIR: names.edgeControlDir,
            TARGET_COLOUR: colour,
            // As components/trafficSwitch.ts: through the operator socket, the host part is ignored.
            VERIFY_UNIX_SOCKET: names.operatorSocket,
            VERIFY_URL: "http://edge/health",
            VERIFY_TIMEOUT: "20",
            HEALTH_WAIT_TIMEOUT: "5",
            // The watch itself is tested in tests/host/trafficSwitch.test.ts; its 30 s default here
            // would only add five minutes of waiting.
            WATCH_SECONDS: "3",
        });
    }

    async function switchOk(colour: Colour): Promise<void> {
        const result = await switchTo(colour);
        assert.equal(result.code, 0, `switch to ${colour} failed (exit ${result.code}):\n${result.stdout}${result.stderr}\n${edgeState()}`);
        assert.match(result.stdout, new RegExp(`live: ${colour}\\n?$`));
    }

    function admin(command: string): string {
        return execFileSync("socat", ["-t", "5", "-", `UNIX-CONNECT:${adminSocket}`], { input: `${command}\n`, encoding: "utf8", timeout: 10000 });
    }

    /** Each colour's address, op state and admin state as the running edge sees them. */
    function edgeServers(): Record<string, { address: string; opState: number; adminState: number }> {
        const servers: Record<string, { address: string; opState: number; adminState: number }> = {};
        for (const line of admin(`show servers state ${EDGE_BACKEND_NAME}`).split("\n")) {
            const f = line.trim().split(/\s+/);
            if (f.length < 9 || f[0].startsWith("#") || f[1] !== EDGE_BACKEND_NAME) continue;
            servers[f[3]] = { address: f[4], opState: Number(f[5]), adminState: Number(f[6]) };
        }
        return servers;
    }

    function edgeState(): string {
        try {
            return `edge: ${JSON.stringify(edgeServers())}`;
        } catch (error) {
            return `edge admin socket: ${(error as Error).message}`;
        }
    }

    function containerIp(name: string): string {
        return docker(["inspect", "--format", `{{(index .NetworkSettings.Networks "${names.network}").IPAddress}}`, name]);
    }

    /** Starts one colour's server as components/colourSet.ts declares it; the image's own health check. */
    function runColour(colour: Colour, release: string): void {
        docker([
            "run", "-d", "--name", names.server(colour),
            "--network", names.network, "--network-alias", `${colour}-server`,
            "--restart", "unless-stopped",
            "-e", `MEDUSA_WORKER_MODE=${marker(colour, release)}`, "-e", `PORT=${MEDUSA_PORT}`, "-e", "NODE_ENV=production",
            "-e", `MEDUSA_RELEASE=${release}`, "-e", `MEDUSA_COLOUR=${colour}`,
            "--label", `medusa-deploy.colour=${colour}`, "--label", `medusa-deploy.release=${release}`, "--label", "medusa-deploy.role=server",
            // The fixture has no `medusa` CLI (see tests/host/medusaDockerfile.test.ts).
            APP_IMAGE, "node", "index.js",
        ]);
    }

    /** Waits for Docker's "healthy" (the gate Pulumi's `wait` uses); returns the milliseconds it took. */
    async function waitHealthy(name: string, timeoutMs = 60000): Promise<number> {
        const started = Date.now();
        let status = "";
        while (Date.now() - started < timeoutMs) {
            status = docker(["inspect", "--format", "{{.State.Health.Status}}", name]);
            if (status === "healthy") return Date.now() - started;
            if (status === "unhealthy") break;
            await sleep(250);
        }
        throw new Error(`${name} is ${status}, not healthy: ${docker(["inspect", "--format", "{{json .State.Health}}", name])}`);
    }

    async function waitFor<T>(what: string, check: () => T | undefined | false, timeoutMs = 20000): Promise<{ value: T; ms: number }> {
        const started = Date.now();
        while (Date.now() - started < timeoutMs) {
            let value: T | undefined | false;
            try {
                value = check();
            } catch {
                value = undefined;
            }
            if (value !== undefined && value !== false) return { value, ms: Date.now() - started };
            await sleep(100);
        }
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ${edgeState()}`);
    }

    /** Starts the keep-alive load in the namespace; the returned function stops it and returns the summary. */
    function startLoad(workers = 3, pauseMs = 5): () => Promise<LoadSummary> {
        const child = ns.spawn(process.execPath, ["-e", LOAD_SCRIPT], { ...process.env, LOAD_URL: EDGE_URL, LOAD_WORKERS: String(workers), LOAD_PAUSE_MS: String(pauseMs) });
        let stdout = "";
        let stderr = "";
        child.stdout?.on("data", (c: Buffer) => (stdout += c.toString()));
        child.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
        const closed = new Promise<void>((resolve) => child.on("close", () => resolve()));
        return async () => {
            child.stdin?.end();
            await closed;
            try {
                return JSON.parse(stdout) as LoadSummary;
            } catch {
                throw new Error(`load client output unreadable: ${stdout} ${stderr}`);
            }
        };
    }

    /** Writes a file into a colour's admin asset folder, as another build of the admin would have it. */
    function addChunk(colour: Colour, file: string, body: string): void {
        docker(["exec", names.server(colour), "node", "-e", "require('fs').writeFileSync(process.argv[1], process.argv[2])", `${ADMIN_ASSETS.folder}/${file}`, body]);
    }

    /** host/edge-assets.sh as components/assetHandover.ts runs it, before a switch to `colour`. */
    async function handOverAssets(colour: Colour): Promise<string> {
        const result = await inNetns("sh", [path.join(repo, "host/edge-assets.sh")], dockerd.env({
            EDGE_ADMIN_SOCKET: adminSocket,
            EDGE_DIR: names.edgeDir,
            EDGE_DIR_IN_EDGE: names.edgeMountPoint,
            EDGE_CONTROL_DIR: names.edgeControlDir,
            TARGET_COLOUR: colour,
            SERVER_BLUE: names.server("blue"),
            SERVER_GREEN: names.server("green"),
            ASSET_FOLDER: ADMIN_ASSETS.folder,
            ASSET_URL_PREFIX: ADMIN_ASSETS.urlPrefix,
        }));
        assert.equal(result.code, 0, `edge-assets failed (exit ${result.code}):\n${result.stdout}${result.stderr}`);
        return result.stdout.trim().split("\n").pop() ?? "";
    }

    /** Starts an admin tab's chunk loop in the namespace; the returned function stops it. */
    function startTab(files: string[]): () => Promise<{ total: number; answers: Record<string, Record<string, number>> }> {
        const child = ns.spawn(process.execPath, ["-e", ASSET_TAB_SCRIPT], { ...process.env, TAB_URL: EDGE_URL, TAB_PATHS: files.map((f) => ADMIN_ASSETS.urlPrefix + f).join(" ") });
        let stdout = "";
        child.stdout?.on("data", (c: Buffer) => (stdout += c.toString()));
        const closed = new Promise<void>((resolve) => child.on("close", () => resolve()));
        return async () => {
            child.stdin?.end();
            await closed;
            return JSON.parse(stdout) as { total: number; answers: Record<string, Record<string, number>> };
        };
    }

    before(async function () {
        requireReal(this, "root (dockerd and network namespaces need it)", isRoot(), "run the host tests as root");
        requireCommands(this, ["dockerd", "nsenter", "ip", "iptables", "socat", "curl", "haproxy", "busybox", "tar"], "apt-get install -y docker.io util-linux iproute2 iptables socat curl haproxy busybox-static tar");
        const setupStarted = Date.now();
        fs.mkdirSync(work, { recursive: true });
        fs.rmSync(path.dirname(names.edgeDir), { recursive: true, force: true });

        // The fixture app image is built where npm can reach the registry (the shared build daemon,
        // host network), then copied into the namespaced daemon, which has no way out.
        const build = await acquireBuildDockerd();
        buildDockerdHeld = true;
        await buildLocalBaseImage(build, BASE_IMAGE);
        await dockerBuild(build, {
            context: path.join(repo, "tests/fixtures/medusa-like-app"),
            dockerfile: path.join(repo, "docker/medusa.Dockerfile"),
            tag: APP_IMAGE,
            buildArgs: { NODE_IMAGE: LOCAL_NODE_IMAGE, BASE_IMAGE },
        });
        const appImageId = build.docker(["image", "inspect", "--format", "{{.Id}}", APP_IMAGE]).trim();
        timings["image build (cached when warm)"] = `${((Date.now() - setupStarted) / 1000).toFixed(1)} s`;

        // The namespace has no way out; NetnsDockerd gives it an upstream DNS that answers NXDOMAIN at
        // once, as a reachable one would (see there for what happens without it).
        ns = new NetnsDockerd(NETNS, path.join(work, "dockerd"), { "storage-driver": "overlay2" });
        await ns.start();
        dockerd = ns.dockerd;

        // Copied again only when the build produced another image: a tag named after its id marks the copy.
        const copyMarker = `${APP_IMAGE}-${appImageId.replace(/^sha256:/, "").slice(0, 12)}`;
        const copyStarted = Date.now();
        const alreadyThere = docker(["image", "ls", "-q", copyMarker]) !== "";
        if (!alreadyThere) {
            execFileSync("sh", ["-c", `docker -H '${build.host}' save '${APP_IMAGE}' | docker -H '${dockerd.host}' load -q`], { stdio: "ignore", timeout: 300000 });
            docker(["tag", APP_IMAGE, copyMarker]);
            // Earlier copies are not needed any more.
            const stale = docker(["image", "ls", "--format", "{{.Repository}}:{{.Tag}}", APP_IMAGE.split(":")[0]])
                .split("\n")
                .filter((ref) => ref.startsWith(`${APP_IMAGE}-`) && ref !== copyMarker);
            if (stale.length > 0) docker(["rmi", ...stale]);
            docker(["image", "prune", "-f"]);
        }
        timings["app image copy into the namespaced daemon"] = `${((Date.now() - copyStarted) / 1000).toFixed(1)} s${alreadyThere ? " (already there)" : ""}`;
        await releaseBuildDockerd();
        buildDockerdHeld = false;
        ensureLocalHaproxyImage(dockerd);
        // The data-root (images) is kept between runs; the network is created afresh.
        if (docker(["network", "ls", "-q", "--filter", `name=^${names.network}$`]) !== "") docker(["network", "rm", names.network]);
        docker(["network", "create", names.network]);
        timings["setup total"] = `${((Date.now() - setupStarted) / 1000).toFixed(1)} s`;
    });

    after(async function () {
        if (stopLoad) await stopLoad().catch(() => undefined);
        if (buildDockerdHeld) await releaseBuildDockerd();
        if (ns) await ns.stop();
        for (const [what, value] of Object.entries(timings)) console.log(`      ${what}: ${value}`);
    });

    let edgeUser = "";

    it("installs the edge config rendered as components/edge.ts renders it, validated by the edge image as the edge user", function () {
        const config = renderEdgeConfig(names);
        const install = execFileSync("sh", [path.join(repo, "host/install-edge-config.sh")], {
            env: dockerd.env(installEnv()),
            input: config,
            encoding: "utf8",
        });
        assert.match(install, /edge config: installed/);
        edgeUser = parseEdgeUser(install);
        assert.equal(edgeUser, EDGE_USER);
        assert.equal(fs.readFileSync(path.join(names.edgeDir, "haproxy.cfg"), "utf8"), config);
        assert.match(config, /nameserver dns1 127\.0\.0\.11:53/);
    });

    it("starts the edge before any colour exists and answers its own health path", async function () {
        const started = Date.now();
        // As components/edge.ts creates it: its user, the config folder read-only, only edge-run/ writable.
        docker([
            "run", "-d", "--name", names.edge, "--user", edgeUser, "--restart", "unless-stopped",
            "--stop-signal", EDGE_STOP_SIGNAL,
            "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "-p", `127.0.0.1:${EDGE_PORT}:${EDGE_CONTAINER_PORT}`,
            "-v", `${names.edgeDir}:${names.edgeMountPoint}:ro`,
            "-v", `${names.edgeRunDir}:${names.edgeRunMountPoint}`,
            "--network", names.network,
            "medusa-deploy/haproxy:local",
        ]);
        await waitFor("the edge's admin socket", () => fs.existsSync(adminSocket) && edgeServers().blue !== undefined);
        for (const socket of [names.adminSocket, names.operatorSocket]) {
            assert.equal(`${fs.statSync(socket).uid}:${fs.statSync(socket).gid}`, edgeUser, `${socket} is created by the edge's own user`);
        }
        const health = await probe(1, EDGE_SELF_HEALTH_PATH);
        assert.equal(health[0].status, 200, JSON.stringify(health));
        timings["edge container up"] = `${Date.now() - started} ms`;
        // Neither name resolves yet: both servers wait in resolution maintenance (admin bit 0x20).
        const servers = edgeServers();
        for (const colour of ["blue", "green"]) assert.ok((servers[colour].adminState & 0x20) !== 0, JSON.stringify(servers));
    });

    it("first deploy: blue healthy, switch to blue, requests through the edge come from blue", async function () {
        runColour("blue", "r1");
        timings["blue: docker healthy after"] = `${await waitHealthy(names.server("blue"))} ms`;
        ips.blue = containerIp(names.server("blue"));
        // The switch runs right after the health gate, as the deploy does.
        await switchOk("blue");
        await assertServedBy("blue", "r1");
        assert.equal(edgeServers().blue.address, ips.blue);
    });

    it("green healthy, switch to green and back to blue under keep-alive load with zero failures", async function () {
        stopLoad = startLoad();
        runColour("green", "r1");
        const healthyMs = await waitHealthy(names.server("green"));
        timings["green: docker healthy after"] = `${healthyMs} ms`;
        const atGate = edgeServers().green;
        timings["green at the health gate, edge sees"] = `op_state ${atGate.opState}, admin_state ${atGate.adminState}`;
        ips.greenR1 = containerIp(names.server("green"));
        await switchOk("green");
        await assertServedBy("green", "r1");
        await switchOk("blue");
        await assertServedBy("blue", "r1");
    });

    it("replaces idle green (its old IP taken by another container): the edge follows the name to the new container", async function () {
        docker(["rm", "-f", names.server("green")]);
        // Something else takes the freed address at once (Docker hands out the lowest free one), so
        // an edge that kept the old address would now reach the wrong container.
        docker(["run", "-d", "--name", SQUATTER, "--network", names.network, "-e", "MEDUSA_WORKER_MODE=squatter", "-e", `PORT=${MEDUSA_PORT}`, APP_IMAGE, "node", "index.js"]);
        ips.squatter = containerIp(SQUATTER);
        const replaced = Date.now();
        runColour("green", "r2");
        ips.greenR2 = containerIp(names.server("green"));
        console.log(`      green r1 ${ips.greenR1}, squatter ${ips.squatter}, green r2 ${ips.greenR2}`);
        assert.notEqual(ips.greenR2, ips.greenR1, "the replacement green got the old address; the new-IP path was not exercised");
        timings["green r2: docker healthy after"] = `${await waitHealthy(names.server("green"))} ms`;
        const followed = await waitFor("the edge to resolve green to its new address", () => edgeServers().green.address === ips.greenR2 || undefined);
        timings["green r2: edge had its new address"] = `${followed.ms} ms after docker healthy (${Date.now() - replaced} ms after docker run)`;
        await switchOk("green");
        await assertServedBy("green", "r2", 20);
        await switchOk("blue");
        await assertServedBy("blue", "r1");
        await switchOk("green");
        await assertServedBy("green", "r2", 20);
        const summary = await stopLoad!();
        stopLoad = undefined;
        console.log(`      load through 5 switches and a replacement: ${summary.total} requests, ${summary.failed} failed, served ${JSON.stringify(summary.served)}`);
        assert.equal(summary.failed, 0, `requests failed under load: ${summary.failures.join("; ")}`);
        assert.ok(!Object.keys(summary.served).some((k) => k.includes("squatter")), `the squatter at green's old address got traffic: ${JSON.stringify(summary.served)}`);
        assert.ok(summary.total > 100, `load too light to mean anything: ${summary.total} requests`);
    });

    it("an admin tab opened on green r2 keeps loading its chunks from green after a switch to blue r1, and blue's own from blue; the map survives a switch back", async function () {
        const [blueChunk, greenChunk] = [chunkOf("blue", "r1"), chunkOf("green", "r2")];
        addChunk("blue", blueChunk.file, blueChunk.body);
        addChunk("green", greenChunk.file, greenChunk.body);
        // Names that are not a plain file word never reach the edge's map.
        addChunk("green", ".hidden.js", "hidden");
        addChunk("green", "two words.js", "spaced");
        const stopTab = startTab([greenChunk.file]);
        const stopTraffic = startLoad(2, 10);
        await sleep(300);
        assert.equal(await handOverAssets("blue"), "assets: 1 kept on green");
        assert.equal(fs.readFileSync(path.join(names.edgeDir, ASSETS_MAP_NAME), "utf8"), `${ADMIN_ASSETS.urlPrefix}${greenChunk.file} green\n`);
        await switchOk("blue");
        await assertServedBy("blue", "r1");
        await sleep(500);
        const tab = await stopTab();
        const traffic = await stopTraffic();
        console.log(`      green r2's tab across the switch to blue: ${JSON.stringify(tab)}; other traffic ${traffic.total} requests, ${traffic.failed} failed`);
        assert.deepEqual(tab.answers, { [ADMIN_ASSETS.urlPrefix + greenChunk.file]: { [greenChunk.body]: tab.total } }, "every chunk request of the old tab answered by green");
        assert.ok(tab.total > 20, `too few chunk requests to mean anything: ${tab.total}`);
        assert.equal(traffic.failed, 0, traffic.failures.join("; "));

        // After the switch: blue's own chunk from blue, the built one (both have it) from the live colour.
        const built = docker(["exec", names.server("blue"), "ls", ADMIN_ASSETS.folder]).split("\n").find((f) => f.startsWith("index-"));
        assert.ok(built, "the fixture build wrote no admin chunk");
        const afterSwitch = startTab([blueChunk.file, built]);
        await sleep(500);
        const answers = (await afterSwitch()).answers;
        assert.deepEqual(Object.keys(answers[ADMIN_ASSETS.urlPrefix + blueChunk.file]), [blueChunk.body]);
        assert.equal(Object.keys(answers[ADMIN_ASSETS.urlPrefix + built]).length, 1, `the shared chunk: ${JSON.stringify(answers)}`);

        // Back to green, as the deploy would: now blue r1's chunk is the one only the other colour has.
        assert.equal(await handOverAssets("green"), "assets: 1 kept on blue");
        await switchOk("green");
        await assertServedBy("green", "r2", 20);
        const back = (await (async () => {
            const stop = startTab([blueChunk.file, greenChunk.file]);
            await sleep(500);
            return stop();
        })()).answers;
        assert.deepEqual(Object.keys(back[ADMIN_ASSETS.urlPrefix + blueChunk.file]), [blueChunk.body]);
        assert.deepEqual(Object.keys(back[ADMIN_ASSETS.urlPrefix + greenChunk.file]), [greenChunk.body]);
    });

    it("a config change installs and reloads the running edge (SIGHUP to the master) keeping the live colour", async function () {
        // Not a deploy step (deploys never reload): measured under the same load and reported, not gated.
        const stopReloadLoad = startLoad();
        stopLoad = stopReloadLoad;
        await sleep(500);
        const workerBefore = /^Pid: (\d+)/m.exec(admin("show info"))?.[1];
        const config = renderEdgeConfig(names) + "\n# reload check\n";
        const install = execFileSync("sh", [path.join(repo, "host/install-edge-config.sh")], {
            env: dockerd.env(installEnv()),
            input: config,
            encoding: "utf8",
        });
        assert.match(install, /edge config: installed and reloaded/);
        assert.equal(parseEdgeUser(install), edgeUser);
        const reloaded = await waitFor("a new edge worker", () => {
            const pid = /^Pid: (\d+)/m.exec(admin("show info"))?.[1];
            return pid !== undefined && pid !== workerBefore ? pid : undefined;
        });
        timings["edge reload (new worker answering) after"] = `${reloaded.ms} ms`;
        await waitFor("green up after the reload", () => edgeServers().green?.opState === 2 || undefined);
        await assertServedBy("green", "r2");
        await sleep(500);
        const summary = await stopReloadLoad();
        stopLoad = undefined;
        timings["keep-alive load across one edge reload"] = `${summary.total} requests, ${summary.failed} failed${summary.failed ? ` (${summary.failures.slice(0, 3).join("; ")})` : ""}`;
        assert.ok(summary.total > 0 && Object.keys(summary.served).every((k) => k === marker("green", "r2")), `served during the reload: ${JSON.stringify(summary.served)}`);
    });

    it("restarting the edge container brings it back on the live colour without a switch", async function () {
        const restarted = Date.now();
        docker(["restart", "-t", "10", names.edge]);
        const back = await waitFor("the edge to serve again", () => {
            const out = execFileSync(ns.prefix()[0], [...ns.prefix().slice(1), "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2", `${EDGE_URL}/store/products`], { encoding: "utf8" });
            return out === "200" || undefined;
        }, 30000);
        timings["edge restart until the live colour answers"] = `${Date.now() - restarted} ms (${back.ms} ms after docker restart returned)`;
        await assertServedBy("green", "r2", 20);
        const servers = edgeServers();
        assert.equal(servers.green.address, ips.greenR2);
        assert.ok((servers.blue.adminState & 0x08) !== 0, `blue should come back drained: ${JSON.stringify(servers)}`);
        // The asset map comes back from its file: blue r1's chunk still reaches blue.
        const chunk = chunkOf("blue", "r1");
        const stop = startTab([chunk.file]);
        await sleep(300);
        assert.deepEqual(Object.keys((await stop()).answers[ADMIN_ASSETS.urlPrefix + chunk.file]), [chunk.body]);
    });

    it("refuses to switch to a colour whose container is stopped; traffic stays on the live colour", async function () {
        const stateBefore = fs.readFileSync(stateFile, "utf8");
        const stopped = Date.now();
        docker(["stop", "-t", "10", names.server("blue")]);
        const seen = await waitFor("the edge to see blue down", () => edgeServers().blue.opState !== 2 || undefined);
        timings["blue stopped: edge saw it down after"] = `${Date.now() - stopped} ms (${seen.ms} ms after docker stop returned)`;
        const result = await switchTo("blue");
        assert.equal(result.code, 3, `expected a refusal (exit 3):\n${result.stdout}${result.stderr}`);
        assert.match(result.stderr, /refusing to switch to blue/);
        assert.match(result.stderr, /traffic stays on green/);
        await assertServedBy("green", "r2");
        assert.equal(fs.readFileSync(stateFile, "utf8"), stateBefore, "the refused switch changed the state file");
    });

    afterEach(async function () {
        if (this.currentTest?.state === "failed" && dockerd) {
            console.log(`      ${edgeState()}`);
            try {
                console.log(docker(["logs", "--tail", "30", names.edge]));
            } catch {
                // no edge container
            }
        }
    });
});
