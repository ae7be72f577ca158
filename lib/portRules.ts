// Host ports a stack publishes or connects to must be distinct and must not be ones that a docker host
// already uses for its own services: publishing there either fails at `docker run` halfway through a
// deploy, or (with the port free at that moment) shadows the service for everything that connects.
import { PROJECT_NAME } from "./configSchema";

/** Ports of services a docker host commonly runs, with what they are. */
export const WELL_KNOWN_HOST_PORTS: ReadonlyMap<number, string> = new Map([
    [22, "ssh"],
    [25, "SMTP mail"],
    [53, "DNS"],
    [67, "DHCP"],
    [68, "DHCP"],
    [111, "rpcbind"],
    [123, "NTP"],
    [631, "CUPS printing"],
    [2375, "the Docker API (plain)"],
    [2376, "the Docker API (TLS)"],
    [2377, "Docker swarm management"],
    [2379, "etcd"],
    [2380, "etcd peers"],
    [3306, "MySQL"],
    [4789, "Docker overlay networking (VXLAN)"],
    [5353, "mDNS"],
    [5432, "PostgreSQL"],
    [6379, "Redis"],
    [6443, "the Kubernetes API"],
    [7946, "Docker swarm gossip"],
    [9323, "dockerd metrics"],
    [10250, "the kubelet"],
    [11211, "memcached"],
    [27017, "MongoDB"],
]);

export interface PortUse {
    /** The setting the port comes from, without the project prefix. */
    setting: string;
    port: number;
    /** What uses it, for the message, e.g. "the edge". */
    what: string;
    /** A good value, for the message, e.g. "e.g. 8080 behind a proxy or 80/443 to serve directly". */
    suggestion?: string;
    /** A port that is given (the ssh port in the host URL): only ever the other side of a collision. */
    fixed?: boolean;
}

export interface PortProblem {
    setting: string;
    message: string;
}

/** Collisions between the ports of one stack, and ports of well-known host services. */
export function portProblems(uses: readonly PortUse[]): PortProblem[] {
    const problems: PortProblem[] = [];
    for (const use of uses) {
        if (use.fixed) continue;
        const service = WELL_KNOWN_HOST_PORTS.get(use.port);
        const ssh = uses.find((other) => other.fixed && other.port === use.port);
        if (service && !ssh) {
            problems.push({
                setting: use.setting,
                message: `is ${use.port}, the port of ${service} on a docker host: ${use.what} would fail to publish there or shadow that service. Choose a free port${use.suggestion ? `, ${use.suggestion}` : ""}`,
            });
        }
    }
    for (let i = 0; i < uses.length; i++) {
        for (let j = i + 1; j < uses.length; j++) {
            const [a, b] = [uses[i], uses[j]];
            if (a.port !== b.port) continue;
            const mine = a.fixed ? b : a;
            const other = a.fixed ? a : b;
            problems.push({
                setting: mine.setting,
                message: `is ${mine.port}, the same port as ${other.what} (${PROJECT_NAME}:${other.setting}): one host port serves one thing. Choose a different port${mine.suggestion ? `, ${mine.suggestion}` : ""}`,
            });
        }
    }
    return problems;
}
