// Renders the edge's haproxy.cfg. The edge is created once and never replaced by a deploy, so this
// text must not depend on which colour is live: the live colour is runtime state, moved through the
// admin socket by host/traffic-switch.sh and persisted in the server-state file this config loads
// at start. Pure function, no I/O.

import { Colour, COLOURS } from "./colour";
import { MAINTENANCE_RETRY_AFTER_SECONDS, PREVIEW_COOKIE } from "./edgeControls";

/** Backend that holds one server per colour; the switch script addresses `<backend>/<colour>`. */
export const EDGE_BACKEND_NAME = "medusa";
/**
 * Backend for the content-hashed asset files only the previous release has: the asset map names the
 * colour for each (host/edge-assets.sh). Nothing else is ever sent to the idle colour.
 */
export const EDGE_ASSETS_BACKEND_NAME = "medusa_assets";
/** Frontend name, for logs and `show stat`. */
export const EDGE_FRONTEND_NAME = "medusa_edge";
/**
 * Response header naming the server (= colour) that answered. Set only on the operator frontend
 * (the switch verifies with it); the public frontend removes it, so visitors cannot map colours.
 */
export const COLOUR_HEADER = "X-Medusa-Colour";
/** Frontend bound on a UNIX socket on the host only: the switch's verification and operators. */
export const EDGE_OPERATOR_FRONTEND_NAME = "medusa_operator";
/** App paths that describe the deployment (release, colour): answered to operators only. */
export const OPERATOR_ONLY_PATHS = ["/deploy-info"];
// They go into a regular expression in haproxy.cfg unescaped.
if (!OPERATOR_ONLY_PATHS.every((p) => /^\/[a-z-]+$/.test(p))) throw new Error("internal: operator-only paths must be /lowercase-words");
/**
 * Request headers by which a client could claim another address, host or scheme. The public
 * frontend removes them all and sets the X-Forwarded-* headers itself.
 */
export const CLIENT_FORWARDING_HEADERS = [
    "Forwarded",
    "X-Forwarded-For",
    "X-Forwarded-Host",
    "X-Forwarded-Proto",
    "X-Forwarded-Port",
    "X-Forwarded-Server",
    "X-Forwarded-Prefix",
    "X-Real-IP",
    "X-Client-IP",
    "True-Client-IP",
    "X-Original-Forwarded-For",
];
/** Path answered by the edge itself (not forwarded), for the edge container's own health check. */
export const EDGE_SELF_HEALTH_PATH = "/__edge/health";
/** Name of the resolvers section used when a nameserver is given (Docker's embedded DNS). */
export const EDGE_RESOLVERS_NAME = "docker";

/** HAProxy time values: a number with an optional unit (ms, s, m, h, d); a bare number is ms. */
export type HaproxyDuration = string;

export interface EdgeTimeouts {
    /** TCP connect to a colour's server. @default "5s" */
    connect: HaproxyDuration;
    /** Client inactivity, also bounds slow uploads between packets. @default "5m" */
    client: HaproxyDuration;
    /** Server inactivity: Medusa admin imports/exports can think for minutes. @default "5m" */
    server: HaproxyDuration;
    /** Whole request headers must arrive within this (slowloris guard). @default "10s" */
    httpRequest: HaproxyDuration;
    /** Idle client keep-alive before the edge closes it. @default "60s" */
    httpKeepAlive: HaproxyDuration;
    /** Wait for a free server slot when maxconn is reached. @default "30s" */
    queue: HaproxyDuration;
    /** Upgraded connections (WebSocket, server-sent events). @default "1h" */
    tunnel: HaproxyDuration;
}

export const DEFAULT_EDGE_TIMEOUTS: EdgeTimeouts = {
    connect: "5s",
    client: "5m",
    server: "5m",
    httpRequest: "10s",
    httpKeepAlive: "60s",
    queue: "30s",
    tunnel: "1h",
};

/** Per-client (source address) limits of the public frontend. */
export interface EdgeClientLimits {
    /** Open connections one client address may hold; more are refused at connect. @default 200 */
    connections: number;
    /** Requests one client address may send in 10 seconds; more are answered 429. @default 5000 */
    requestsPer10s: number;
}

/**
 * Defaults far above what a shop's visitors send: the switch benchmark's load (8 keep-alive
 * clients from one address, about 250 requests per second) stays well below them.
 */
export const DEFAULT_EDGE_CLIENT_LIMITS: EdgeClientLimits = { connections: 200, requestsPer10s: 5000 };

export interface EdgeServer {
    /**
     * `host:port` of the colour's Medusa server: a Docker container name on the private network
     * (resolved at runtime, may not exist yet) or an IPv4 address.
     * @example "medusa-prod-blue-server:9000"
     */
    address: string;
}

/** The edge's runtime controls (lib/edgeControls.ts): paths as the edge process sees them. */
export interface EdgeControlPaths {
    /** `mode off|page|hold` and `hold <seconds>`, changed at runtime by host/edge-maintenance.sh. */
    maintenanceMap: string;
    /** sha256 of the preview token -> colour, changed at runtime by host/edge-preview.sh. */
    previewMap: string;
    /** The Lua action that holds requests in hold mode. */
    holdLua: string;
    /** The HTML answered with 503 in page mode and when a hold hits its bound. */
    maintenancePage: string;
}

export interface EdgeConfigInput {
    /** Address the edge listens on. @example "0.0.0.0" */
    bindAddress: string;
    /** Port the edge listens on. @example 8080 */
    bindPort: number;
    servers: Record<Colour, EdgeServer>;
    /** Admin UNIX socket path as the edge process sees it (inside the container in Docker). */
    adminSocketPath: string;
    /**
     * UNIX socket of the operator frontend, as the edge process sees it: the same backend, plus the
     * colour header and the operator-only paths. Nothing on the network reaches it.
     */
    operatorSocketPath: string;
    /** Server-state file path as the edge process sees it; the switch script writes it. */
    stateFilePath: string;
    /**
     * DNS used to re-resolve server names at runtime (a replaced container gets a new IP).
     * Docker's embedded DNS is "127.0.0.11:53". Omit when servers are IP addresses.
     */
    resolver?: { nameserver: string };
    /** Colour health check path; a 200 means the server takes traffic. @default "/health" */
    healthPath?: string;
    timeouts?: Partial<EdgeTimeouts>;
    /** Global connection limit of the edge. @default 4096 */
    maxconn?: number;
    /**
     * Sources (IPs or CIDRs) allowed to set X-Forwarded-Proto, e.g. a TLS-terminating nginx in
     * front. From anyone else the header is replaced with "http". @default []
     */
    trustedProxies?: string[];
    /** Log to stdout (the container log) with one line per request. @default false */
    logToStdout?: boolean;
    /** Per-client connection and request-rate limits of the public frontend. */
    clientLimits?: Partial<EdgeClientLimits>;
    /** Maintenance mode and the operator preview; omitted, the edge has neither. */
    controls?: EdgeControlPaths;
    /**
     * Content-hashed assets: a request under one of `paths` (prefixes ending in '/') whose path is a
     * key of the map file `map` goes to the colour the map names; host/edge-assets.sh fills it in.
     * Omitted, every request goes to the live colour.
     */
    assets?: EdgeAssetRouting;
}

export interface EdgeAssetRouting {
    paths: string[];
    /** The map file as the edge sees it: `<path> <colour>` lines. */
    map: string;
}

const DURATION = /^[0-9]+(us|ms|s|m|h|d)?$/;
const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$/;
const IPV4 = /^(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])){3}$/;
const CIDR = /^(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])){3}(\/([0-9]|[12][0-9]|3[0-2]))?$/;
// Paths end up in haproxy.cfg unquoted: anything that could split or comment a line is refused.
const SAFE_PATH = /^\/[A-Za-z0-9_.\/-]*$/;

function fail(field: string, value: unknown, expected: string): never {
    throw new Error(`edge config: ${field} ${JSON.stringify(value)} is invalid: expected ${expected}`);
}

function checkPort(field: string, port: number): void {
    if (!Number.isInteger(port) || port < 1 || port > 65535) fail(field, port, "an integer port 1-65535");
}

function checkHostPort(field: string, address: string): void {
    const separator = address.lastIndexOf(":");
    const host = address.slice(0, separator);
    const port = Number(address.slice(separator + 1));
    if (separator <= 0 || !/^[0-9]+$/.test(address.slice(separator + 1))) {
        fail(field, address, "host:port, e.g. medusa-prod-blue-server:9000 or 10.0.0.5:9000");
    }
    if (!IPV4.test(host) && !HOSTNAME.test(host)) fail(field, address, "an IPv4 address or a DNS name before ':'");
    checkPort(field, port);
}

function checkPath(field: string, value: string): void {
    if (!SAFE_PATH.test(value)) fail(field, value, "an absolute path of letters, digits, '_', '.', '-', '/'");
}

function isIpAddress(address: string): boolean {
    return IPV4.test(address.slice(0, address.lastIndexOf(":")));
}

/** Throws a message naming the field for every input HAProxy would reject or misread. */
export function validateEdgeConfigInput(input: EdgeConfigInput): void {
    if (!IPV4.test(input.bindAddress)) fail("bindAddress", input.bindAddress, "an IPv4 address such as 0.0.0.0");
    checkPort("bindPort", input.bindPort);
    for (const colour of COLOURS) {
        const server = input.servers?.[colour];
        if (server === undefined) fail(`servers.${colour}`, server, "{ address: 'host:port' }");
        checkHostPort(`servers.${colour}.address`, server.address);
    }
    checkPath("adminSocketPath", input.adminSocketPath);
    checkPath("operatorSocketPath", input.operatorSocketPath);
    checkPath("stateFilePath", input.stateFilePath);
    for (const [name, value] of Object.entries(input.clientLimits ?? {})) {
        if (!(name in DEFAULT_EDGE_CLIENT_LIMITS)) fail(`clientLimits.${name}`, value, `one of ${Object.keys(DEFAULT_EDGE_CLIENT_LIMITS).join(", ")}`);
        if (!Number.isInteger(value) || (value as number) < 1) fail(`clientLimits.${name}`, value, "a whole number, at least 1");
    }
    if (input.resolver !== undefined) {
        const ns = input.resolver.nameserver;
        if (!IPV4.test(ns.slice(0, ns.lastIndexOf(":")))) fail("resolver.nameserver", ns, "IPv4:port, e.g. 127.0.0.11:53");
        checkHostPort("resolver.nameserver", ns);
    } else {
        for (const colour of COLOURS) {
            const address = input.servers[colour].address;
            if (!isIpAddress(address)) {
                fail(`servers.${colour}.address`, address, "an IP address when no resolver is configured (names are re-resolved only through a resolver)");
            }
        }
    }
    if (input.healthPath !== undefined && !/^\/[A-Za-z0-9_.\/?=&-]*$/.test(input.healthPath)) {
        fail("healthPath", input.healthPath, "a path starting with '/' without spaces");
    }
    for (const [name, value] of Object.entries(input.timeouts ?? {})) {
        if (!(name in DEFAULT_EDGE_TIMEOUTS)) fail(`timeouts.${name}`, value, `one of ${Object.keys(DEFAULT_EDGE_TIMEOUTS).join(", ")}`);
        if (typeof value !== "string" || !DURATION.test(value)) fail(`timeouts.${name}`, value, "a duration such as 500ms, 5s, 5m");
    }
    if (input.maxconn !== undefined && (!Number.isInteger(input.maxconn) || input.maxconn < 1)) {
        fail("maxconn", input.maxconn, "a positive integer");
    }
    if (input.controls) {
        for (const name of ["maintenanceMap", "previewMap", "holdLua", "maintenancePage"] as const) checkPath(`controls.${name}`, input.controls[name]);
    }
    if (input.assets) {
        if (input.assets.paths.length === 0) fail("assets.paths", input.assets.paths, "at least one path prefix");
        for (const prefix of input.assets.paths) {
            if (!/^\/[A-Za-z0-9_.\/-]*\/$/.test(prefix)) fail("assets.paths[]", prefix, "a path prefix starting and ending with '/', e.g. /app/assets/");
        }
        checkPath("assets.map", input.assets.map);
    }
    for (const source of input.trustedProxies ?? []) {
        if (!CIDR.test(source)) fail("trustedProxies[]", source, "an IPv4 address or CIDR such as 10.0.0.0/8");
    }
}

function serverLine(colour: Colour, address: string, resolving: boolean): string {
    // init-addr libc,last,none: resolve the name now (a replaced container has a new IP, and its old IP
    // may belong to another container by then), else the address persisted in the state file, else
    // start anyway with the server in maintenance: the idle colour may not exist yet. The resolvers
    // then keep following the name at runtime.
    const resolution = resolving ? ` resolvers ${EDGE_RESOLVERS_NAME} resolve-prefer ipv4` : "";
    return `    server ${colour} ${address} check inter 1s fall 2 rise 2${resolution} init-addr libc,last,none`;
}

export function renderHaproxyConfig(input: EdgeConfigInput): string {
    validateEdgeConfigInput(input);
    const t: EdgeTimeouts = { ...DEFAULT_EDGE_TIMEOUTS, ...(input.timeouts ?? {}) };
    const maxconn = input.maxconn ?? 4096;
    const healthPath = input.healthPath ?? "/health";
    const resolving = input.resolver !== undefined;
    const trusted = input.trustedProxies ?? [];
    const limits: EdgeClientLimits = { ...DEFAULT_EDGE_CLIENT_LIMITS, ...(input.clientLimits ?? {}) };
    const lines: string[] = [];
    const add = (...more: string[]): void => {
        lines.push(...more);
    };

    add(
        "# Rendered by lib/haproxyConfig.ts. Do not edit by hand and do not put the live colour here:",
        "# it is moved at runtime by host/traffic-switch.sh and persisted in the server-state file.",
        "global",
        `    maxconn ${maxconn}`,
        // expose-fd listeners lets a future seamless reload take the listening sockets over.
        // Created by the (non-root) edge process as itself; root-run host scripts only connect to it.
        `    stats socket ${input.adminSocketPath} mode 600 level admin expose-fd listeners`,
        "    stats timeout 30s",
        `    server-state-file ${input.stateFilePath}`,
    );
    if (input.logToStdout) add("    log stdout format raw local0 info");
    if (input.controls) add(`    lua-load ${input.controls.holdLua}`);
    add("");

    if (input.resolver !== undefined) {
        add(
            `resolvers ${EDGE_RESOLVERS_NAME}`,
            `    nameserver dns1 ${input.resolver.nameserver}`,
            "    resolve_retries 3",
            "    timeout resolve 1s",
            "    timeout retry 1s",
            // A removed container (NXDOMAIN) keeps its last address only briefly; a replaced one is
            // picked up within about a second of its name resolving to the new IP.
            "    hold valid 10s",
            "    hold nx 5s",
            "    hold obsolete 5s",
            "    hold other 5s",
            "    hold refused 5s",
            "    hold timeout 5s",
            "    accepted_payload_size 8192",
            "",
        );
    }

    add(
        "defaults",
        "    mode http",
        // Restart comes back with each server's admin state (ready/drain) and address as persisted.
        "    load-server-state-from-file global",
        "    option forwardfor",
        "    option http-keep-alive",
        "    option redispatch 1",
        // A request that never reached the app (refused connect, closed idle connection) is retried.
        "    retries 3",
        "    retry-on conn-failure empty-response",
        `    timeout connect ${t.connect}`,
        `    timeout client ${t.client}`,
        `    timeout server ${t.server}`,
        `    timeout http-request ${t.httpRequest}`,
        `    timeout http-keep-alive ${t.httpKeepAlive}`,
        `    timeout queue ${t.queue}`,
        `    timeout tunnel ${t.tunnel}`,
    );
    if (input.logToStdout) add("    log global", "    option httplog", "    option dontlog-normal");
    add("");

    add(`frontend ${EDGE_FRONTEND_NAME}`, `    bind ${input.bindAddress}:${input.bindPort}`);
    // Per-client limits: one table keyed by source address counts open connections and requests.
    add(
        `    stick-table type ipv6 size 100k expire 60s store conn_cur,http_req_rate(10s)`,
        "    tcp-request connection track-sc0 src",
        `    tcp-request connection reject if { sc_conn_cur(0) gt ${limits.connections} }`,
    );
    // The edge's own liveness, answered without touching a colour.
    add(`    http-request return status 200 content-type text/plain string ok if { path ${EDGE_SELF_HEALTH_PATH} }`);
    add(
        `    http-request deny deny_status 429 if { sc_http_req_rate(0) gt ${limits.requestsPer10s} }`,
        // The body of a small request (up to one buffer) must arrive within timeout http-request,
        // like its headers: a client trickling a body cannot hold a server slot for minutes.
        "    option http-buffer-request",
    );
    // Operator-only paths, however they are spelled (case, extra slashes, percent-encoding).
    const operatorOnly = OPERATOR_ONLY_PATHS.map((p) => p.slice(1)).join("|");
    add(`    http-request deny deny_status 404 if { path,url_dec,lower -m reg ^/+(${operatorOnly})(/.*)?$ }`);
    if (trusted.length > 0) add(`    acl from_trusted_proxy src ${trusted.join(" ")}`);
    // A client's claims about its address, host or scheme never reach the app; a trusted proxy's
    // X-Forwarded-For/-Proto/-Host do (it sets them itself).
    const keptFromProxy = new Set(["X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host"]);
    for (const header of CLIENT_FORWARDING_HEADERS) {
        add(`    http-request del-header ${header}${trusted.length > 0 && keptFromProxy.has(header) ? " if !from_trusted_proxy" : ""}`);
    }
    const unlessProxied = (header: string) => (trusted.length > 0 ? ` if !from_trusted_proxy || !{ req.hdr(${header.toLowerCase()}) -m found }` : "");
    // X-Forwarded-For is added by option forwardfor, after these rules.
    add(
        `    http-request set-header X-Forwarded-Proto http${unlessProxied("X-Forwarded-Proto")}`,
        `    http-request set-header X-Forwarded-Host %[req.hdr(host)]${unlessProxied("X-Forwarded-Host")}`,
    );
    const controls = input.controls;
    if (controls) add(...controlRules(controls));
    const assets = input.assets;
    if (assets) {
        // Exact path lookups only: a path the map does not hold (the live colour's own files, the
        // admin page, anything else) gets no variable and goes to the live colour.
        add(
            `    http-request set-var(txn.asset_colour) path,map(${assets.map}) if { path_beg ${assets.paths.join(" ")} }`,
            `    use_backend ${EDGE_ASSETS_BACKEND_NAME} if { var(txn.asset_colour) -m found }`,
        );
    }
    add(
        // An operator previewing a colour sees which one answered; nobody else does.
        `    http-response del-header ${COLOUR_HEADER}`,
        ...(controls ? [`    http-response set-header ${COLOUR_HEADER} %[srv_name] if operator_preview`] : []),
        `    default_backend ${EDGE_BACKEND_NAME}`,
        "",
    );

    // Only the host's root (or the deploy user) can open this socket: no limits, and it says which
    // colour answered.
    add(
        `frontend ${EDGE_OPERATOR_FRONTEND_NAME}`,
        `    bind ${input.operatorSocketPath} mode 600`,
        "    http-request set-header X-Forwarded-Proto http",
        `    http-response set-header ${COLOUR_HEADER} %[srv_name]`,
        `    default_backend ${EDGE_BACKEND_NAME}`,
        "",
    );

    const previewRoutes = controls ? COLOURS.map((colour) => `    use-server ${colour} if { var(txn.preview) -m str ${colour} }`) : [];
    const servers = COLOURS.map((colour) => serverLine(colour, input.servers[colour].address, resolving));
    add(
        `backend ${EDGE_BACKEND_NAME}`,
        "    balance roundrobin",
        `    option httpchk GET ${healthPath}`,
        "    http-check expect status 200",
        ...previewRoutes,
        ...servers,
        "",
    );
    if (assets) {
        // The colour the map named, whatever the switch says (it drains only the main backend). If
        // that colour is down the rule does not apply and a healthy one answers, as it would anyway.
        add(
            `backend ${EDGE_ASSETS_BACKEND_NAME}`,
            "    balance roundrobin",
            `    option httpchk GET ${healthPath}`,
            "    http-check expect status 200",
            ...COLOURS.map((colour) => `    use-server ${colour} if { var(txn.asset_colour) -m str ${colour} }`),
            ...servers,
            "",
        );
    }
    return lines.join("\n");
}

/**
 * Maintenance and preview rules of the public frontend. The mode is read from a map on every request,
 * so host/edge-maintenance.sh turns it on and off through the runtime API; a request that got past
 * these rules before that is served as usual. A valid preview cookie is exempt from maintenance.
 */
function controlRules(controls: EdgeControlPaths): string[] {
    const page = `status 503 content-type "text/html; charset=utf-8" hdr Retry-After ${MAINTENANCE_RETRY_AFTER_SECONDS} hdr Cache-Control no-store file ${controls.maintenancePage}`;
    return [
        // Only the token's hash is on the edge; the cookie must be a 64-hex-digit token to be looked up.
        `    http-request set-var(txn.preview) req.cook(${PREVIEW_COOKIE}),sha2(256),hex,lower,map(${controls.previewMap}) if { req.cook(${PREVIEW_COOKIE}) -m reg ^[0-9a-f]{64}$ }`,
        "    acl operator_preview var(txn.preview) -m found",
        `    http-request set-var(txn.maintenance) str(mode),map(${controls.maintenanceMap},off)`,
        `    http-request return ${page} if { var(txn.maintenance) -m str page } !operator_preview`,
        "    http-request lua.medusa_hold if { var(txn.maintenance) -m str hold } !operator_preview",
        `    http-request return ${page} if { var(txn.hold_expired) -m bool }`,
    ];
}
