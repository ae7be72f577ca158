// Issue 19: the root-run edge scripts must not be led to write outside their folders. For every
// predictable name host/traffic-switch.sh and host/install-edge-config.sh write, lock or replace (the
// lock file and lock folder, the state file, haproxy.cfg and haproxy.cfg.previous, the edge/,
// edge-control/ and edge-run/ folders themselves, the sockets), a symbolic link is planted there,
// pointing at a file outside the folders (a fake authorized_keys with known bytes, or a target that
// does not exist yet); the script must refuse, name the path, exit non-zero and leave the outside file
// byte-identical (or still absent) and the edge's routing as it was. Folders others could write in,
// or owned by another uid, are refused before anything changes. The scripts run as a host receives
// them (components/hostScripts.ts inlines host/lib), against a real HAProxy and real backends.
//
// Then the edge container itself, on a private dockerd: run as a non-root user with edge/ mounted
// read-only (as components/edge.ts runs it), it can neither create nor replace anything in edge/, and
// edge-run/ is its only writable mount.
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { hostScript } from "../../components/hostScripts";
import { renderHaproxyConfig } from "../../lib/haproxyConfig";
import { ColourBackend, startColourBackends } from "../support/colourBackends";
import { HaproxyEdge, freePort, operatorUrl, parseServerStates, routedColours } from "../support/haproxyEdge";
import { ensureLocalHaproxyImage, HAPROXY_CONFIG_DIR } from "../support/localHaproxyImage";
import { probeColours } from "../support/loadClient";
import { PrivateDockerd } from "../support/privateDockerd";
import { isRoot, requireCommands, requireReal } from "../support/realComponent";
import { runShellScript, ScriptRun } from "../support/runShellScript";

const WORK = path.resolve(__dirname, "../../.test-work/edge-link-refusal", String(process.pid));
const OUTSIDE = path.join(WORK, "outside");
/** Stands in for /root/.ssh/authorized_keys: what a planted link would have root overwrite. */
const AUTHORIZED_KEYS = path.join(OUTSIDE, "root-ssh", "authorized_keys");
const KEYS_CONTENT = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKnownOperatorKeyOnlyForThisTest operator@example\n";
/** A name that does not exist: a link to it would have root create it. */
const ABSENT = path.join(OUTSIDE, "not-there-yet");
/** An outside folder with nothing in it: a link to it would have root create files there. */
const OUTSIDE_DIR = path.join(OUTSIDE, "some-folder");
/** A UNIX socket that is not the edge's: a link to it would have root talk to something else. */
const DECOY_SOCKET = path.join(OUTSIDE, "decoy.sock");
const EDGE_USER = "99:99";
const OTHER_UID = 65534;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const lastLine = (run: { stdout: string }): string => run.stdout.trimEnd().split("\n").pop() ?? "";
const modeOf = (file: string): number => fs.statSync(file).mode & 0o777;

/** Every file under `dir` (relative names) with its bytes, links as "-> target"; "" when absent. */
function listing(dir: string): string {
    if (!fs.existsSync(dir)) return "";
    const out: string[] = [];
    const walk = (at: string): void => {
        for (const name of fs.readdirSync(at).sort()) {
            const full = path.join(at, name);
            const stat = fs.lstatSync(full);
            const rel = path.relative(dir, full);
            if (stat.isSymbolicLink()) out.push(`${rel} -> ${fs.readlinkSync(full)}`);
            else if (stat.isDirectory()) {
                out.push(`${rel}/ ${(stat.mode & 0o7777).toString(8)} ${stat.uid}`);
                walk(full);
            } else if (stat.isFile()) out.push(`${rel} ${stat.mtimeMs} ${fs.readFileSync(full, "base64")}`);
            else out.push(`${rel} (other)`);
        }
    };
    walk(dir);
    return out.join("\n");
}

describe("root-run edge scripts refuse planted links and unsafe folders (real HAProxy, scripts as a host receives them)", function () {
    this.timeout(60_000);
    let backends: { blue: ColourBackend; green: ColourBackend } | undefined;
    let edge: HaproxyEdge;
    let decoy: net.Server | undefined;
    let decoyConnections = 0;
    const scripts = path.join(WORK, "scripts");
    const installScript = path.join(scripts, "install-edge-config.sh");
    let hostDir = "";

    /** What must not change when a script refuses. */
    interface Snapshot {
        outside: string;
        absent: boolean;
        runtime: number[];
        stateFile: string;
        config: string;
        decoyConnections: number;
    }
    const snapshot = async (): Promise<Snapshot> => {
        const states = await edge.serverStates();
        return {
            outside: listing(OUTSIDE),
            absent: fs.existsSync(ABSENT),
            runtime: [states.blue?.adminState ?? -1, states.green?.adminState ?? -1, states.blue?.userWeight ?? -1, states.green?.userWeight ?? -1],
            stateFile: listing(edge.edgeDir).split("\n").filter((line) => line.startsWith("server-state ")).join(),
            config: fs.readFileSync(edge.configFile, "base64"),
            decoyConnections,
        };
    };
    const assertUnchanged = async (before: Snapshot, what: string): Promise<void> => {
        const after = await snapshot();
        assert.equal(fs.readFileSync(AUTHORIZED_KEYS, "utf8"), KEYS_CONTENT, `${what}: authorized_keys`);
        assert.equal(after.absent, false, `${what}: ${ABSENT} was created`);
        assert.equal(after.outside, before.outside, `${what}: something outside the folders changed`);
        assert.deepEqual(after.runtime, before.runtime, `${what}: the edge's routing changed`);
        assert.equal(after.stateFile, before.stateFile, `${what}: the state file changed`);
        assert.equal(after.config, before.config, `${what}: haproxy.cfg changed`);
        assert.equal(after.decoyConnections, before.decoyConnections, `${what}: something connected to the decoy socket`);
        assert.deepEqual(routedColours(await edge.serverStates()), ["blue"]);
        assert.deepEqual(await probeColours(edge.baseUrl, 5), Array(5).fill("blue"));
    };

    /** Puts a symbolic link at `at` (what was there is moved aside); returns the undo. */
    const plantLink = (at: string, target: string): (() => void) => {
        const aside = `${at}.aside-by-test`;
        const had = fs.existsSync(at) || isLink(at);
        if (had) fs.renameSync(at, aside);
        fs.symlinkSync(target, at);
        return () => {
            fs.rmSync(at, { force: true });
            if (had) fs.renameSync(aside, at);
        };
    };
    const isLink = (at: string): boolean => {
        try {
            return fs.lstatSync(at).isSymbolicLink();
        } catch {
            return false;
        }
    };

    const runSwitch = (env: Record<string, string> = {}) => edge.runSwitch("green", env);
    const installEnv = (env: Record<string, string> = {}): NodeJS.ProcessEnv => ({
        PATH: process.env.PATH,
        EDGE_DIR: edge.edgeDir,
        EDGE_CONTROL_DIR: edge.controlDir,
        EDGE_RUN_DIR: edge.runDir,
        EDGE_USER,
        EDGE_CHECK_COMMAND: "haproxy -c -f",
        // The test edge is not a master-worker process: nothing is reloaded (and nothing should be).
        EDGE_RUNNING_COMMAND: "echo false",
        EDGE_RELOAD_COMMAND: "false",
        EDGE_LOCK_TIMEOUT: "5",
        ...env,
    });
    /** A config that would be installed if the script did not refuse. */
    const changedConfig = (): string => `${fs.readFileSync(edge.configFile, "utf8")}\n# changed by edgeLinkRefusal.test.ts\n`;
    const runInstall = (env: Record<string, string> = {}, config = changedConfig()): Promise<ScriptRun> =>
        runShellScript(installScript, { env: installEnv(env), input: config, timeoutMs: 30_000 });

    type Run = { code: number | null; stdout: string; stderr: string };
    const assertRefused = (run: Run, named: string, message: RegExp): void => {
        const output = `${run.stdout}${run.stderr}`;
        assert.notEqual(run.code, 0, output);
        assert.equal(run.code, 2, output);
        assert.ok(run.stderr.includes(named), `the refusal does not name ${named}:\n${output}`);
        assert.match(run.stderr, message);
        assert.match(run.stderr, /nothing changed/);
    };
    const asRun = (run: ScriptRun): Run => ({ code: run.status, stdout: run.stdout, stderr: run.stderr });

    before(async function () {
        requireCommands(this, ["haproxy", "socat", "curl", "flock"], "apt-get install -y haproxy socat curl util-linux");
        requireReal(this, "root (the scripts' checks are about a root-run script, and chown)", isRoot(), "run the tests as root");
        fs.rmSync(WORK, { recursive: true, force: true });
        fs.mkdirSync(path.dirname(AUTHORIZED_KEYS), { recursive: true, mode: 0o700 });
        fs.writeFileSync(AUTHORIZED_KEYS, KEYS_CONTENT, { mode: 0o600 });
        fs.mkdirSync(OUTSIDE_DIR, { recursive: true });
        fs.mkdirSync(scripts, { recursive: true });
        const switchScript = path.join(scripts, "traffic-switch.sh");
        fs.writeFileSync(switchScript, hostScript("traffic-switch"));
        fs.writeFileSync(installScript, hostScript("install-edge-config"));
        for (const file of [switchScript, installScript]) assert.doesNotMatch(fs.readFileSync(file, "utf8"), /medusa-deploy:inline/);
        decoy = net.createServer((socket) => {
            decoyConnections++;
            socket.destroy();
        });
        await new Promise<void>((resolve) => decoy!.listen(DECOY_SOCKET, resolve));

        backends = await startColourBackends();
        hostDir = path.join(WORK, "host");
        edge = new HaproxyEdge(hostDir, await freePort(), { blue: { address: backends.blue.address }, green: { address: backends.green.address } }, {}, { switchScript });
        await edge.start();
        await edge.waitForHealth("blue", true);
        await edge.waitForHealth("green", true);
        const first = await edge.runSwitch("blue");
        assert.equal(first.code, 0, first.stdout + first.stderr);
        // The installer, run once with the config the edge runs: the folders as it leaves them.
        const install = await runInstall({}, fs.readFileSync(edge.configFile, "utf8"));
        assert.equal(install.status, 0, install.stderr);
        assert.deepEqual(install.stdout.trimEnd().split("\n"), ["edge config: unchanged", `edge user: ${EDGE_USER}`]);
    });

    after(async () => {
        await edge?.stop();
        await backends?.blue.stop();
        await backends?.green.stop();
        decoy?.close();
        fs.rmSync(WORK, { recursive: true, force: true });
    });

    afterEach(async function () {
        // Whatever a test did, the next one starts from blue live and the outside untouched.
        assert.equal(fs.readFileSync(AUTHORIZED_KEYS, "utf8"), KEYS_CONTENT);
        assert.deepEqual(routedColours(await edge.serverStates()), ["blue"]);
    });

    // Each planted name: where, which targets, and what the refusal says.
    interface Plant {
        what: string;
        at: () => string;
        /** Link targets: an outside file and an absent name, or an outside folder for folders. */
        targets: string[];
        env?: Record<string, string>;
        message: RegExp;
    }
    const fileTargets = [AUTHORIZED_KEYS, ABSENT];
    const folderTargets = [OUTSIDE_DIR, ABSENT];

    describe("host/traffic-switch.sh", () => {
        const plants: Plant[] = [
            { what: "the lock file (flock)", at: () => path.join(edge.controlDir, "edge.lock"), targets: fileTargets, env: { EDGE_LOCK_METHOD: "flock" }, message: /the lock \S+ is a symbolic link; refusing to lock through it/ },
            { what: "the lock folder (mkdir)", at: () => path.join(edge.controlDir, "edge.lock.d"), targets: folderTargets, env: { EDGE_LOCK_METHOD: "mkdir" }, message: /the lock \S+ is a symbolic link; refusing to lock through it/ },
            { what: "the state file", at: () => edge.stateFile, targets: fileTargets, message: /the state file \S+ is a symbolic link; refusing to switch/ },
            { what: "the edge/ folder", at: () => edge.edgeDir, targets: folderTargets, message: /the state file's folder cannot be used: \S+ is a symbolic link/ },
            { what: "the edge-control/ folder", at: () => edge.controlDir, targets: folderTargets, message: /EDGE_CONTROL_DIR cannot be used: \S+ is a symbolic link/ },
            { what: "the admin socket", at: () => edge.adminSocket, targets: [DECOY_SOCKET, AUTHORIZED_KEYS, ABSENT], message: /the admin socket \S+ is a symbolic link, not the edge's socket/ },
            { what: "the operator socket", at: () => edge.operatorSocket, targets: [DECOY_SOCKET, AUTHORIZED_KEYS, ABSENT], message: /the operator socket \(VERIFY_UNIX_SOCKET\) \S+ is a symbolic link/ },
        ];
        for (const plant of plants) {
            for (const target of plant.targets) {
                it(`${plant.what} as a link to ${path.relative(WORK, target)}: refused, nothing outside written, routing unchanged`, async () => {
                    const before = await snapshot();
                    const undo = plantLink(plant.at(), target);
                    let run: Run;
                    try {
                        run = await runSwitch(plant.env);
                    } finally {
                        undo();
                    }
                    assertRefused(run, plant.at(), plant.message);
                    assert.equal(lastLine(run), "result: unchanged");
                    await assertUnchanged(before, plant.what);
                });
            }
        }

        it("a socket path that is a regular file is refused as not a socket", async () => {
            const before = await snapshot();
            const undo = plantLink(edge.operatorSocket, AUTHORIZED_KEYS);
            fs.rmSync(edge.operatorSocket);
            fs.writeFileSync(edge.operatorSocket, "not a socket\n");
            try {
                assertRefused(await runSwitch(), edge.operatorSocket, /\S+operator\.sock is not a socket/);
            } finally {
                undo();
            }
            await assertUnchanged(before, "operator socket as a file");
        });
    });

    describe("host/install-edge-config.sh", () => {
        const plants: Plant[] = [
            { what: "the lock file (flock)", at: () => path.join(edge.controlDir, "edge.lock"), targets: fileTargets, env: { EDGE_LOCK_METHOD: "flock" }, message: /the lock \S+ is a symbolic link; refusing to lock through it/ },
            { what: "the lock folder (mkdir)", at: () => path.join(edge.controlDir, "edge.lock.d"), targets: folderTargets, env: { EDGE_LOCK_METHOD: "mkdir" }, message: /the lock \S+ is a symbolic link; refusing to lock through it/ },
            { what: "haproxy.cfg", at: () => edge.configFile, targets: fileTargets, message: /haproxy\.cfg is a symbolic link; refusing to install/ },
            { what: "haproxy.cfg.previous", at: () => `${edge.configFile}.previous`, targets: fileTargets, message: /haproxy\.cfg\.previous is a symbolic link; refusing to install/ },
            { what: "the edge/ folder", at: () => edge.edgeDir, targets: folderTargets, message: /\/edge is a symbolic link; refusing to install/ },
            { what: "the edge-control/ folder", at: () => edge.controlDir, targets: folderTargets, message: /\/edge-control is a symbolic link; refusing to install/ },
            // It would be chowned to the edge user and made 0700 through the link.
            { what: "the edge-run/ folder", at: () => edge.runDir, targets: folderTargets, message: /\/edge-run is a symbolic link; refusing to install/ },
        ];
        for (const plant of plants) {
            for (const target of plant.targets) {
                it(`${plant.what} as a link to ${path.relative(WORK, target)}: refused, nothing outside written, config and routing unchanged`, async () => {
                    const before = await snapshot();
                    const config = changedConfig();
                    const undo = plantLink(plant.at(), target);
                    let run: Run;
                    try {
                        run = asRun(await runInstall(plant.env, config));
                    } finally {
                        undo();
                    }
                    assertRefused(run, plant.at(), plant.message);
                    assert.equal(run.stdout, "");
                    await assertUnchanged(before, plant.what);
                    assert.deepEqual(fs.readdirSync(edge.edgeDir).filter((name) => name.startsWith(".")), [], "no candidate left");
                });
            }
        }
    });

    describe("folders others could write in, or owned by another uid, are refused before anything changes", () => {
        interface Unsafe {
            what: string;
            folder: () => string;
            spoil: (folder: string) => void;
            message: RegExp;
        }
        const unsafe: Unsafe[] = [
            { what: "edge/ writable by its group", folder: () => edge.edgeDir, spoil: (f) => fs.chmodSync(f, 0o775), message: /\/edge is writable by its group or by others \(mode drwxrwxr-x\)/ },
            { what: "edge/ writable by others", folder: () => edge.edgeDir, spoil: (f) => fs.chmodSync(f, 0o757), message: /\/edge is writable by its group or by others/ },
            { what: "edge/ owned by another uid", folder: () => edge.edgeDir, spoil: (f) => fs.chownSync(f, OTHER_UID, 0), message: new RegExp(`/edge is owned by uid ${OTHER_UID}, not by uid 0 that this script runs as`) },
            { what: "edge-control/ writable by its group", folder: () => edge.controlDir, spoil: (f) => fs.chmodSync(f, 0o770), message: /\/edge-control is writable by its group or by others/ },
            { what: "edge-control/ writable by others", folder: () => edge.controlDir, spoil: (f) => fs.chmodSync(f, 0o703), message: /\/edge-control is writable by its group or by others/ },
            { what: "edge-control/ owned by another uid", folder: () => edge.controlDir, spoil: (f) => fs.chownSync(f, OTHER_UID, 0), message: new RegExp(`/edge-control is owned by uid ${OTHER_UID}`) },
            { what: "the folder holding them writable by others", folder: () => hostDir, spoil: (f) => fs.chmodSync(f, 0o777), message: /the folder \S+ that holds \S+ is writable by its group or by others \(mode drwxrwxrwx\), who could replace/ },
        ];
        for (const item of unsafe) {
            for (const script of ["traffic-switch", "install-edge-config"] as const) {
                it(`${script}: ${item.what}`, async () => {
                    const folder = item.folder();
                    const stat = fs.statSync(folder);
                    // The lock file is created on the first lock: without it, its absence afterwards shows no lock was taken.
                    fs.rmSync(path.join(edge.controlDir, "edge.lock"), { force: true });
                    fs.chownSync(edge.runDir, 0, 0);
                    const control = listing(edge.controlDir);
                    const before = await snapshot();
                    const config = changedConfig();
                    item.spoil(folder);
                    let run: Run;
                    try {
                        run = script === "traffic-switch" ? await runSwitch() : asRun(await runInstall({}, config));
                    } finally {
                        fs.chmodSync(folder, stat.mode & 0o7777);
                        fs.chownSync(folder, stat.uid, stat.gid);
                    }
                    assertRefused(run, folder, item.message);
                    await assertUnchanged(before, item.what);
                    assert.equal(listing(edge.controlDir), control, "nothing was created in edge-control/ (no lock taken)");
                    assert.equal(fs.statSync(edge.runDir).uid, 0, "edge-run/ was not given to the edge user");
                    assert.deepEqual(fs.readdirSync(edge.edgeDir).filter((name) => name.startsWith(".")), [], "no candidate left");
                });
            }
        }
    });

    it("edge-control/ absent: the switch creates it 0700 (its parent checked) and leaves only the lock there", async () => {
        fs.rmSync(edge.controlDir, { recursive: true, force: true });
        const run = await edge.runSwitch("green");
        assert.equal(run.code, 0, run.stdout + run.stderr);
        assert.equal(modeOf(edge.controlDir), 0o700);
        assert.deepEqual(fs.readdirSync(edge.controlDir), ["edge.lock"]);
        const back = await edge.runSwitch("blue");
        assert.equal(back.code, 0, back.stdout + back.stderr);
    });

    it("links planted at the names older versions used, or that look like the scripts' temporary files, are never written through: switches, a reverted switch and installs leave them and the outside untouched", async () => {
        const planted = [
            path.join(edge.edgeDir, "server-state.lock"),
            path.join(edge.edgeDir, "server-state.lock.d"),
            path.join(edge.edgeDir, "haproxy.cfg.lock"),
            path.join(edge.edgeDir, "server-state.new"),
            path.join(edge.edgeDir, "server-state.previous"),
            path.join(edge.edgeDir, `haproxy.cfg.previous.tmp.${process.pid}`),
            path.join(edge.edgeDir, ".haproxy.cfg.candidate"),
            path.join(edge.controlDir, "server-state.previous"),
            path.join(edge.controlDir, "traffic-switch.verify"),
            path.join(edge.controlDir, ".traffic-switch.verify"),
            path.join(edge.controlDir, "edge.lock.d.stale"),
            path.join(edge.tempDir, "traffic-switch.verify"),
        ];
        for (const at of planted) fs.symlinkSync(AUTHORIZED_KEYS, at);
        const absentLink = path.join(edge.edgeDir, "server-state.tmp");
        fs.symlinkSync(ABSENT, absentLink);
        const outside = listing(OUTSIDE);
        try {
            for (const target of ["green", "blue"] as const) {
                const run = await edge.runSwitch(target, { EDGE_LOCK_METHOD: target === "green" ? "mkdir" : "flock" });
                assert.equal(run.code, 0, run.stdout + run.stderr);
            }
            // A switch that fails its verification and puts the state file back from its backup.
            const green = backends!.green;
            green.mode = "broken-app";
            let reverted;
            try {
                reverted = await edge.runSwitch("green", { VERIFY_URL: operatorUrl("/store/products") });
            } finally {
                green.mode = "healthy";
            }
            assert.equal(reverted.code, 4, reverted.stdout + reverted.stderr);
            assert.equal(lastLine(reverted), "result: reverted stage=verify live=blue");
            // An install of a new config, then of the running one again (which keeps haproxy.cfg.previous).
            const original = fs.readFileSync(edge.configFile, "utf8");
            const changed = await runInstall();
            assert.equal(changed.status, 0, changed.stderr);
            assert.equal(fs.readFileSync(`${edge.configFile}.previous`, "utf8"), original);
            const back = await runInstall({}, original);
            assert.equal(back.status, 0, back.stderr);
            assert.equal(fs.readFileSync(edge.configFile, "utf8"), original);
        } finally {
            for (const at of [...planted, absentLink]) {
                assert.ok(fs.lstatSync(at).isSymbolicLink(), `${at} was replaced`);
                fs.rmSync(at);
            }
        }
        assert.equal(listing(OUTSIDE), outside);
        assert.equal(fs.readFileSync(AUTHORIZED_KEYS, "utf8"), KEYS_CONTENT);
        assert.equal(fs.existsSync(ABSENT), false);
        assert.deepEqual(routedColours(parseServerStates(fs.readFileSync(edge.stateFile, "utf8"))), ["blue"]);
        assert.deepEqual(await probeColours(edge.baseUrl, 5), Array(5).fill("blue"));
    });

    it("after switches, a revert and installs, edge-run/ (the edge's own folder) holds only the sockets HAProxy made", () => {
        assert.deepEqual(fs.readdirSync(edge.runDir).sort(), ["admin.sock", "operator.sock"]);
    });
});

describe("the edge container as a non-root user with edge/ read-only cannot write where root-run scripts act (real dockerd)", function () {
    this.timeout(180_000);
    const root = path.resolve(__dirname, "../../.test-work/edge-link-refusal-docker");
    const hostStateDir = path.join(root, "host");
    const edgeDir = path.join(hostStateDir, "edge");
    const controlDir = path.join(hostStateDir, "edge-control");
    const runDir = path.join(hostStateDir, "edge-run");
    const runInContainer = "/run/medusa-edge";
    const container = "medusa-test-link-edge";
    const outside = path.join(root, "outside-authorized_keys");
    let dockerd: PrivateDockerd | undefined;
    let image = "";
    let edgeUser = "";

    const docker = (args: string[]): string => dockerd!.docker(args, { timeoutMs: 60_000 }).trim();
    /** Runs `sh -c command` in the edge container as its own user; returns the exit status and output. */
    const inEdge = (command: string): { status: number; output: string } => {
        try {
            return { status: 0, output: docker(["exec", container, "sh", "-c", command]) };
        } catch (error) {
            const e = error as { status?: number; stdout?: Buffer | string; stderr?: Buffer | string; message: string };
            return { status: e.status ?? -1, output: `${e.stdout ?? ""}${e.stderr ?? ""}${e.message}` };
        }
    };

    before(async function () {
        requireCommands(this, ["haproxy", "dockerd", "docker", "socat", "busybox"], "apt-get install -y haproxy docker.io socat busybox-static");
        requireReal(this, "root (dockerd needs it)", isRoot(), "run the tests as root");
        fs.rmSync(root, { recursive: true, force: true });
        fs.mkdirSync(root, { recursive: true });
        fs.writeFileSync(outside, KEYS_CONTENT, { mode: 0o600 });
        dockerd = new PrivateDockerd({ root: path.join(root, "dockerd") });
        await dockerd.start();
        image = ensureLocalHaproxyImage(dockerd);

        // The folders and config as install-edge-config.sh makes them, validated by the image as the edge user.
        const config = renderHaproxyConfig({
            bindAddress: "127.0.0.1",
            bindPort: 8080,
            servers: { blue: { address: "127.0.0.1:9" }, green: { address: "127.0.0.1:10" } },
            adminSocketPath: `${runInContainer}/admin.sock`,
            operatorSocketPath: `${runInContainer}/operator.sock`,
            stateFilePath: `${HAPROXY_CONFIG_DIR}/server-state`,
        });
        const install = await runShellScript(path.resolve(__dirname, "../../host/install-edge-config.sh"), {
            env: { PATH: process.env.PATH, DOCKER_HOST: dockerd.host, EDGE_DIR: edgeDir, EDGE_CONTROL_DIR: controlDir, EDGE_RUN_DIR: runDir, EDGE_USER, EDGE_IMAGE: image, EDGE_CONTAINER: container },
            input: config,
        });
        assert.equal(install.status, 0, install.stderr);
        edgeUser = install.stdout.trimEnd().split("\n").pop()!.replace(/^edge user: /, "");
        assert.equal(edgeUser, EDGE_USER);
        fs.writeFileSync(path.join(edgeDir, "server-state"), "1\n# be_id be_name srv_id srv_name\n", { mode: 0o644 });

        // As components/edge.ts creates it (no network needed here: the test talks to its sockets).
        docker([
            "run", "-d", "--name", container, "--user", edgeUser, "--network", "none",
            "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "-v", `${edgeDir}:${HAPROXY_CONFIG_DIR}:ro`,
            "-v", `${runDir}:${runInContainer}`,
            image,
        ]);
        const socket = path.join(runDir, "admin.sock");
        for (let i = 0; i < 100 && !fs.existsSync(socket); i++) await sleep(100);
        assert.ok(fs.existsSync(socket), `the edge did not open its admin socket: ${docker(["logs", container])}`);
    });

    after(async function () {
        if (dockerd) await dockerd.shutdown();
        fs.rmSync(root, { recursive: true, force: true });
    });

    it("runs as the non-root edge user and made its sockets in edge-run/ as that user", () => {
        assert.equal(inEdge("id -u").output, edgeUser.split(":")[0]);
        assert.notEqual(inEdge("id -u").output, "0");
        for (const name of ["admin.sock", "operator.sock"]) {
            const stat = fs.lstatSync(path.join(runDir, name));
            assert.ok(stat.isSocket(), name);
            assert.equal(`${stat.uid}:${stat.gid}`, edgeUser);
        }
    });

    it("cannot plant a link or write a file in edge/, nor replace, remove or chmod what is there", () => {
        const before = listing(edgeDir);
        const attempts = [
            `ln -s ${outside} ${HAPROXY_CONFIG_DIR}/server-state.planted`,
            `ln -sf ${outside} ${HAPROXY_CONFIG_DIR}/server-state`,
            `ln -s /root/.ssh ${HAPROXY_CONFIG_DIR}/edge.lock`,
            `echo planted > ${HAPROXY_CONFIG_DIR}/new-file`,
            `echo planted > ${HAPROXY_CONFIG_DIR}/haproxy.cfg`,
            `echo planted >> ${HAPROXY_CONFIG_DIR}/server-state`,
            `mv ${HAPROXY_CONFIG_DIR}/haproxy.cfg ${HAPROXY_CONFIG_DIR}/haproxy.cfg.moved`,
            `rm -f ${HAPROXY_CONFIG_DIR}/server-state`,
            `mkdir ${HAPROXY_CONFIG_DIR}/edge.lock.d`,
            `chmod 0777 ${HAPROXY_CONFIG_DIR}`,
            `touch ${HAPROXY_CONFIG_DIR}/haproxy.cfg`,
        ];
        for (const attempt of attempts) {
            const result = inEdge(attempt);
            assert.notEqual(result.status, 0, `the edge could: ${attempt}`);
            // busybox's ln -sf reports the unlink it could not do as "File exists".
            assert.match(result.output, /Read-only file system|Permission denied|File exists/, attempt);
        }
        assert.equal(listing(edgeDir), before, "edge/ changed");
        assert.equal(fs.readFileSync(outside, "utf8"), KEYS_CONTENT);
    });

    it("its only writable mount is edge-run/: edge/ is mounted read-only, edge-control/ not at all, and the root file system is read-only", () => {
        const mounts = JSON.parse(docker(["inspect", "-f", "{{json .Mounts}}", container])) as { Source: string; Destination: string; RW: boolean }[];
        const summary = mounts.map((m) => `${m.Source} -> ${m.Destination} ${m.RW ? "rw" : "ro"}`).sort();
        assert.deepEqual(summary, [`${edgeDir} -> ${HAPROXY_CONFIG_DIR} ro`, `${runDir} -> ${runInContainer} rw`].sort());
        assert.ok(!mounts.some((m) => m.Source.startsWith(controlDir)), "edge-control/ is mounted");
        assert.equal(docker(["inspect", "-f", "{{.HostConfig.ReadonlyRootfs}}", container]), "true");
        for (const at of ["/probe", "/tmp/probe", "/var/lib/haproxy/probe", "/usr/local/etc/probe"]) {
            assert.notEqual(inEdge(`echo x > ${at}`).status, 0, `the edge could write ${at}`);
        }
        // Its own folder it can write (that is where HAProxy makes its sockets).
        const probe = inEdge(`echo x > ${runInContainer}/probe && rm ${runInContainer}/probe`);
        assert.equal(probe.status, 0, probe.output);
    });
});
