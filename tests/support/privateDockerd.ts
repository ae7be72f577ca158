// Starts a dockerd of the test's own: its own socket, data-root, exec-root, pidfile and config file,
// with no bridge and no iptables so it never touches the host's networking or another daemon.
import { ChildProcess, spawn, execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

export interface PrivateDockerdOptions {
    /** Folder that holds everything of this daemon. Created if absent. */
    root: string;
    /** Initial content of its daemon.json; bridge none and iptables false are always added. */
    daemonJson?: Record<string, unknown>;
    /**
     * Command words put before `dockerd`, e.g. `["nsenter", "--net=/run/netns/x"]` to run the daemon
     * in a network namespace of the test's own (tests/support/netnsDockerd.ts). Default: none.
     */
    launcher?: string[];
}

export class PrivateDockerd {
    readonly root: string;
    readonly socket: string;
    readonly configFile: string;
    readonly pidFile: string;
    readonly logFile: string;
    private child?: ChildProcess;
    private readonly launcher: string[];

    constructor(options: PrivateDockerdOptions) {
        this.root = path.resolve(options.root);
        this.launcher = options.launcher ?? [];
        fs.mkdirSync(this.root, { recursive: true });
        this.socket = path.join(this.root, "docker.sock");
        this.configFile = path.join(this.root, "daemon.json");
        this.pidFile = path.join(this.root, "docker.pid");
        this.logFile = path.join(this.root, "dockerd.log");
        if (options.daemonJson !== undefined || !fs.existsSync(this.configFile)) {
            const json = { ...(options.daemonJson ?? {}), bridge: "none", iptables: false };
            fs.writeFileSync(this.configFile, JSON.stringify(json, null, 2) + "\n");
        }
    }

    /** DOCKER_HOST value for the docker CLI. */
    get host(): string {
        return `unix://${this.socket}`;
    }

    /** Environment for child processes that should talk to this daemon. */
    env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
        return { ...process.env, DOCKER_HOST: this.host, DOCKER_BUILDKIT: "1", ...extra };
    }

    /** The dockerd command line (also used by scripts under test as their "start" command). */
    commandLine(): string[] {
        return [
            ...this.launcher,
            "dockerd",
            "--config-file", this.configFile,
            "--data-root", path.join(this.root, "data"),
            "--exec-root", path.join(this.root, "exec"),
            "--pidfile", this.pidFile,
            "-H", this.host,
        ];
    }

    async start(timeoutMs = 30000): Promise<void> {
        const [cmd, ...args] = this.commandLine();
        const log = fs.openSync(this.logFile, "a");
        this.child = spawn(cmd, args, { stdio: ["ignore", log, log], detached: true });
        this.child.unref();
        await this.waitUntilAnswering(timeoutMs);
    }

    pid(): number | undefined {
        try {
            return Number(fs.readFileSync(this.pidFile, "utf8").trim()) || undefined;
        } catch {
            return undefined;
        }
    }

    answers(): boolean {
        try {
            execFileSync("docker", ["version", "--format", "{{.Server.Version}}"], {
                env: this.env(),
                stdio: "ignore",
                timeout: 5000,
            });
            return true;
        } catch {
            return false;
        }
    }

    async waitUntilAnswering(timeoutMs = 30000): Promise<void> {
        const deadline = Date.now() + timeoutMs;
        while (Date.now() < deadline) {
            if (this.answers()) return;
            await sleep(250);
        }
        throw new Error(`private dockerd in ${this.root} did not answer within ${timeoutMs} ms:\n${this.tail()}`);
    }

    docker(args: string[], options: { input?: string; timeoutMs?: number } = {}): string {
        return execFileSync("docker", args, {
            env: this.env(),
            input: options.input,
            encoding: "utf8",
            timeout: options.timeoutMs ?? 600000,
            maxBuffer: 64 * 1024 * 1024,
        });
    }

    tail(lines = 30): string {
        try {
            return fs.readFileSync(this.logFile, "utf8").split("\n").slice(-lines).join("\n");
        } catch {
            return "(no log)";
        }
    }

    async stop(timeoutMs = 30000): Promise<void> {
        const pid = this.pid();
        if (pid === undefined) return;
        try {
            process.kill(pid, "SIGTERM");
        } catch {
            return;
        }
        const deadline = Date.now() + timeoutMs;
        while (Date.now() < deadline) {
            try {
                process.kill(pid, 0);
            } catch {
                return;
            }
            await sleep(200);
        }
        process.kill(pid, "SIGKILL");
    }

    /** Removes every container, stops the daemon and unmounts what it left under its root. */
    async shutdown(): Promise<void> {
        try {
            const all = this.docker(["ps", "-a", "-q"]).trim();
            if (all) this.docker(["rm", "-f", ...all.split("\n")]);
        } catch {
            // the daemon may already be gone; stopping it below still runs
        }
        await this.stop();
        unmountUnder(this.root);
    }
}

/**
 * dockerd leaves mounts under its data-root when it was killed or live-restore kept containers;
 * they would make the folder impossible to remove. Failures are left for the next run.
 */
export function unmountUnder(root: string): void {
    const mounts = fs.readFileSync("/proc/mounts", "utf8").split("\n").map((line) => line.split(" ")[1] ?? "");
    for (const mountPoint of mounts.filter((m) => m.startsWith(root + "/")).reverse()) {
        try {
            execFileSync("umount", [mountPoint]);
        } catch {
            /* still busy: the next run's cleanup tries again */
        }
    }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
