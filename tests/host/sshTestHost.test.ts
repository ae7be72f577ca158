// The ssh test host (tests/support/sshTestHost.ts), for real: OpenSSH's client reaches the
// namespaced dockerd as `deploy` with only a key file and a pinned host key (no ~/.ssh, no agent)
// and refuses a host whose key differs before anything runs; Docker's own ssh transport works; a
// container port published on the namespace's loopback is reachable from this machine, and a
// registry on this machine's loopback is reachable from the namespaced dockerd as localhost:<port>;
// the socat relays carry keep-alive and many parallel connections both ways.
//
// OpenSSH finds ~/.ssh through the passwd entry, not $HOME, so an empty HOME alone proves nothing
// about which files ssh reads; the clients here name every file themselves (and the suite shows
// that a config under $HOME/.ssh is ignored).
import { strict as assert } from "node:assert";
import { ChildProcess, execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { HTTPD_APPLETS, importBusyboxImage, STATIC_BUSYBOX } from "../support/busyboxImage";
import { LocalRegistry } from "../support/localRegistry";
import { PrivateDockerd, sleep, unmountUnder } from "../support/privateDockerd";
import { isRoot, requireCommands, requireReal } from "../support/realComponent";
import { DEPLOY_DOCKER_GROUP, SshClientFiles, SshTestHost } from "../support/sshTestHost";

const repo = path.resolve(__dirname, "../..");
// Short: the hosts' dockerds keep containerd's sockets under here (unix socket paths are limited).
const work = path.join(repo, ".test-work/ssh-host-it", String(process.pid));
/** Where the busybox httpd's port is published, on the namespace's loopback (nothing else listens there). */
const HTTPD_NS_PORT = 18080;
/** The keep-alive probe server's port inside the namespace. */
const PROBE_NS_PORT = 18081;

interface RunResult {
    code: number | null;
    stdout: string;
    stderr: string;
}

/**
 * Runs a client in a session of its own (no controlling terminal, so ssh can never prompt) with
 * exactly `env`; never throws on exit codes.
 */
function run(command: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 60000): Promise<RunResult> {
    return new Promise((resolve, reject) => {
        const child = spawn(command, args, { env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
        child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
        const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
        child.on("error", (error) => {
            clearTimeout(timer);
            reject(error);
        });
        child.on("close", (code) => {
            clearTimeout(timer);
            resolve({ code, stdout, stderr });
        });
    });
}

// Answers every request with the serial number of the connection it came on; prints "ready".
const PROBE_SERVER_SCRIPT = `
const http = require("node:http");
let connections = 0;
const server = http.createServer((req, res) => {
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify({ conn: req.socket.probeId }));
});
server.on("connection", (socket) => (socket.probeId = ++connections));
server.keepAliveTimeout = 60000;
server.listen(Number(process.env.PROBE_PORT), "127.0.0.1", () => console.log("ready " + server.address().port));
`;

// Keep-alive requests in parallel over a bounded pool, the same pool again after an idle pause,
// then fresh connections all at once; prints one JSON summary.
const PROBE_CLIENT_SCRIPT = `
const http = require("node:http");
const url = process.env.PROBE_URL, sockets = Number(process.env.PROBE_SOCKETS);
const requests = Number(process.env.PROBE_REQUESTS), fresh = Number(process.env.PROBE_FRESH);
const get = (agent) => new Promise((resolve) => {
  const req = http.get(url, { agent, timeout: 15000 }, (res) => {
    let body = "";
    res.on("data", (c) => (body += c));
    res.on("end", () => resolve(res.statusCode === 200 ? { conn: JSON.parse(body).conn } : { error: "HTTP " + res.statusCode }));
  });
  req.on("timeout", () => req.destroy(new Error("timeout")));
  req.on("error", (e) => resolve({ error: e.code || e.message }));
});
const many = (n, agent) => Promise.all(Array.from({ length: n }, () => get(agent)));
const summary = (rs) => ({ total: rs.length, failures: rs.filter((r) => r.error).map((r) => r.error).slice(0, 10),
  connections: [...new Set(rs.filter((r) => !r.error).map((r) => r.conn))] });
(async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: sockets });
  const burst = await many(requests, agent);
  await new Promise((s) => setTimeout(s, Number(process.env.PROBE_IDLE_MS)));
  const afterIdle = await many(sockets, agent);
  agent.destroy();
  const separate = await many(fresh, false);
  process.stdout.write(JSON.stringify({ burst: summary(burst), afterIdle: summary(afterIdle), fresh: summary(separate) }));
})();
`;

interface ProbeSummary {
    total: number;
    failures: string[];
    connections: number[];
}

const PROBE_LOAD = { sockets: 16, requests: 400, fresh: 100, idleMs: 2000 };

function probeClientEnv(url: string): NodeJS.ProcessEnv {
    return {
        ...process.env,
        PROBE_URL: url,
        PROBE_SOCKETS: String(PROBE_LOAD.sockets),
        PROBE_REQUESTS: String(PROBE_LOAD.requests),
        PROBE_FRESH: String(PROBE_LOAD.fresh),
        PROBE_IDLE_MS: String(PROBE_LOAD.idleMs),
    };
}

function assertProbe(result: RunResult, where: string): void {
    assert.equal(result.code, 0, `${where}: probe client failed: ${result.stderr}`);
    const { burst, afterIdle, fresh } = JSON.parse(result.stdout) as Record<"burst" | "afterIdle" | "fresh", ProbeSummary>;
    for (const [phase, s] of Object.entries({ burst, afterIdle, fresh })) {
        assert.deepEqual(s.failures, [], `${where}: ${phase} requests failed`);
    }
    // 400 requests over at most 16 connections: the relay kept each one open for many requests.
    assert.ok(burst.connections.length <= PROBE_LOAD.sockets && burst.connections.length > 1, `${where}: burst used ${burst.connections.length} connections`);
    // After 2 s idle the same connections still carry requests (no inactivity cut in the relay).
    assert.ok(afterIdle.connections.every((c) => burst.connections.includes(c)), `${where}: after idle ${JSON.stringify(afterIdle.connections)} vs ${JSON.stringify(burst.connections)}`);
    assert.equal(fresh.connections.length, PROBE_LOAD.fresh, `${where}: fresh connections`);
}

/** Waits for a child's "ready <port>" line. */
function waitReady(child: ChildProcess, what: string, timeoutMs = 10000): Promise<void> {
    return new Promise((resolve, reject) => {
        let output = "";
        const timer = setTimeout(() => reject(new Error(`${what} did not start: ${output}`)), timeoutMs);
        const collect = (c: Buffer) => {
            output += c.toString();
            if (output.includes("ready")) {
                clearTimeout(timer);
                resolve();
            }
        };
        child.stdout?.on("data", collect);
        child.stderr?.on("data", collect);
        child.on("exit", (code) => {
            clearTimeout(timer);
            reject(new Error(`${what} exited (${code}): ${output}`));
        });
    });
}

function httpGet(url: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
        const req = http.get(url, { agent: false, timeout: 5000 }, (res) => {
            let body = "";
            res.on("data", (c: Buffer) => (body += c.toString()));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on("timeout", () => req.destroy(new Error("timeout")));
        req.on("error", reject);
    });
}

describe("ssh test host: a namespace with its own dockerd and a real sshd", function () {
    this.timeout(5 * 60 * 1000);
    let host: SshTestHost | undefined;
    let rootDockerd: PrivateDockerd | undefined;
    let registry: LocalRegistry | undefined;
    let files: SshClientFiles;
    /** A HOME with nothing in it; every client here runs with it and without SSH_AUTH_SOCK. */
    const emptyHome = path.join(work, "empty-home");
    const marker = `/tmp/ssh-test-host-marker-${process.pid}`;
    const children: ChildProcess[] = [];
    const servers: http.Server[] = [];
    const timings: Record<string, string> = {};

    const sshHost = (): SshTestHost => {
        if (!host) throw new Error("the ssh test host did not start");
        return host;
    };
    /** The only environment the clients get: no agent, no ~/.ssh, the docker CLI's config folder empty. */
    const clientEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({ PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: emptyHome, ...extra });
    const briefOptions = (knownHostsFile: string): string[] => [
        "-i", files.identityFile,
        "-o", "IdentitiesOnly=yes",
        "-o", `UserKnownHostsFile=${knownHostsFile}`,
        "-o", "StrictHostKeyChecking=yes",
        "-o", "BatchMode=yes",
    ];
    /** PATH with an `ssh` that reads only the host's client config (Docker's transport runs plain `ssh`). */
    let wrapperPath = "";
    const sshArgsLog = path.join(work, "ssh-wrapper-args.log");

    before(async function () {
        requireReal(this, "root (network namespaces, dockerd, useradd and sshd need it)", isRoot(), "run the host tests as root");
        requireCommands(this, ["dockerd", "docker", "nsenter", "ip", "sshd", "ssh", "ssh-keygen", "socat", "useradd", "setpriv", "namei", "tar", "docker-registry"],
            "apt-get install -y docker.io openssh-server openssh-client socat util-linux iproute2 passwd tar docker-registry");
        requireReal(this, "a static busybox", STATIC_BUSYBOX !== undefined, "apt-get install -y busybox-static");
        fs.rmSync(work, { recursive: true, force: true });
        fs.mkdirSync(emptyHome, { recursive: true });
        fs.rmSync(marker, { force: true });

        host = new SshTestHost({ workDir: path.join(work, "h") });
        await host.start();
        timings["ssh host start"] = `${host.timings.startMs} ms`;
        files = host.writeClientFiles(path.join(work, "client"));

        const realSsh = execFileSync("sh", ["-c", "command -v ssh"], { encoding: "utf8" }).trim();
        const wrapperDir = path.join(work, "ssh-wrapper");
        fs.mkdirSync(wrapperDir, { recursive: true });
        fs.writeFileSync(path.join(wrapperDir, "ssh"), `#!/bin/sh\necho "$*" >> '${sshArgsLog}'\nexec '${realSsh}' -F '${files.configFile}' "$@"\n`, { mode: 0o755 });
        wrapperPath = `${wrapperDir}:${process.env.PATH ?? "/usr/bin:/bin"}`;

        // A daemon in this machine's namespace: the registry test pushes with it, and its socket
        // (group docker, the default) shows that `deploy` reaches no daemon but the host's own.
        rootDockerd = new PrivateDockerd({ root: path.join(work, "root-dockerd") });
        await rootDockerd.start(60000);
    });

    after(async function () {
        for (const child of children) child.kill("SIGTERM");
        for (const server of servers) server.close();
        await registry?.stop();
        if (rootDockerd) {
            await rootDockerd.shutdown();
        }
        if (host) {
            await host.stop();
            timings["ssh host stop"] = `${host.timings.stopMs} ms`;
        }
        fs.rmSync(marker, { force: true });
        unmountUnder(work);
        fs.rmSync(work, { recursive: true, force: true });
        for (const [what, value] of Object.entries(timings)) console.log(`      ${what}: ${value}`);
    });

    it("runs docker on the namespaced daemon as deploy with only a key file and a pinned host key", async function () {
        const h = sshHost();
        const started = Date.now();
        const result = await run("ssh", [...briefOptions(files.knownHostsFile), `${h.user}@${h.address}`,
            `touch ${marker} && docker version --format '{{.Server.Version}}'`], clientEnv());
        timings["ssh + docker version"] = `${Date.now() - started} ms`;
        assert.equal(result.code, 0, `ssh failed: ${result.stderr}\n${h.sshdLog()}`);
        assert.equal(result.stdout.trim(), h.docker(["version", "--format", "{{.Server.Version}}"]).trim());
        assert.ok(fs.existsSync(marker), "the remote command ran");
        assert.deepEqual(fs.readdirSync(emptyHome), [], "nothing was written to HOME");
        assert.match(h.sshdLog(), /Accepted publickey for deploy/);
    });

    it("gives sessions DOCKER_HOST from sshd and nothing of the client's environment; deploy has no sudo and no other daemon", async function () {
        const h = sshHost();
        const otherSocket = rootDockerd!.socket;
        const script = [
            'echo "docker_host=$DOCKER_HOST"',
            'echo "lc_probe=${LC_PROBE-unset}"',
            'echo "groups=$(id -nG)"',
            "if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then echo sudo=yes; else echo sudo=no; fi",
            `if DOCKER_HOST=unix://${otherSocket} docker version >/dev/null 2>&1; then echo other=yes; else echo other=no; fi`,
        ].join("; ");
        const result = await run("ssh", [...briefOptions(files.knownHostsFile), "-o", "SendEnv=LC_PROBE", `${h.user}@${h.address}`, script],
            clientEnv({ LC_PROBE: "from-the-client" }));
        assert.equal(result.code, 0, `ssh failed: ${result.stderr}`);
        const lines = Object.fromEntries(result.stdout.trim().split("\n").map((line) => line.split(/=(.*)/s).slice(0, 2) as [string, string]));
        assert.equal(lines.docker_host, h.dockerd.dockerd.host);
        assert.equal(lines.lc_probe, "unset");
        assert.deepEqual(lines.groups.split(" ").sort(), [DEPLOY_DOCKER_GROUP, h.user].sort());
        assert.equal(lines.sudo, "no");
        assert.equal(lines.other, "no", `deploy reached ${otherSocket}`);
        // The socket of the host's own daemon is in deploy's group; the other daemon's is not.
        const socketGroup = (socket: string) => execFileSync("stat", ["-c", "%G %a", socket], { encoding: "utf8" }).trim();
        assert.equal(socketGroup(h.dockerd.dockerd.socket), `${DEPLOY_DOCKER_GROUP} 660`);
        assert.notEqual(socketGroup(otherSocket).split(" ")[0], DEPLOY_DOCKER_GROUP);
    });

    it("refuses a host whose key differs from the pinned one, before running anything", async function () {
        const h = sshHost();
        const otherKey = path.join(work, "other_host_key");
        execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "", "-f", otherKey]);
        const [type, key] = fs.readFileSync(`${otherKey}.pub`, "utf8").trim().split(/\s+/);
        const wrongKnownHosts = path.join(work, "wrong_known_hosts");
        fs.writeFileSync(wrongKnownHosts, `${h.address} ${type} ${key}\n`);
        const wrongMarker = `${marker}-wrong-key`;
        fs.rmSync(wrongMarker, { force: true });

        const result = await run("ssh", [...briefOptions(wrongKnownHosts), `${h.user}@${h.address}`, `touch ${wrongMarker}`], clientEnv());
        assert.equal(result.code, 255, `ssh exited ${result.code}: ${result.stdout}${result.stderr}`);
        assert.match(result.stderr, /REMOTE HOST IDENTIFICATION HAS CHANGED/);
        assert.match(result.stderr, /Host key verification failed/);
        assert.equal(fs.existsSync(wrongMarker), false, "the remote command must not run");
        // The same with no pinned key at all: StrictHostKeyChecking=yes does not learn one.
        const emptyKnownHosts = path.join(work, "empty_known_hosts");
        fs.writeFileSync(emptyKnownHosts, "");
        const unknown = await run("ssh", [...briefOptions(emptyKnownHosts), `${h.user}@${h.address}`, `touch ${wrongMarker}`], clientEnv());
        assert.equal(unknown.code, 255);
        assert.match(unknown.stderr, /Host key verification failed/);
        assert.equal(fs.readFileSync(emptyKnownHosts, "utf8"), "");
        assert.equal(fs.existsSync(wrongMarker), false, "the remote command must not run");
    });

    it("Docker's ssh transport ignores a config under $HOME/.ssh (OpenSSH reads the passwd home)", async function () {
        const h = sshHost();
        const home = path.join(work, "home-with-ssh-config");
        fs.mkdirSync(path.join(home, ".ssh"), { recursive: true });
        fs.copyFileSync(files.configFile, path.join(home, ".ssh/config"));
        const result = await run("docker", ["version", "--format", "{{.Server.Version}}"],
            { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home, DOCKER_HOST: `ssh://${h.user}@${h.address}` });
        assert.notEqual(result.code, 0, `a config under $HOME/.ssh was used after all: ${result.stdout}`);
        assert.match(result.stderr, /Host key verification failed|Permission denied/);
    });

    it("Docker's ssh transport reaches the namespaced daemon with an ssh on PATH that adds -F <config>", async function () {
        const h = sshHost();
        fs.rmSync(sshArgsLog, { force: true });
        const env = clientEnv({ PATH: wrapperPath, DOCKER_HOST: `ssh://${h.user}@${h.address}` });
        const started = Date.now();
        const version = await run("docker", ["version", "--format", "{{.Server.Version}}"], env);
        timings["docker version over ssh://"] = `${Date.now() - started} ms`;
        assert.equal(version.code, 0, `docker over ssh failed: ${version.stderr}\n${h.sshdLog()}`);
        assert.equal(version.stdout.trim(), h.docker(["version", "--format", "{{.Server.Version}}"]).trim());
        const info = await run("docker", ["info", "--format", "{{.DockerRootDir}}"], env);
        assert.equal(info.stdout.trim(), path.join(h.dockerd.dockerd.root, "data"));
        // What the docker CLI asked ssh to run on the far side.
        const asked = fs.readFileSync(sshArgsLog, "utf8");
        console.log(`      docker ran: ssh -F <config> ${asked.split("\n")[0]}`);
        assert.match(asked, /docker system dial-stdio/);
    });

    it("a container port published on the namespace's loopback is reachable here through exposeOnRootLoopback", async function () {
        const h = sshHost();
        importBusyboxImage(h.dockerd.dockerd, "ssh-host/httpd:probe", work, {
            applets: HTTPD_APPLETS,
            files: { "/www/index.html": "hello from the namespace\n" },
        });
        h.docker(["network", "create", "ssh-host-probe"]);
        // Run over the ssh transport, as a deploy would.
        const env = clientEnv({ PATH: wrapperPath, DOCKER_HOST: `ssh://${h.user}@${h.address}` });
        const started = await run("docker", ["run", "-d", "--name", "ssh-host-httpd", "--network", "ssh-host-probe",
            "-p", `127.0.0.1:${HTTPD_NS_PORT}:8080`, "ssh-host/httpd:probe", "httpd", "-f", "-p", "8080", "-h", "/www"], env);
        assert.equal(started.code, 0, `docker run over ssh failed: ${started.stderr}`);

        const rootPort = await h.exposeOnRootLoopback(HTTPD_NS_PORT);
        const url = `http://127.0.0.1:${rootPort}/index.html`;
        let last: { status: number; body: string } | Error = new Error("never tried");
        for (const deadline = Date.now() + 15000; Date.now() < deadline; await sleep(100)) {
            last = await httpGet(url).catch((error: Error) => error);
            if (!(last instanceof Error) && last.status === 200) break;
        }
        assert.ok(!(last instanceof Error), `GET ${url}: ${String(last)}`);
        assert.equal(last.status, 200);
        assert.equal(last.body, "hello from the namespace\n");
        const parallel = await Promise.all(Array.from({ length: 50 }, () => httpGet(url).catch((error: Error) => error)));
        assert.deepEqual(parallel.filter((r) => r instanceof Error || r.status !== 200).map(String), []);
    });

    it("exposeOnRootLoopback carries keep-alive and many parallel connections", async function () {
        const h = sshHost();
        const server = h.dockerd.spawn(process.execPath, ["-e", PROBE_SERVER_SCRIPT], { ...process.env, PROBE_PORT: String(PROBE_NS_PORT) });
        children.push(server);
        await waitReady(server, "the probe server in the namespace");
        const rootPort = await h.exposeOnRootLoopback(PROBE_NS_PORT);
        const started = Date.now();
        const result = await run(process.execPath, ["-e", PROBE_CLIENT_SCRIPT], probeClientEnv(`http://127.0.0.1:${rootPort}/`));
        timings["exposeOnRootLoopback probe (400 keep-alive + 16 + 100 fresh)"] = `${Date.now() - started} ms`;
        assertProbe(result, "namespace → this machine");
    });

    it("reachRootLoopback carries keep-alive and many parallel connections", async function () {
        const h = sshHost();
        const server = spawn(process.execPath, ["-e", PROBE_SERVER_SCRIPT], { env: { ...process.env, PROBE_PORT: "0" }, stdio: ["ignore", "pipe", "pipe"] });
        children.push(server);
        const port = await new Promise<number>((resolve, reject) => {
            server.stdout.on("data", (c: Buffer) => {
                const match = /ready (\d+)/.exec(c.toString());
                if (match) resolve(Number(match[1]));
            });
            server.on("exit", (code) => reject(new Error(`probe server exited ${code}`)));
        });
        await h.reachRootLoopback(port);
        const started = Date.now();
        const result = await h.dockerd.run(process.execPath, ["-e", PROBE_CLIENT_SCRIPT], probeClientEnv(`http://127.0.0.1:${port}/`));
        timings["reachRootLoopback probe (400 keep-alive + 16 + 100 fresh)"] = `${Date.now() - started} ms`;
        assertProbe({ code: result.code, stdout: result.stdout, stderr: result.stderr }, "this machine → namespace");
    });

    it("the namespaced dockerd pulls from a registry on this machine's loopback as localhost:<port> through reachRootLoopback", async function () {
        const h = sshHost();
        registry = new LocalRegistry({ root: path.join(work, "registry") });
        await registry.start();
        const port = Number(registry.address.split(":")[1]);
        const pushed = `${registry.address}/ssh-host/probe:${process.pid}`;
        importBusyboxImage(rootDockerd!, pushed, work, { applets: ["sh", "cat"], files: { "/release": "via the root loopback\n" } });
        const pushOutput = rootDockerd!.docker(["push", pushed]);
        const digest = /digest: (sha256:[0-9a-f]{64})/.exec(pushOutput)?.[1];
        assert.ok(digest, `push reported no digest: ${pushOutput}`);

        const reference = `localhost:${port}/ssh-host/probe:${process.pid}`;
        // Without the relay the namespace has no way to the registry.
        const before = await run("docker", ["pull", reference], h.dockerd.dockerd.env());
        assert.notEqual(before.code, 0);
        assert.match(before.stderr, /connection refused/);
        await h.reachRootLoopback(port);
        const started = Date.now();
        const pulled = h.docker(["pull", reference]);
        timings["pull through reachRootLoopback"] = `${Date.now() - started} ms`;
        assert.match(pulled, new RegExp(`Digest: ${digest}`));
        const repoDigests = JSON.parse(h.docker(["image", "inspect", "--format", "{{json .RepoDigests}}", reference])) as string[];
        assert.ok(repoDigests.includes(`localhost:${port}/ssh-host/probe@${digest}`), JSON.stringify(repoDigests));
        assert.equal(h.docker(["run", "--rm", "--network", "none", reference, "cat", "/release"]), "via the root loopback\n");
    });

    it("cleans up after a failed start: no namespace, veth, process or work folder is left", async function () {
        const broken = new SshTestHost({ workDir: path.join(work, "b"), sshdOptions: ["NoSuchSshdOption yes"] });
        await assert.rejects(broken.start(), /NoSuchSshdOption/);
        assert.equal(fs.existsSync(`/run/netns/${broken.netns}`), false, "namespace left");
        assert.equal(fs.existsSync(broken.workDir), false, "work folder left");
        const links = execFileSync("ip", ["-o", "link", "show"], { encoding: "utf8" });
        assert.equal(links.includes(`${broken.rootVeth}@`) || links.includes(`${broken.rootVeth}:`), false, "veth left");
        const stray = execFileSync("ps", ["-eo", "args"], { encoding: "utf8" }).split("\n").filter((line) => line.includes(broken.workDir));
        assert.deepEqual(stray, []);
    });
});

