import { strict as assert } from "node:assert";
import {
    COLOUR_HEADER,
    EDGE_BACKEND_NAME,
    EDGE_FRONTEND_NAME,
    EDGE_OPERATOR_FRONTEND_NAME,
    EDGE_RESOLVERS_NAME,
    EdgeConfigInput,
    renderHaproxyConfig,
} from "../../lib/haproxyConfig";

const dockerInput: EdgeConfigInput = {
    bindAddress: "0.0.0.0",
    bindPort: 8080,
    servers: { blue: { address: "medusa-prod-blue-server:9000" }, green: { address: "medusa-prod-green-server:9000" } },
    adminSocketPath: "/var/run/edge/admin.sock",
    operatorSocketPath: "/var/run/edge/operator.sock",
    stateFilePath: "/var/run/edge/server-state",
    resolver: { nameserver: "127.0.0.11:53" },
};

const loopbackInput: EdgeConfigInput = {
    bindAddress: "127.0.0.1",
    bindPort: 18480,
    servers: { blue: { address: "127.0.0.2:18481" }, green: { address: "127.0.0.3:18482" } },
    adminSocketPath: "/tmp/edge/admin.sock",
    operatorSocketPath: "/tmp/edge/operator.sock",
    stateFilePath: "/tmp/edge/server-state",
};

/** The lines of one section (from its header line to the next blank line), trimmed. */
function section(config: string, header: string): string[] {
    const lines = config.split("\n");
    const start = lines.indexOf(header);
    assert.notEqual(start, -1, `no section "${header}" in:\n${config}`);
    const end = lines.indexOf("", start);
    return lines.slice(start + 1, end === -1 ? undefined : end).map((l) => l.trim());
}

describe("renderHaproxyConfig", () => {
    it("names the answering colour only on the operator frontend, bound to a UNIX socket", () => {
        const config = renderHaproxyConfig(dockerInput);
        const operator = section(config, `frontend ${EDGE_OPERATOR_FRONTEND_NAME}`);
        assert.deepEqual(operator.filter((l) => l.startsWith("bind ")), ["bind /var/run/edge/operator.sock mode 600"]);
        assert.ok(operator.includes(`http-response set-header ${COLOUR_HEADER} %[srv_name]`));
        assert.ok(section(config, `frontend ${EDGE_FRONTEND_NAME}`).includes(`http-response del-header ${COLOUR_HEADER}`));
        assert.ok(!section(config, `backend ${EDGE_BACKEND_NAME}`).some((l) => l.includes(COLOUR_HEADER)));
        assert.throws(() => renderHaproxyConfig({ ...dockerInput, operatorSocketPath: "relative.sock" }), /operatorSocketPath "relative.sock" is invalid/);
    });

    it("refuses client limits that are not whole numbers of at least 1", () => {
        assert.throws(() => renderHaproxyConfig({ ...dockerInput, clientLimits: { connections: 0 } }), /clientLimits\.connections 0 is invalid/);
        assert.throws(() => renderHaproxyConfig({ ...dockerInput, clientLimits: { requestsPer10s: 2.5 } }), /clientLimits\.requestsPer10s 2\.5 is invalid/);
        assert.match(renderHaproxyConfig({ ...dockerInput, clientLimits: { connections: 7 } }), /tcp-request connection reject if \{ sc_conn_cur\(0\) gt 7 \}/);
    });

    it("exposes the admin socket and loads the persisted server state at start", () => {
        const config = renderHaproxyConfig(dockerInput);
        const global = section(config, "global");
        assert.ok(global.includes("stats socket /var/run/edge/admin.sock mode 600 level admin expose-fd listeners"));
        assert.ok(global.includes("server-state-file /var/run/edge/server-state"));
        assert.ok(section(config, "defaults").includes("load-server-state-from-file global"));
    });

    it("health-checks both colours with /health every second, two checks to change state", () => {
        const backend = section(renderHaproxyConfig(loopbackInput), `backend ${EDGE_BACKEND_NAME}`);
        assert.ok(backend.includes("option httpchk GET /health"));
        assert.ok(backend.includes("http-check expect status 200"));
        assert.ok(backend.includes("server blue 127.0.0.2:18481 check inter 1s fall 2 rise 2 init-addr libc,last,none"));
        assert.ok(backend.includes("server green 127.0.0.3:18482 check inter 1s fall 2 rise 2 init-addr libc,last,none"));
    });

    it("re-resolves container names through Docker's DNS so a replaced or late colour is found", () => {
        const config = renderHaproxyConfig(dockerInput);
        assert.ok(section(config, `resolvers ${EDGE_RESOLVERS_NAME}`).includes("nameserver dns1 127.0.0.11:53"));
        const backend = section(config, `backend ${EDGE_BACKEND_NAME}`);
        assert.ok(
            backend.includes(
                `server green medusa-prod-green-server:9000 check inter 1s fall 2 rise 2 resolvers ${EDGE_RESOLVERS_NAME} resolve-prefer ipv4 init-addr libc,last,none`,
            ),
        );
        assert.doesNotMatch(renderHaproxyConfig(loopbackInput), /resolvers/);
    });

    it("has no notion of a live colour: both servers are declared alike, none disabled, drained or weighted", () => {
        const backend = section(renderHaproxyConfig(dockerInput), `backend ${EDGE_BACKEND_NAME}`);
        const servers = backend.filter((l) => l.startsWith("server "));
        assert.equal(servers.length, 2);
        assert.equal(servers[0].replace(/blue/g, "COLOUR"), servers[1].replace(/green/g, "COLOUR"));
        for (const line of servers) assert.doesNotMatch(line, /\b(disabled|backup|weight|drain)\b/);
    });

    it("is deterministic", () => {
        assert.equal(renderHaproxyConfig(dockerInput), renderHaproxyConfig({ ...dockerInput }));
    });

    it("sets forwarding headers; trusts X-Forwarded-Proto only from listed proxies", () => {
        const plain = section(renderHaproxyConfig(loopbackInput), "frontend medusa_edge");
        assert.ok(plain.includes("http-request set-header X-Forwarded-Proto http"));
        assert.ok(section(renderHaproxyConfig(loopbackInput), "defaults").includes("option forwardfor"));
        const behindNginx = section(renderHaproxyConfig({ ...loopbackInput, trustedProxies: ["10.0.0.0/8", "127.0.0.1"] }), "frontend medusa_edge");
        assert.ok(behindNginx.includes("acl from_trusted_proxy src 10.0.0.0/8 127.0.0.1"));
        assert.ok(behindNginx.includes("http-request del-header X-Forwarded-Proto if !from_trusted_proxy"));
        assert.ok(behindNginx.includes("http-request del-header X-Real-IP"), "only X-Forwarded-For/-Proto/-Host are kept from a trusted proxy");
        // What reaches the app from clients and from proxies: tests/host/edgeHeaders.test.ts, on a real HAProxy.
    });

    it("uses long server/client timeouts by default and accepts overrides", () => {
        const defaults = section(renderHaproxyConfig(loopbackInput), "defaults");
        for (const line of ["timeout connect 5s", "timeout client 5m", "timeout server 5m", "timeout tunnel 1h"]) {
            assert.ok(defaults.includes(line), line);
        }
        const custom = section(renderHaproxyConfig({ ...loopbackInput, timeouts: { server: "15m" }, maxconn: 20000 }), "defaults");
        assert.ok(custom.includes("timeout server 15m"));
        assert.ok(custom.includes("timeout client 5m"));
        assert.ok(section(renderHaproxyConfig({ ...loopbackInput, maxconn: 20000 }), "global").includes("maxconn 20000"));
    });

    it("binds where asked and answers its own liveness path", () => {
        const frontend = section(renderHaproxyConfig(dockerInput), "frontend medusa_edge");
        assert.ok(frontend.includes("bind 0.0.0.0:8080"));
        assert.ok(frontend.some((l) => l.startsWith("http-request return status 200") && l.includes("/__edge/health")));
        assert.ok(frontend.includes(`default_backend ${EDGE_BACKEND_NAME}`));
    });

    it("sends an asset path to the colour its map names, only when the map names one, and retries nothing on 404", () => {
        const config = renderHaproxyConfig({ ...loopbackInput, assets: { paths: ["/app/assets/"], map: "/tmp/edge/assets.map" } });
        const frontend = section(config, "frontend medusa_edge");
        const lookup = frontend.indexOf("http-request set-var(txn.asset_colour) path,map(/tmp/edge/assets.map) if { path_beg /app/assets/ }");
        const route = frontend.indexOf("use_backend medusa_assets if { var(txn.asset_colour) -m found }");
        assert.ok(lookup !== -1 && route > lookup, `lookup, then route:\n${frontend.join("\n")}`);
        assert.ok(route < frontend.indexOf(`default_backend ${EDGE_BACKEND_NAME}`));
        const backend = section(config, "backend medusa_assets");
        for (const colour of ["blue", "green"]) assert.ok(backend.includes(`use-server ${colour} if { var(txn.asset_colour) -m str ${colour} }`));
        assert.ok(!/retry-on.*404/.test(config), "Medusa answers a missing asset with 200 HTML: a 404 retry would never fire");
        assert.ok(!renderHaproxyConfig(loopbackInput).includes("medusa_assets"), "no asset routing unless asked");
    });

    describe("rejects input HAProxy would refuse or misread, naming the field", () => {
        const cases: [string, Partial<EdgeConfigInput>, RegExp][] = [
            ["port 0", { bindPort: 0 }, /bindPort 0 is invalid/],
            ["port out of range", { bindPort: 70000 }, /bindPort/],
            ["bind address with a newline", { bindAddress: "0.0.0.0\nbackend x" }, /bindAddress/],
            ["server without port", { servers: { blue: { address: "127.0.0.2" }, green: { address: "127.0.0.3:1" } } }, /servers\.blue\.address/],
            ["server with spaces", { servers: { blue: { address: "127.0.0.2:1 backup" }, green: { address: "127.0.0.3:1" } } }, /servers\.blue\.address/],
            ["a name without a resolver", { servers: { blue: { address: "blue-server:9000" }, green: { address: "127.0.0.3:1" } } }, /when no resolver is configured/],
            ["socket path with a space", { adminSocketPath: "/tmp/a b.sock" }, /adminSocketPath/],
            ["relative state file", { stateFilePath: "state" }, /stateFilePath/],
            ["bad timeout", { timeouts: { server: "5 minutes" } }, /timeouts\.server/],
            ["unknown timeout", { timeouts: { nap: "1s" } as unknown as EdgeConfigInput["timeouts"] }, /timeouts\.nap/],
            ["maxconn 0", { maxconn: 0 }, /maxconn/],
            ["bad trusted proxy", { trustedProxies: ["10.0.0.0/33"] }, /trustedProxies/],
            ["health path with a space", { healthPath: "/health now" }, /healthPath/],
            ["asset routing without paths", { assets: { paths: [], map: "/tmp/edge/assets.map" } }, /assets\.paths/],
            ["an asset path without its trailing slash", { assets: { paths: ["/app/assets"], map: "/tmp/edge/assets.map" } }, /assets\.paths\[\]/],
            ["a relative asset map", { assets: { paths: ["/app/assets/"], map: "assets.map" } }, /assets\.map/],
        ];
        for (const [name, change, message] of cases) {
            it(name, () => assert.throws(() => renderHaproxyConfig({ ...loopbackInput, ...change }), message));
        }
        it("a resolver nameserver that is not IP:port", () => {
            assert.throws(() => renderHaproxyConfig({ ...dockerInput, resolver: { nameserver: "dns.local:53" } }), /resolver\.nameserver/);
        });
    });
});
