// A private dockerd inside a network namespace of the test's own, so its bridge networks, veth pairs,
// docker-proxy listeners and published ports never appear on the host (nor clash with another
// helper's daemon). The daemon keeps the host's mount namespace (`nsenter --net` only, not
// `ip netns exec`, whose fresh /sys hides the cgroup mounts and makes dockerd refuse to start).
// Measured here with dockerd 20.10: a user-defined bridge network and Docker's embedded DNS
// (127.0.0.11) work with "iptables": false, because the DNS redirect rules live inside each
// container's own namespace; the host's iptables are never touched. Published ports listen inside
// the namespace, so HTTP clients run there too (exec/spawn below).
//
// Upstream DNS: the embedded DNS forwards names it does not know (a colour that does not exist yet)
// to the daemon's upstream servers. Inside a namespace with no way out they time out, and dockerd
// 20.10's embedded DNS then sends no answer at all: every lookup of an unknown name takes the
// client's full timeout (5 s per try for glibc; HAProxy's start-up `init-addr libc` waited >20 s
// for two absent colours). A host with a working upstream gets NXDOMAIN at once. So the namespace
// gets a tiny upstream that answers NXDOMAIN to everything, on an address of its loopback that the
// containers reach through their gateway (a loopback upstream such as 127.0.0.1 would be dialled
// from inside each container, where nothing listens).
export const UPSTREAM_DNS_ADDRESS = "10.53.0.53";

// Answers every query with NXDOMAIN (header copied, QR+RA set, question kept, no records).
const NXDOMAIN_DNS_SCRIPT = `
const dgram = require("node:dgram");
const socket = dgram.createSocket("udp4");
socket.on("message", (query, peer) => {
  if (query.length < 12) return;
  let end = 12;
  while (end < query.length && query[end] !== 0) end += query[end] + 1;
  end = Math.min(end + 5, query.length);
  const reply = Buffer.from(query.subarray(0, end));
  reply[2] = 0x80 | (query[2] & 0x79);
  reply[3] = 0x80 | 3;
  reply.writeUInt16BE(Math.min(query.readUInt16BE(4), 1), 4);
  reply.writeUInt16BE(0, 6); reply.writeUInt16BE(0, 8); reply.writeUInt16BE(0, 10);
  socket.send(reply, peer.port, peer.address);
});
socket.bind(53, process.env.DNS_ADDRESS, () => console.log("ready"));
`;
import { ChildProcess, execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import { PrivateDockerd, sleep } from "./privateDockerd";

export interface CommandResult {
    code: number | null;
    stdout: string;
    stderr: string;
    durationMs: number;
}

export class NetnsDockerd {
    readonly dockerd: PrivateDockerd;
    readonly netnsPath: string;

    constructor(
        readonly netns: string,
        root: string,
        daemonJson: Record<string, unknown> = {},
    ) {
        this.netnsPath = `/run/netns/${netns}`;
        this.dockerd = new PrivateDockerd({ root, daemonJson: { dns: [UPSTREAM_DNS_ADDRESS], ...daemonJson }, launcher: ["nsenter", `--net=${this.netnsPath}`] });
    }

    private upstreamDns?: ChildProcess;

    /** Creates the namespace (loopback up) and starts the daemon in it; clears leftovers of an aborted run first. */
    async start(timeoutMs = 60000): Promise<void> {
        await this.stop();
        execFileSync("ip", ["netns", "add", this.netns]);
        this.exec("ip", ["link", "set", "lo", "up"]);
        this.exec("ip", ["addr", "add", `${UPSTREAM_DNS_ADDRESS}/32`, "dev", "lo"]);
        await this.startUpstreamDns();
        await this.dockerd.start(timeoutMs);
    }

    private startUpstreamDns(): Promise<void> {
        const child = this.spawn(process.execPath, ["-e", NXDOMAIN_DNS_SCRIPT], { ...process.env, DNS_ADDRESS: UPSTREAM_DNS_ADDRESS });
        this.upstreamDns = child;
        return new Promise((resolve, reject) => {
            let output = "";
            const timer = setTimeout(() => reject(new Error(`the namespace's upstream DNS did not start: ${output}`)), 10000);
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
                reject(new Error(`the namespace's upstream DNS exited (${code}): ${output}`));
            });
        });
    }

    /** argv prefix that runs a command in the namespace. */
    prefix(): string[] {
        return ["nsenter", `--net=${this.netnsPath}`];
    }

    /** Runs a command in the namespace and returns its stdout; throws on a non-zero exit. */
    exec(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): string {
        return execFileSync(this.prefix()[0], [...this.prefix().slice(1), command, ...args], {
            encoding: "utf8",
            env: options.env ?? process.env,
            input: options.input,
            timeout: options.timeoutMs ?? 60000,
            maxBuffer: 16 * 1024 * 1024,
        });
    }

    /** Starts a command in the namespace without waiting (for load clients). */
    spawn(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
        return spawn(this.prefix()[0], [...this.prefix().slice(1), command, ...args], { env, stdio: ["pipe", "pipe", "pipe"] });
    }

    /** Runs a command in the namespace to its end without blocking the event loop; never throws on exit codes. */
    run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 120000): Promise<CommandResult> {
        const started = Date.now();
        return new Promise((resolve, reject) => {
            const child = this.spawn(command, args, env);
            child.stdin?.end();
            let stdout = "";
            let stderr = "";
            child.stdout?.on("data", (c: Buffer) => (stdout += c.toString()));
            child.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
            const timer = setTimeout(() => child.kill("SIGTERM"), timeoutMs);
            child.on("error", (error) => {
                clearTimeout(timer);
                reject(error);
            });
            child.on("close", (code) => {
                clearTimeout(timer);
                resolve({ code, stdout, stderr, durationMs: Date.now() - started });
            });
        });
    }

    /**
     * Removes every container, stops the daemon, ends what still runs in the namespace (only
     * processes this suite started there: the daemon's shims and docker-proxy) and deletes it.
     */
    async stop(): Promise<void> {
        if (this.dockerd.answers()) {
            const ids = this.dockerd.docker(["ps", "-aq"]).split("\n").filter(Boolean);
            if (ids.length > 0) {
                try {
                    this.dockerd.docker(["rm", "-f", ...ids], { timeoutMs: 60000 });
                } catch {
                    // the daemon's stop below ends them anyway
                }
            }
        }
        await this.dockerd.stop(30000);
        if (this.upstreamDns && this.upstreamDns.exitCode === null) {
            const exited = new Promise((resolve) => this.upstreamDns!.once("exit", resolve));
            this.upstreamDns.kill("SIGTERM");
            await exited;
        }
        this.upstreamDns = undefined;
        if (!fs.existsSync(this.netnsPath)) return;
        for (let attempt = 0; attempt < 20; attempt++) {
            const pids = execFileSync("ip", ["netns", "pids", this.netns], { encoding: "utf8" }).split("\n").filter(Boolean).map(Number);
            if (pids.length === 0) break;
            for (const pid of pids) {
                try {
                    process.kill(pid, attempt < 10 ? "SIGTERM" : "SIGKILL");
                } catch {
                    // already gone
                }
            }
            await sleep(250);
        }
        execFileSync("ip", ["netns", "del", this.netns]);
    }
}
