import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { parseMaintenanceMap } from "../../lib/edgeControls";
import { hostNames } from "../../lib/hostNames";
import { logContainer } from "../../lib/logTarget";
import { InspectedContainer, parseEdgeStats, renderStatus, stackStatus } from "../../lib/stackStatus";
import { parseLogsArguments } from "../../tools/logs";
import { parseStatusArguments, splitHostReport } from "../../tools/status";

// Captured from the rehearsal's edge (HAProxy 2.6, `show stat medusa 4 -1`): green live, blue draining.
const STAT = fs.readFileSync(path.join(__dirname, "../fixtures/haproxy-show-stat.csv"), "utf8");
const names = hostNames("prod", "/var/lib/medusa-deploy/prod");
const now = new Date("2026-12-02T12:00:00Z");

function container(name: string, status = "running", health: string | undefined = "healthy", startedAt = "2026-12-02T11:00:00Z"): InspectedContainer {
    return { Name: `/${name}`, State: { Status: status, StartedAt: startedAt, ...(health ? { Health: { Status: health } } : {}) }, Config: { Image: `image-of-${name}` } };
}

const outputs = {
    live: "green",
    url: "https://shop.example.com",
    blue: { release: "A", image: "registry.example.com/shop@sha256:aaa", source: "built" },
    green: { release: "B", image: "registry.example.com/shop@sha256:bbb", source: "built" },
    lastBackup: { name: "prod-deploy-B-20261202T101500Z.dump", bytes: 4096 },
};

const healthyHost = (): InspectedContainer[] => [
    container(names.server("green")), container(names.worker("green"), "running", undefined),
    container(names.server("blue")), container(names.worker("blue"), "exited", undefined),
    container(names.edge, "running", undefined), container(names.postgres), container(names.redis), container(names.dailyBackup),
];

describe("npm run status: the report", () => {
    it("reads HAProxy's show stat by column name", () => {
        const stats = parseEdgeStats(STAT, "medusa");
        assert.deepEqual([...stats.keys()], ["blue", "green"]);
        assert.equal(stats.get("green")?.status, "UP");
        assert.equal(stats.get("blue")?.status, "DRAIN");
        assert.equal(stats.get("blue")?.check, "L7OK");
        assert.ok((stats.get("blue")?.requests ?? 0) > 0);
        assert.equal(parseEdgeStats("", "medusa").size, 0, "an edge that did not answer: no servers");
    });

    it("a healthy stack: both colours with release, image and uptime, no problems", () => {
        const status = stackStatus({ stack: "prod", names, outputs, inspected: healthyHost(), edgeStats: parseEdgeStats(STAT, "medusa"), now });
        assert.deepEqual(status.problems, []);
        assert.equal(status.live, "green");
        const green = status.colours.find((c) => c.colour === "green");
        assert.equal(green?.live, true);
        assert.equal(green?.release, "B");
        assert.equal(green?.server.uptimeSeconds, 3600);
        assert.equal(status.colours.find((c) => c.colour === "blue")?.worker.state, "exited", "the idle colour's worker is stopped, as the handover leaves it");
        const text = renderStatus(status);
        assert.match(text, /^stack prod at https:\/\/shop\.example\.com: live green$/m);
        assert.match(text, /^green \(live\): release B \(built\)$/m);
        assert.match(text, /medusa-prod-green-server: running, healthy, up 60m/);
        assert.match(text, /^ok: the live colour is healthy/m);
    });

    it("names every problem of the live colour and the services, and ignores the idle colour's", () => {
        const host = healthyHost().map((c) => {
            if (c.Name === `/${names.server("green")}`) return container(names.server("green"), "running", "unhealthy");
            if (c.Name === `/${names.dailyBackup}`) return container(names.dailyBackup, "running", "unhealthy");
            if (c.Name === `/${names.server("blue")}`) return container(names.server("blue"), "exited", undefined);
            return c;
        }).filter((c) => c.Name !== `/${names.redis}`);
        const downStat = STAT.replace(/^medusa,green,(.*?),UP,/m, "medusa,green,$1,DOWN,");
        const status = stackStatus({ stack: "prod", names, outputs, inspected: host, edgeStats: parseEdgeStats(downStat, "medusa"), now });
        assert.deepEqual(status.problems, [
            "the live colour's server medusa-prod-green-server is unhealthy",
            "the edge sees the live colour's server as DOWN (last check L7OK)",
            "medusa-prod-daily-backup is unhealthy (its last backup failed: docker logs medusa-prod-daily-backup)",
        ]);
        // Redis missing from the host is not a container of this stack then (an external redisUrl): not listed.
        assert.ok(!status.services.some((s) => s.name === names.redis));
        const noEdge = stackStatus({ stack: "prod", names, outputs, inspected: healthyHost().filter((c) => c.Name !== `/${names.edge}`), edgeStats: new Map(), now });
        assert.ok(noEdge.problems.includes("medusa-prod-edge is missing"));
        assert.ok(noEdge.problems.includes("the edge does not answer, or has no server green"));
        const never = stackStatus({ stack: "prod", names, outputs: {}, inspected: [], edgeStats: new Map(), now });
        assert.match(never.problems[0], /has no live colour in its outputs/);
    });

    it("splits the host script's report, and refuses anything else", () => {
        const report = splitHostReport(`--- inspect\n${JSON.stringify([container("x")])}\n--- stat\n${STAT}`);
        assert.equal(report.inspected[0].Name, "/x");
        assert.match(report.statCsv, /^# pxname/);
        assert.throws(() => splitHostReport("permission denied"), /printed no report/);
        assert.equal(report.maintenanceMap, undefined, "an older host script without the map sections");

        const withMaps = splitHostReport(`--- inspect\n[]\n--- stat\n${STAT}--- maintenance\n0x55d0 mode hold\n0x55d1 hold 45\n\n--- preview\ngreen\n`);
        assert.doesNotMatch(withMaps.statCsv, /---/, "each section ends where the next begins");
        assert.deepEqual(parseMaintenanceMap(withMaps.maintenanceMap ?? ""), { mode: "hold", holdSeconds: 45 });
        assert.deepEqual(withMaps.previewColours, ["green"]);
    });

    it("a release staged by manual promotion is named with the command that makes it live", () => {
        const status = stackStatus({ stack: "prod", names, outputs: { ...outputs, awaitingSwitch: "blue" }, inspected: healthyHost(), edgeStats: parseEdgeStats(STAT, "medusa"), now });
        assert.equal(status.awaitingSwitch, "blue");
        assert.deepEqual(status.problems, []);
        assert.match(renderStatus(status), /^staged: blue waits for `npm run switch -- --stack prod`/m);
        assert.equal(stackStatus({ stack: "prod", names, outputs, inspected: healthyHost(), edgeStats: new Map(), now }).awaitingSwitch, undefined);
    });

    it("maintenance at the edge is a problem a monitor should see; the preview route is shown, not a problem", () => {
        const base = { stack: "prod", names, outputs, inspected: healthyHost(), edgeStats: parseEdgeStats(STAT, "medusa"), now };
        const off = stackStatus({ ...base, edgeControls: { maintenance: { mode: "off", holdSeconds: 30 }, previewColours: ["blue"] } });
        assert.deepEqual(off.problems, []);
        assert.match(renderStatus(off), /^maintenance: off; preview: cookie to blue$/m);
        const page = stackStatus({ ...base, edgeControls: { maintenance: { mode: "page", holdSeconds: 30 }, previewColours: [] } });
        assert.deepEqual(page.problems, ["maintenance mode is on: visitors get the maintenance page (npm run maintenance -- --stack prod off)"]);
        assert.match(renderStatus(page), /^maintenance: page; preview: off$/m);
        const hold = stackStatus({ ...base, edgeControls: { maintenance: { mode: "hold", holdSeconds: 45 }, previewColours: [] } });
        assert.match(hold.problems[0], /^maintenance hold is on/);
        assert.match(renderStatus(hold), /^maintenance: hold \(up to 45 s\); preview: off$/m);
    });
});

describe("npm run status and logs: arguments and containers", () => {
    it("status needs a stack; --json is a switch", () => {
        assert.deepEqual(parseStatusArguments(["--stack", "prod", "--json"]).json, true);
        assert.throws(() => parseStatusArguments(["--json"]), /--stack is required/);
        assert.throws(() => parseStatusArguments(["--stack"]), /unknown or incomplete argument/);
    });

    it("logs: the live colour's server by default, any role or colour by name, clear errors otherwise", () => {
        const args = parseLogsArguments(["--stack", "prod"]);
        assert.deepEqual([args.role, args.colour, args.follow, args.tail], ["server", undefined, false, 200]);
        assert.equal(logContainer(names, "server", undefined, "green"), "medusa-prod-green-server");
        assert.equal(logContainer(names, "worker", "blue", "green"), "medusa-prod-blue-worker");
        assert.equal(logContainer(names, "daily-backup", undefined, undefined), "medusa-prod-daily-backup");
        assert.equal(logContainer(names, "edge", undefined, undefined), "medusa-prod-edge");
        assert.throws(() => logContainer(names, "server", undefined, undefined), /no live colour recorded: name one with --colour/);
        assert.throws(() => logContainer(names, "migration", "blue", "blue"), /removed when it ends: its output is in the `pulumi up` output/);
        assert.throws(() => parseLogsArguments(["--stack", "prod", "--role", "database"]), /--role must be one of server, worker, edge/);
        assert.throws(() => parseLogsArguments(["--stack", "prod", "--colour", "red"]), /--colour must be blue or green/);
        assert.throws(() => parseLogsArguments(["--stack", "prod", "--tail", "0"]), /--tail must be a whole number/);
        assert.equal(parseLogsArguments(["--stack", "prod", "-f", "--tail", "5"]).follow, true);
    });
});
