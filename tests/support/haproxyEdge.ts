// A real HAProxy edge for tests: Debian's haproxy binary run in the foreground with a config from
// lib/haproxyConfig.ts, laid out as on a docker host (host/traffic-switch.sh's header): <dir>/edge
// holds haproxy.cfg and the server-state file, <dir>/edge-control the switch's lock and files,
// <dir>/edge-run the admin and operator sockets. Plus a way to run host/traffic-switch.sh against it
// (asynchronously, so load in the same process keeps flowing), verifying through the operator socket.
import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { ADMIN_ASSETS, ASSETS_MAP_NAME, edgeControlFiles, MAINTENANCE_MAP_NAME, PREVIEW_MAP_NAME } from "../../lib/edgeControls";
import { EDGE_BACKEND_NAME, EdgeConfigInput, renderHaproxyConfig } from "../../lib/haproxyConfig";
import { Colour } from "../../lib/colour";
import { runShellScript } from "./runShellScript";

export const SWITCH_SCRIPT = path.resolve(__dirname, "../../host/traffic-switch.sh");
export const MAINTENANCE_SCRIPT = path.resolve(__dirname, "../../host/edge-maintenance.sh");
export const PREVIEW_SCRIPT = path.resolve(__dirname, "../../host/edge-preview.sh");

/** A free TCP port on 127.0.0.1 (released again; the race with other processes is acceptable). */
export async function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const server = net.createServer();
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => {
            const { port } = server.address() as net.AddressInfo;
            server.close(() => resolve(port));
        });
    });
}

export interface ServerRuntimeState {
    /** 0 stopped, 1 starting, 2 running, 3 stopping. */
    opState: number;
    /** SRV_ADMF_* bits: 0x01 forced maintenance, 0x08 forced drain, 0x20 resolution maintenance. */
    adminState: number;
    userWeight: number;
}

/** Parses a `show servers state` dump (also the server-state file) into backend/server states. */
export function parseServerStates(dump: string, backend = EDGE_BACKEND_NAME): Partial<Record<Colour, ServerRuntimeState>> {
    const states: Partial<Record<Colour, ServerRuntimeState>> = {};
    for (const line of dump.split("\n")) {
        const f = line.trim().split(/\s+/);
        if (f.length < 9 || f[0].startsWith("#") || f[1] !== backend) continue;
        if (f[3] !== "blue" && f[3] !== "green") continue;
        states[f[3]] = { opState: Number(f[5]), adminState: Number(f[6]), userWeight: Number(f[7]) };
    }
    return states;
}

/** Colours that take new requests by admin intent (neither forced drain nor forced maintenance). */
export function routedColours(states: Partial<Record<Colour, ServerRuntimeState>>): Colour[] {
    return (["blue", "green"] as const).filter((c) => states[c] !== undefined && (states[c]!.adminState & 0x09) === 0);
}

export interface SwitchResult {
    code: number | null;
    stdout: string;
    stderr: string;
    startedAt: number;
    endedAt: number;
}

export interface HaproxyEdgeOptions {
    /** Also bind the operator frontend on 127.0.0.1:<port>, for the switch's VERIFY_URL-only mode. */
    operatorTcpPort?: number;
    /** The switch script runSwitch runs (e.g. the text a host receives, written to a file). @default SWITCH_SCRIPT */
    switchScript?: string;
    /**
     * Render the production edge's runtime controls (maintenance, preview, asset continuity) and lay
     * out their files as install-edge-config.sh does.
     */
    controls?: boolean;
}

/** The switch's VERIFY_URL through the operator socket: curl ignores the host part. */
export const operatorUrl = (urlPath: string): string => `http://edge${urlPath}`;

export class HaproxyEdge {
    /** The config folder (haproxy.cfg, server-state), 0755. */
    readonly edgeDir: string;
    /** The switch's lock, backups and temporary files, 0700; the edge never reads it. */
    readonly controlDir: string;
    /** The edge's sockets, 0700. */
    readonly runDir: string;
    readonly configFile: string;
    readonly adminSocket: string;
    /** The operator frontend's socket: the only way to responses carrying the colour header. */
    readonly operatorSocket: string;
    readonly stateFile: string;
    readonly logFile: string;
    /** TMPDIR of the switch script's runs: it must not use it (its files go to controlDir). */
    readonly tempDir: string;
    readonly baseUrl: string;
    /** http://127.0.0.1:<operatorTcpPort> when the operator frontend also listens on TCP. */
    readonly operatorTcpUrl?: string;
    private readonly switchScript: string;
    private child?: ChildProcess;

    constructor(
        readonly dir: string,
        readonly port: number,
        servers: Record<Colour, { address: string }>,
        extra: Partial<EdgeConfigInput> = {},
        options: HaproxyEdgeOptions = {},
    ) {
        fs.mkdirSync(dir, { recursive: true });
        this.edgeDir = path.join(dir, "edge");
        this.controlDir = path.join(dir, "edge-control");
        this.runDir = path.join(dir, "edge-run");
        for (const [folder, mode] of [[this.edgeDir, 0o755], [this.controlDir, 0o700], [this.runDir, 0o700]] as const) {
            fs.mkdirSync(folder, { recursive: true });
            fs.chmodSync(folder, mode);
        }
        this.configFile = path.join(this.edgeDir, "haproxy.cfg");
        this.adminSocket = path.join(this.runDir, "admin.sock");
        this.operatorSocket = path.join(this.runDir, "operator.sock");
        this.stateFile = path.join(this.edgeDir, "server-state");
        this.logFile = path.join(dir, "haproxy.log");
        this.tempDir = path.join(dir, "tmp");
        fs.mkdirSync(this.tempDir, { recursive: true });
        this.baseUrl = `http://127.0.0.1:${port}`;
        this.switchScript = options.switchScript ?? SWITCH_SCRIPT;
        const controlFiles = options.controls ? edgeControlFiles(this.edgeDir) : undefined;
        if (controlFiles) {
            for (const file of controlFiles.sideFiles) fs.writeFileSync(path.join(this.edgeDir, file.name), file.content, { mode: 0o644 });
            fs.writeFileSync(path.join(this.edgeDir, MAINTENANCE_MAP_NAME), "mode off\n", { mode: 0o644 });
            fs.writeFileSync(path.join(this.edgeDir, PREVIEW_MAP_NAME), "", { mode: 0o644 });
            fs.writeFileSync(path.join(this.edgeDir, ASSETS_MAP_NAME), "", { mode: 0o644 });
        }
        let config = renderHaproxyConfig({
            bindAddress: "127.0.0.1",
            bindPort: port,
            servers,
            adminSocketPath: this.adminSocket,
            operatorSocketPath: this.operatorSocket,
            stateFilePath: this.stateFile,
            ...(controlFiles ? { controls: controlFiles, assets: { paths: [ADMIN_ASSETS.urlPrefix], map: path.join(this.edgeDir, ASSETS_MAP_NAME) } } : {}),
            ...extra,
        });
        if (options.operatorTcpPort !== undefined) {
            const bind = `    bind ${this.operatorSocket} mode 600\n`;
            if (!config.includes(bind)) throw new Error("the rendered config has no operator socket bind line");
            config = config.replace(bind, `${bind}    bind 127.0.0.1:${options.operatorTcpPort}\n`);
            this.operatorTcpUrl = `http://127.0.0.1:${options.operatorTcpPort}`;
        }
        fs.writeFileSync(this.configFile, config, { mode: 0o644 });
    }

    /** Starts haproxy in the foreground and waits until its admin socket and port answer. */
    async start(): Promise<void> {
        if (this.child) throw new Error("edge already running");
        const log = fs.openSync(this.logFile, "a");
        const child = spawn("haproxy", ["-db", "-f", this.configFile], { stdio: ["ignore", log, log] });
        fs.closeSync(log);
        this.child = child;
        const deadline = Date.now() + 10_000;
        for (;;) {
            if (child.exitCode !== null) throw new Error(`haproxy exited with ${child.exitCode}: ${fs.readFileSync(this.logFile, "utf8")}`);
            try {
                await this.admin("show info");
                await new Promise<void>((resolve, reject) => {
                    const socket = net.connect(this.port, "127.0.0.1", () => {
                        socket.end();
                        resolve();
                    });
                    socket.on("error", reject);
                });
                return;
            } catch {
                if (Date.now() > deadline) throw new Error(`haproxy did not come up: ${fs.readFileSync(this.logFile, "utf8")}`);
                await new Promise((resolve) => setTimeout(resolve, 50));
            }
        }
    }

    /** Hard stop (SIGTERM, like `docker stop`), waiting for the process to exit. */
    async stop(): Promise<void> {
        const child = this.child;
        if (!child) return;
        this.child = undefined;
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(timer);
    }

    /** One admin-socket command; resolves with HAProxy's answer. */
    admin(command: string): Promise<string> {
        return new Promise((resolve, reject) => {
            let answer = "";
            const socket = net.connect(this.adminSocket, () => socket.write(`${command}\n`));
            socket.setEncoding("utf8");
            socket.on("data", (chunk: string) => (answer += chunk));
            socket.on("end", () => resolve(answer));
            socket.on("error", reject);
            socket.setTimeout(5000, () => socket.destroy(new Error(`admin command timed out: ${command}`)));
        });
    }

    async serverStates(): Promise<Partial<Record<Colour, ServerRuntimeState>>> {
        return parseServerStates(await this.admin(`show servers state ${EDGE_BACKEND_NAME}`));
    }

    /** Waits until HAProxy's health checks see `colour` as up (op_state 2) or down. */
    async waitForHealth(colour: Colour, up: boolean, timeoutMs = 8000): Promise<void> {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
            const state = (await this.serverStates())[colour];
            if (state !== undefined && (state.opState === 2) === up) return;
            if (Date.now() > deadline) throw new Error(`${colour} did not become ${up ? "up" : "down"}: ${JSON.stringify(state)}`);
            await new Promise((resolve) => setTimeout(resolve, 100));
        }
    }

    /** Runs one of the edge's control scripts (edge-maintenance.sh, edge-preview.sh) against this edge. */
    runControl(script: string, env: Record<string, string>): Promise<import("./runShellScript").ScriptRun> {
        return runShellScript(script, {
            env: {
                PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
                TMPDIR: this.tempDir,
                EDGE_ADMIN_SOCKET: this.adminSocket,
                EDGE_DIR: this.edgeDir,
                EDGE_CONTROL_DIR: this.controlDir,
                ...env,
            },
        });
    }

    /**
     * Runs host/traffic-switch.sh with dash against this edge; `terminateAfterMs` sends it SIGTERM.
     * The post-switch watch is off unless `env` sets WATCH_SECONDS (the script's own default is 30 s).
     * Verification goes through the operator socket (VERIFY_UNIX_SOCKET), as components/trafficSwitch.ts
     * does; `env` may set VERIFY_UNIX_SOCKET to "" for the VERIFY_URL-only mode.
     */
    async runSwitch(target: string, env: Record<string, string> = {}, terminate?: number | { stdout: RegExp; afterMs: number }): Promise<SwitchResult> {
        const startedAt = performance.now();
        const run = await runShellScript(this.switchScript, {
            env: {
                PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
                TMPDIR: this.tempDir,
                EDGE_ADMIN_SOCKET: this.adminSocket,
                EDGE_STATE_FILE: this.stateFile,
                EDGE_CONTROL_DIR: this.controlDir,
                TARGET_COLOUR: target,
                VERIFY_UNIX_SOCKET: this.operatorSocket,
                VERIFY_URL: operatorUrl("/health"),
                VERIFY_TIMEOUT: "10",
                HEALTH_WAIT_TIMEOUT: "3",
                WATCH_SECONDS: "0",
                ...env,
            },
            ...(typeof terminate === "number" ? { terminateAfterMs: terminate } : terminate ? { terminateWhen: terminate } : {}),
        });
        return { code: run.status, stdout: run.stdout, stderr: run.stderr, startedAt, endedAt: performance.now() };
    }
}
