// host/install-edge-config.sh against a real HAProxy (Debian's haproxy) running in master-worker mode
// on loopback, the way the official image runs it. The config comes from lib/haproxyConfig.ts plus a
// response header naming the config version, so the test sees which config the running edge serves.
// The script's check is `haproxy -c -f`, its reload a SIGUSR2 to the master (what `docker kill -s HUP`
// does to the container's master), and "is the edge running" is the master's pidfile. The folders are
// laid out as on a docker host (the script's header): host/edge (config, read-only to the edge),
// host/edge-control (the lock) and host/edge-run (the edge's sockets, given to the edge user). Its
// refusals of planted links and unsafe folders are in tests/host/edgeLinkRefusal.test.ts.
import { strict as assert } from "node:assert";
import { ChildProcess, execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import * as path from "node:path";
import { EdgeTimeouts, EDGE_FRONTEND_NAME, EDGE_SELF_HEALTH_PATH, renderHaproxyConfig } from "../../lib/haproxyConfig";
import { freePort } from "../support/haproxyEdge";
import { PrivateDockerd } from "../support/privateDockerd";
import { isRoot, requireCommands, requireReal } from "../support/realComponent";
import { runShellScript, ScriptRun } from "../support/runShellScript";

const SCRIPT = path.resolve(__dirname, "../../host/install-edge-config.sh");
const ROOT = path.resolve(__dirname, "../../.test-work/install-edge-config");
const HOST_STATE_DIR = path.join(ROOT, "host");
const EDGE_DIR = path.join(HOST_STATE_DIR, "edge");
const CONTROL_DIR = path.join(HOST_STATE_DIR, "edge-control");
const RUN_DIR = path.join(HOST_STATE_DIR, "edge-run");
/** The uid:gid the edge runs as (the official image's haproxy user). */
const EDGE_USER = "99:99";
const CONFIG = path.join(EDGE_DIR, "haproxy.cfg");
const BACKUP = `${CONFIG}.previous`;
const PID_FILE = path.join(ROOT, "haproxy.pid");
const MASTER_SOCKET = path.join(ROOT, "master.sock");
const LOG_FILE = path.join(ROOT, "haproxy.log");
const VERSION_HEADER = "x-edge-config-version";

const shellQuote = (word: string): string => `'${word.replace(/'/g, `'\\''`)}'`;
/** Stdout's lines; the last one always names the edge user on success. */
const lines = (run: ScriptRun): string[] => run.stdout.trimEnd().split("\n");

function runScript(config: string, extraEnv: Record<string, string> = {}): Promise<ScriptRun> {
    const env: NodeJS.ProcessEnv = {
        PATH: process.env.PATH,
        EDGE_DIR,
        EDGE_CONTROL_DIR: CONTROL_DIR,
        EDGE_USER,
        EDGE_CHECK_COMMAND: "haproxy -c -f",
        EDGE_RUNNING_COMMAND: `test -s ${shellQuote(PID_FILE)} && kill -0 "$(cat ${shellQuote(PID_FILE)})" && echo true`,
        EDGE_RELOAD_COMMAND: `kill -USR2 "$(cat ${shellQuote(PID_FILE)})"`,
        EDGE_LOCK_TIMEOUT: "10",
        ...extraEnv,
    };
    return runShellScript(SCRIPT, { env, input: config, timeoutMs: 30000 });
}

/** The renderer's config with a header on every response naming `version`. */
function edgeConfig(port: number, version: string, timeouts: Partial<EdgeTimeouts> = {}): string {
    const rendered = renderHaproxyConfig({
        bindAddress: "127.0.0.1",
        bindPort: port,
        // Nothing listens there: the edge answers its own health path, which is all this test reads.
        servers: { blue: { address: "127.0.0.1:9" }, green: { address: "127.0.0.1:10" } },
        adminSocketPath: path.join(RUN_DIR, "admin.sock"),
        operatorSocketPath: path.join(RUN_DIR, "operator.sock"),
        stateFilePath: path.join(EDGE_DIR, "server-state"),
        timeouts,
    });
    const frontendLine = `frontend ${EDGE_FRONTEND_NAME}\n`;
    assert.ok(rendered.includes(frontendLine), "rendered config has the edge frontend");
    // http-after-response also covers responses HAProxy generates itself (the health path).
    return rendered.replace(frontendLine, `${frontendLine}    http-after-response set-header X-Edge-Config-Version ${version}\n`);
}

function versionServed(port: number): Promise<string | undefined> {
    return new Promise((resolve, reject) => {
        const request = http.get({ host: "127.0.0.1", port, path: EDGE_SELF_HEALTH_PATH, agent: false }, (response) => {
            response.resume();
            response.on("end", () => {
                assert.equal(response.statusCode, 200);
                const value = response.headers[VERSION_HEADER];
                resolve(Array.isArray(value) ? value[0] : value);
            });
        });
        request.on("error", reject);
        request.setTimeout(3000, () => request.destroy(new Error("edge did not answer within 3 s")));
    });
}

async function waitForVersion(port: number, version: string, timeoutMs = 5000): Promise<number> {
    const started = Date.now();
    let last: string | undefined;
    while (Date.now() - started < timeoutMs) {
        last = await versionServed(port).catch(() => undefined);
        if (last === version) return Date.now() - started;
        await sleep(50);
    }
    throw new Error(`edge still serves config version ${last} after ${timeoutMs} ms, expected ${version}`);
}

interface ProcessTable {
    masterReloads: number;
    workerPids: number[];
}

/** `show proc` on the master CLI; retried while the master re-executes itself during a reload. */
async function showProc(): Promise<ProcessTable> {
    const deadline = Date.now() + 5000;
    for (;;) {
        try {
            return await showProcOnce();
        } catch (error) {
            if (Date.now() > deadline) throw error;
            await sleep(50);
        }
    }
}

/** The master's reload counter and its current workers. */
function showProcOnce(): Promise<ProcessTable> {
    return new Promise((resolve, reject) => {
        let answer = "";
        const socket = net.connect(MASTER_SOCKET, () => socket.end("show proc\n"));
        socket.setEncoding("utf8");
        socket.on("data", (chunk: string) => (answer += chunk));
        socket.on("error", reject);
        socket.on("end", () => {
            const rows = answer.split("\n").map((line) => line.trim().split(/\s+/));
            const master = rows.find((f) => f[1] === "master");
            if (master === undefined) return reject(new Error(`no master in show proc:\n${answer}`));
            const workerPids = rows.filter((f) => f[1] === "worker").map((f) => Number(f[0]));
            resolve({ masterReloads: Number(master[2]), workerPids });
        });
        socket.setTimeout(3000, () => socket.destroy(new Error("master CLI did not answer")));
    });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Temporary files left behind: mktemp dot names in the edge folder, anything but the lock in the control folder. */
const leftoverCandidates = (): string[] => [
    ...fs.readdirSync(EDGE_DIR).filter((name) => name.startsWith(".")),
    ...fs.readdirSync(CONTROL_DIR).filter((name) => name !== "edge.lock" && name !== "edge.lock.d"),
];
const modeOf = (file: string): number => fs.statSync(file).mode & 0o777;
const ownerOf = (file: string): string => `${fs.statSync(file).uid}:${fs.statSync(file).gid}`;

describe("host/install-edge-config.sh against a real HAProxy", function () {
    this.timeout(60000);
    let port = 0;
    let haproxy: ChildProcess | undefined;

    async function startHaproxy(): Promise<void> {
        const log = fs.openSync(LOG_FILE, "a");
        haproxy = spawn("haproxy", ["-W", "-f", CONFIG, "-p", PID_FILE, "-S", MASTER_SOCKET], { stdio: ["ignore", log, log] });
        fs.closeSync(log);
        const deadline = Date.now() + 10000;
        for (;;) {
            if (haproxy.exitCode !== null) throw new Error(`haproxy exited: ${fs.readFileSync(LOG_FILE, "utf8")}`);
            const served = await versionServed(port).catch(() => undefined);
            if (served !== undefined && fs.existsSync(PID_FILE)) return;
            if (Date.now() > deadline) throw new Error(`haproxy did not answer: ${fs.readFileSync(LOG_FILE, "utf8")}`);
            await sleep(50);
        }
    }

    before(async function () {
        requireCommands(this, ["haproxy"], "apt-get install -y haproxy");
        fs.rmSync(ROOT, { recursive: true, force: true });
        fs.mkdirSync(ROOT, { recursive: true });
        port = await freePort();
    });

    after(async function () {
        const child = haproxy;
        if (child && child.exitCode === null && child.signalCode === null) {
            const exited = new Promise((resolve) => child.once("exit", resolve));
            child.kill("SIGTERM");
            const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
            await exited;
            clearTimeout(timer);
        }
    });

    it("first install creates the three folders and haproxy.cfg, and names the edge user; the edge is not running, so nothing is reloaded", async function () {
        assert.equal(fs.existsSync(HOST_STATE_DIR), false);
        const v1 = edgeConfig(port, "v1");
        const result = await runScript(v1);
        assert.equal(result.status, 0, result.stderr);
        assert.deepEqual(lines(result), ["edge config: installed", `edge user: ${EDGE_USER}`]);
        assert.equal(modeOf(EDGE_DIR), 0o755);
        assert.equal(ownerOf(EDGE_DIR), "0:0", "the config folder belongs to the script's user");
        assert.equal(modeOf(CONTROL_DIR), 0o700);
        assert.equal(ownerOf(CONTROL_DIR), "0:0");
        assert.equal(modeOf(RUN_DIR), 0o700);
        assert.equal(ownerOf(RUN_DIR), EDGE_USER, "the socket folder belongs to the edge user");
        assert.deepEqual(fs.readdirSync(RUN_DIR), [], "nothing is written where the edge can write");
        assert.equal(fs.readFileSync(CONFIG, "utf8"), v1);
        assert.equal(modeOf(CONFIG), 0o644);
        assert.equal(fs.existsSync(BACKUP), false, "no backup when there was no previous file");
        assert.deepEqual(leftoverCandidates(), []);

        // The edge starts from what was installed.
        await startHaproxy();
        assert.equal(await versionServed(port), "v1");
    });

    it("the same config again is 'unchanged': same bytes and mtime, no backup, no reload", async function () {
        const before = fs.statSync(CONFIG);
        const procBefore = await showProc();
        const result = await runScript(edgeConfig(port, "v1"));
        assert.equal(result.status, 0, result.stderr);
        assert.deepEqual(lines(result), ["edge config: unchanged", `edge user: ${EDGE_USER}`]);
        const after = fs.statSync(CONFIG);
        assert.equal(after.mtimeMs, before.mtimeMs);
        assert.equal(after.ino, before.ino);
        assert.equal(fs.readFileSync(CONFIG, "utf8"), edgeConfig(port, "v1"));
        assert.equal(fs.existsSync(BACKUP), false);
        assert.deepEqual(leftoverCandidates(), []);
        await sleep(300); // a reload, had one been sent, would show by now
        assert.deepEqual(await showProc(), procBefore, "haproxy's master was not reloaded");
        assert.equal(await versionServed(port), "v1");
    });

    it("a changed valid config is installed, the previous one kept, and the running edge reloaded onto it", async function () {
        const v1 = fs.readFileSync(CONFIG, "utf8");
        const procBefore = await showProc();
        const v2 = edgeConfig(port, "v2", { client: "2m", httpKeepAlive: "30s" });
        const result = await runScript(v2);
        assert.equal(result.status, 0, result.stderr);
        assert.deepEqual(lines(result), ["edge config: installed and reloaded", `edge user: ${EDGE_USER}`]);
        assert.equal(fs.readFileSync(CONFIG, "utf8"), v2);
        assert.equal(fs.readFileSync(BACKUP, "utf8"), v1);
        assert.equal(modeOf(BACKUP), 0o644);
        assert.deepEqual(leftoverCandidates(), []);

        const ms = await waitForVersion(port, "v2");
        console.log(`      edge served the new config ${ms} ms after the script returned`);
        const procAfter = await showProc();
        assert.equal(procAfter.masterReloads, procBefore.masterReloads + 1);
        assert.ok(procAfter.workerPids.some((pid) => !procBefore.workerPids.includes(pid)), "a new worker serves");
    });

    it("an invalid config is refused with HAProxy's message; the file and the running edge stay as they were", async function () {
        const current = fs.readFileSync(CONFIG, "utf8");
        const statBefore = fs.statSync(CONFIG);
        const backupBefore = fs.readFileSync(BACKUP, "utf8");
        const procBefore = await showProc();
        const invalid = edgeConfig(port, "v3").replace("global\n", "global\n    garbage directive\n");
        const result = await runScript(invalid);
        assert.equal(result.status, 1);
        assert.equal(result.stdout, "");
        assert.match(result.stderr, /unknown keyword 'garbage' in 'global' section/);
        assert.match(result.stderr, /the running edge keeps its current config/);
        assert.equal(fs.readFileSync(CONFIG, "utf8"), current);
        assert.equal(fs.statSync(CONFIG).mtimeMs, statBefore.mtimeMs);
        assert.equal(fs.readFileSync(BACKUP, "utf8"), backupBefore, "the backup is not overwritten either");
        assert.deepEqual(leftoverCandidates(), []);
        await sleep(300);
        assert.deepEqual(await showProc(), procBefore, "haproxy's master was not reloaded");
        assert.equal(await versionServed(port), "v2");
    });

    it("when the reload command fails, the previous haproxy.cfg is put back", async function () {
        const current = fs.readFileSync(CONFIG, "utf8");
        const procBefore = await showProc();
        // A pid that cannot exist: kill fails the way `docker kill` fails for a vanished container.
        const result = await runScript(edgeConfig(port, "v4"), { EDGE_RELOAD_COMMAND: "kill -USR2 2147483646" });
        assert.equal(result.status, 1);
        assert.equal(result.stdout, "");
        assert.match(result.stderr, /reloading the edge failed \(exit \d+\)/);
        assert.match(result.stderr, /restored the previous .*haproxy\.cfg; the running edge keeps the config it was running/);
        assert.equal(fs.readFileSync(CONFIG, "utf8"), current);
        assert.deepEqual(leftoverCandidates(), []);
        assert.deepEqual(await showProc(), procBefore);
        assert.equal(await versionServed(port), "v2");
    });

    it("waits for the lock (flock): a held lock makes it give up after EDGE_LOCK_TIMEOUT, changing nothing", async function () {
        const current = fs.readFileSync(CONFIG, "utf8");
        const lockFile = path.join(CONTROL_DIR, "edge.lock");
        const holder = spawn("flock", [lockFile, "sleep", "4"], { stdio: "ignore" });
        try {
            await sleep(300);
            const started = Date.now();
            const result = await runScript(edgeConfig(port, "v5"), { EDGE_LOCK_TIMEOUT: "1" });
            assert.equal(result.status, 6, result.stderr);
            assert.match(result.stderr, /held \S*\/edge-control\/edge\.lock for 1s; nothing changed/);
            assert.ok(Date.now() - started >= 900);
            assert.equal(fs.readFileSync(CONFIG, "utf8"), current);
        } finally {
            holder.kill("SIGTERM");
        }
    });

    it("mkdir lock: a live owner blocks, a dead owner's lock is cleared and the install proceeds", async function () {
        const lockDir = path.join(CONTROL_DIR, "edge.lock.d");
        fs.mkdirSync(lockDir);
        fs.writeFileSync(path.join(lockDir, "pid"), `${process.pid}\n`);
        const blocked = await runScript(edgeConfig(port, "v5"), { EDGE_LOCK_METHOD: "mkdir", EDGE_LOCK_TIMEOUT: "1" });
        assert.equal(blocked.status, 6, blocked.stderr);
        assert.match(blocked.stderr, new RegExp(`pid ${process.pid}`));

        // A pid that is not running: the lock is stale.
        fs.writeFileSync(path.join(lockDir, "pid"), "2147483646\n");
        const result = await runScript(edgeConfig(port, "v5"), { EDGE_LOCK_METHOD: "mkdir", EDGE_LOCK_TIMEOUT: "5" });
        assert.equal(result.status, 0, result.stderr);
        assert.match(result.stderr, /removed stale lock/);
        assert.equal(lines(result)[0], "edge config: installed and reloaded");
        assert.equal(fs.existsSync(lockDir), false, "the script releases its lock");
        assert.deepEqual(leftoverCandidates(), [], "no stale-lock holder left behind");
        await waitForVersion(port, "v5");
    });

    it("as root, EDGE_USER is required, must be <uid>:<gid> in numbers and not uid 0; EDGE_CONTROL_DIR is required: nothing changed", async function () {
        const current = fs.readFileSync(CONFIG, "utf8");
        const cases: [Record<string, string>, RegExp][] = [
            [{ EDGE_USER: "" }, /EDGE_USER is required when run as root/],
            [{ EDGE_USER: "0:99" }, /EDGE_USER must not be uid 0, got '0:99'/],
            [{ EDGE_USER: "00:0" }, /EDGE_USER must not be uid 0/],
            [{ EDGE_USER: "haproxy" }, /EDGE_USER must be <uid>:<gid> in numbers, got 'haproxy'/],
            [{ EDGE_USER: "99:" }, /EDGE_USER must be <uid>:<gid> in numbers/],
            [{ EDGE_USER: "99:99:99" }, /EDGE_USER must be <uid>:<gid> in numbers/],
            [{ EDGE_CONTROL_DIR: "" }, /EDGE_CONTROL_DIR is required/],
            [{ EDGE_CONTROL_DIR: "relative/dir" }, /EDGE_CONTROL_DIR must be an absolute path/],
            [{ EDGE_CONTROL_DIR: EDGE_DIR }, /EDGE_DIR and EDGE_CONTROL_DIR are the same folder/],
        ];
        for (const [env, message] of cases) {
            const result = await runScript(edgeConfig(port, "v6"), env);
            assert.equal(result.status, 2, `${JSON.stringify(env)}: ${result.stderr}`);
            assert.match(result.stderr, message);
            assert.match(result.stderr, /nothing changed/);
            assert.equal(result.stdout, "");
        }
        assert.equal(fs.readFileSync(CONFIG, "utf8"), current);
        assert.equal(ownerOf(RUN_DIR), EDGE_USER);
        assert.deepEqual(leftoverCandidates(), []);
    });
});

// The same script with its production defaults: validation by `docker run` of the edge image with the
// folder mounted read-only, "running" from `docker inspect`, reload by `docker kill -s HUP`. No image
// can be pulled here, so the edge image is Debian's haproxy binary and its libraries, `docker import`ed,
// started the way the official image starts it (master-worker, foreground).
describe("host/install-edge-config.sh run by an unprivileged user (an ssh host without sudo)", function () {
    this.timeout(60000);
    const dir = path.join(ROOT, "unprivileged");
    const edgeDir = path.join(dir, "edge");
    const controlDir = path.join(dir, "edge-control");
    const runDir = path.join(dir, "edge-run");
    const nobody = 65534;
    const asNobody = [`--reuid=${nobody}`, `--regid=${nobody}`, "--clear-groups"];

    before(function () {
        requireCommands(this, ["haproxy", "setpriv", "socat"], "apt-get install -y haproxy util-linux socat");
        requireReal(this, "root (to run the script as another user)", isRoot(), "run the tests as root");
        fs.rmSync(dir, { recursive: true, force: true });
        fs.mkdirSync(dir, { recursive: true });
        fs.chownSync(dir, nobody, nobody);
        fs.chmodSync(path.dirname(dir), 0o755);
    });

    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    /** Runs the script as `nobody` through a wrapper (runShellScript runs a script file with sh). */
    function runAsNobody(config: string, extraEnv: Record<string, string> = {}): Promise<ScriptRun> {
        const wrapper = path.join(ROOT, "as-nobody.sh");
        fs.writeFileSync(wrapper, `exec setpriv ${asNobody.join(" ")} sh ${shellQuote(SCRIPT)}\n`);
        const env = { PATH: process.env.PATH, EDGE_DIR: edgeDir, EDGE_CONTROL_DIR: controlDir, EDGE_CHECK_COMMAND: "haproxy -c -f", EDGE_RUNNING_COMMAND: "echo false", EDGE_RELOAD_COMMAND: "true", EDGE_LOCK_TIMEOUT: "10", ...extraEnv };
        return runShellScript(wrapper, { env, input: config, timeoutMs: 30000 });
    }

    it("another EDGE_USER than the script's own is refused before anything is created", async function () {
        const result = await runAsNobody("global\n", { EDGE_USER: EDGE_USER });
        assert.equal(result.status, 2);
        assert.match(result.stderr, new RegExp(`EDGE_USER is '${EDGE_USER}', but run as ${nobody}:${nobody} \\(not root\\).*the edge runs as ${nobody}:${nobody}.*; nothing changed`));
        assert.equal(result.stdout, "");
        assert.deepEqual(fs.readdirSync(dir), []);
    });

    it("the edge runs as the installing user: its folders are that user's, the last line names it, and HAProxy run as that user serves the sockets it can use", async function () {
        const port = await freePort();
        const config = renderHaproxyConfig({
            bindAddress: "127.0.0.1",
            bindPort: port,
            servers: { blue: { address: "127.0.0.1:9" }, green: { address: "127.0.0.1:10" } },
            adminSocketPath: path.join(runDir, "admin.sock"),
            operatorSocketPath: path.join(runDir, "operator.sock"),
            stateFilePath: path.join(edgeDir, "server-state"),
        });
        const first = await runAsNobody(config);
        assert.equal(first.status, 0, first.stderr);
        assert.deepEqual(lines(first), ["edge config: installed", `edge user: ${nobody}:${nobody}`]);
        for (const [folder, mode] of [[edgeDir, 0o755], [controlDir, 0o700], [runDir, 0o700]] as const) {
            assert.equal(ownerOf(folder), `${nobody}:${nobody}`, folder);
            assert.equal(modeOf(folder), mode, folder);
        }
        assert.equal(fs.readFileSync(path.join(edgeDir, "haproxy.cfg"), "utf8"), config, "installed as given (no socket owner added)");
        const again = await runAsNobody(config, { EDGE_USER: `${nobody}:${nobody}` });
        assert.deepEqual(lines(again), ["edge config: unchanged", `edge user: ${nobody}:${nobody}`]);

        // HAProxy as that user (the edge container's --user) creates both sockets as itself.
        const haproxy = spawn("setpriv", [...asNobody, "haproxy", "-f", path.join(edgeDir, "haproxy.cfg")], { stdio: "ignore" });
        try {
            const sockets = ["admin.sock", "operator.sock"].map((name) => path.join(runDir, name));
            for (let i = 0; i < 100 && !sockets.every((socket) => fs.existsSync(socket)); i++) await sleep(50);
            for (const socket of sockets) {
                assert.ok(fs.lstatSync(socket).isSocket(), socket);
                assert.equal(fs.statSync(socket).uid, nobody);
                assert.equal(modeOf(socket), 0o600);
            }
            const answer = execFileSync("setpriv", [...asNobody, "sh", "-c", `echo 'show servers state' | socat - UNIX-CONNECT:${sockets[0]}`], { encoding: "utf8" });
            assert.match(answer, /^1\n/, `the installer cannot use the admin socket: ${answer}`);
        } finally {
            haproxy.kill("SIGKILL");
        }
    });
});

describe("host/install-edge-config.sh with its docker defaults against a real dockerd", function () {
    this.timeout(120000);
    const root = path.resolve(__dirname, "../../.test-work/install-edge-config-docker");
    const hostStateDir = path.join(root, "host");
    const edgeDir = path.join(hostStateDir, "edge");
    const controlDir = path.join(hostStateDir, "edge-control");
    const runDir = path.join(hostStateDir, "edge-run");
    const image = "medusa-deploy-test/haproxy:local";
    const container = "medusa-test-edge";
    const inContainer = "/usr/local/etc/haproxy";
    const runInContainer = "/run/medusa-edge";
    let dockerd: PrivateDockerd;
    let port = 0;

    const docker = (args: string[]): string => dockerd.docker(args, { timeoutMs: 60000 }).trim();

    function config(version: string): string {
        const rendered = renderHaproxyConfig({
            bindAddress: "127.0.0.1",
            bindPort: port,
            servers: { blue: { address: "127.0.0.1:9" }, green: { address: "127.0.0.1:10" } },
            // Paths as the edge process sees them, inside the container.
            adminSocketPath: `${runInContainer}/admin.sock`,
            operatorSocketPath: `${runInContainer}/operator.sock`,
            stateFilePath: `${inContainer}/server-state`,
        });
        const frontendLine = `frontend ${EDGE_FRONTEND_NAME}\n`;
        return rendered.replace(frontendLine, `${frontendLine}    http-after-response set-header X-Edge-Config-Version ${version}\n`);
    }

    function run(configText: string): Promise<ScriptRun> {
        const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, DOCKER_HOST: dockerd.host, EDGE_DIR: edgeDir, EDGE_CONTROL_DIR: controlDir, EDGE_RUN_DIR: runDir, EDGE_USER, EDGE_IMAGE: image, EDGE_CONTAINER: container };
        return runShellScript(SCRIPT, { env, input: configText });
    }

    before(async function () {
        requireCommands(this, ["haproxy", "dockerd", "docker"], "apt-get install -y haproxy docker.io");
        requireReal(this, "root (dockerd needs it)", isRoot(), "run the tests as root");
        fs.mkdirSync(root, { recursive: true });
        fs.rmSync(hostStateDir, { recursive: true, force: true });
        dockerd = new PrivateDockerd({ root: path.join(root, "dockerd") });
        await dockerd.start();
        port = await freePort();

        const rootfs = path.join(root, "rootfs");
        fs.rmSync(rootfs, { recursive: true, force: true });
        const haproxyBinary = execFileSync("sh", ["-c", "command -v haproxy"], { encoding: "utf8" }).trim();
        const libraries = execFileSync("ldd", [haproxyBinary], { encoding: "utf8" }).match(/\/[^\s]+/g) ?? [];
        for (const file of [haproxyBinary, ...libraries]) {
            fs.mkdirSync(path.join(rootfs, path.dirname(file)), { recursive: true });
            fs.copyFileSync(fs.realpathSync(file), path.join(rootfs, file));
            fs.chmodSync(path.join(rootfs, file), 0o755);
        }
        fs.mkdirSync(path.join(rootfs, inContainer), { recursive: true });
        const cmd = JSON.stringify([haproxyBinary, "-W", "-db", "-f", `${inContainer}/haproxy.cfg`]);
        execFileSync("sh", ["-c", `tar -C '${rootfs}' -c . | docker import --change 'CMD ${cmd}' - '${image}'`], { env: dockerd.env(), stdio: "ignore" });
        const leftover = docker(["ps", "-a", "-q", "--filter", `name=^/${container}$`]);
        if (leftover) docker(["rm", "-f", leftover]);
    });

    after(async function () {
        if (!dockerd) return;
        await dockerd.shutdown();
    });

    it("installs without reload while the edge container does not exist, validated by the image as the edge user", async function () {
        const result = await run(config("v1"));
        assert.equal(result.status, 0, result.stderr);
        assert.deepEqual(lines(result), ["edge config: installed", `edge user: ${EDGE_USER}`]);
        assert.equal(fs.readFileSync(path.join(edgeDir, "haproxy.cfg"), "utf8"), config("v1"));
        assert.equal(docker(["ps", "-a", "-q"]), "", "the check container was removed");
    });

    it("refuses an invalid config with HAProxy's message from the image", async function () {
        const result = await run(config("v1").replace("global\n", "global\n    garbage directive\n"));
        assert.equal(result.status, 1);
        assert.match(result.stderr, new RegExp(`parsing \\[${inContainer}/\\.haproxy\\.cfg\\.candidate\\.[A-Za-z0-9]+:[0-9]+\\] : unknown keyword 'garbage'`));
        assert.equal(fs.readFileSync(path.join(edgeDir, "haproxy.cfg"), "utf8"), config("v1"));
    });

    it("reloads the running edge container (its user, config folder read-only) with SIGHUP: new config served, same container, never restarted", async function () {
        const edgeUser = lines(await run(config("v1"))).pop()!.replace(/^edge user: /, "");
        assert.equal(edgeUser, EDGE_USER);
        docker(["run", "-d", "--name", container, "--network", "host", "--user", edgeUser, "-v", `${edgeDir}:${inContainer}:ro`, "-v", `${runDir}:${runInContainer}`, image]);
        await waitForVersion(port, "v1", 10000);
        const startedAt = docker(["inspect", "-f", "{{.Id}} {{.State.StartedAt}} {{.RestartCount}}", container]);

        const same = await run(config("v1"));
        assert.equal(lines(same)[0], "edge config: unchanged", same.stderr);

        const result = await run(config("v2"));
        assert.equal(result.status, 0, result.stderr);
        assert.deepEqual(lines(result), ["edge config: installed and reloaded", `edge user: ${EDGE_USER}`]);
        const ms = await waitForVersion(port, "v2");
        console.log(`      edge container served the new config ${ms} ms after the script returned`);
        assert.equal(docker(["inspect", "-f", "{{.Id}} {{.State.StartedAt}} {{.RestartCount}}", container]), startedAt);
        assert.equal(docker(["inspect", "-f", "{{.State.Running}}", container]), "true");
        assert.equal(fs.readFileSync(path.join(edgeDir, "haproxy.cfg.previous"), "utf8"), config("v1"));
    });
});
