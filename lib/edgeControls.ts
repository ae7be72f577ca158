// The edge's runtime controls: maintenance mode (every request answered by a 503 page, or held for a
// bounded time), an operator-only preview of a chosen colour, and the files they need. All of it is
// switched through HAProxy's runtime API (`set map`), never by reload: haproxy.cfg only names the
// files. Pure: texts and names, no I/O.
import { createHash } from "node:crypto";

/** Cookie an operator sends to reach the preview colour; its value is the host's preview token. */
export const PREVIEW_COOKIE = "medusa_preview";
/** Map files in the edge's config folder, created empty by install-edge-config.sh, changed at runtime. */
export const MAINTENANCE_MAP_NAME = "maintenance.map";
export const PREVIEW_MAP_NAME = "preview.map";
/** Maintenance modes: `page` answers 503 at once, `hold` keeps requests until `off` or the bound. */
export const MAINTENANCE_MODES = ["off", "page", "hold"] as const;
export type MaintenanceMode = (typeof MAINTENANCE_MODES)[number];
/** Seconds a held request may wait. Above a couple of minutes clients and proxies give up anyway. */
export const MAX_HOLD_SECONDS = 120;
export const DEFAULT_HOLD_SECONDS = 30;
/** Retry-After of the maintenance answers: a client (or crawler) comes back soon. */
export const MAINTENANCE_RETRY_AFTER_SECONDS = 30;
/**
 * An `http-request return` body must fit in one HAProxy buffer (16 KiB by default) together with the
 * response headers.
 */
export const MAX_MAINTENANCE_PAGE_BYTES = 12 * 1024;
/**
 * The Medusa admin's content-hashed Vite chunks: served under `urlPrefix` from `folder` of the server
 * image (docker/medusa.Dockerfile puts `medusa build`'s .medusa/server at /server). Medusa answers a
 * file it does not have with its admin page (200 text/html), so the edge cannot learn from an answer
 * that a colour lacks a chunk: host/edge-assets.sh lists each colour's files at every switch and
 * writes the ones only the other colour has into the asset map, which the edge routes by.
 */
export const ADMIN_ASSETS = { urlPrefix: "/app/assets/", folder: "/server/public/admin/assets" } as const;
/** The asset map in the edge's config folder: `<path> <colour>` lines, replaced whole at each switch. */
export const ASSETS_MAP_NAME = "assets.map";

export const DEFAULT_MAINTENANCE_PAGE = [
    "<!doctype html>",
    '<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">',
    "<title>Back in a moment</title>",
    "<style>body{font-family:system-ui,sans-serif;margin:0;display:grid;place-items:center;min-height:100vh;color:#222}</style>",
    "</head><body><main><h1>Back in a moment</h1><p>We are updating the shop. Please try again in a minute.</p></main></body></html>",
    "",
].join("\n");

/** A file the edge reads, named by its content so a new version never changes what a running config uses. */
export interface EdgeSideFile {
    name: string;
    content: string;
}

export interface EdgeControlFiles {
    /** Paths as the edge process sees them, for haproxy.cfg. */
    maintenanceMap: string;
    previewMap: string;
    holdLua: string;
    maintenancePage: string;
    /** The content-named files install-edge-config.sh writes next to haproxy.cfg. */
    sideFiles: EdgeSideFile[];
}

function contentNamed(stem: string, extension: string, content: string): EdgeSideFile {
    const hash = createHash("sha256").update(content).digest("hex").slice(0, 12);
    return { name: `${stem}-${hash}.${extension}`, content };
}

/** Side-file names install-edge-config.sh accepts (it refuses any other). */
export const SIDE_FILE_NAME = /^[a-z]+(-[a-z]+)*-[0-9a-f]{12}\.(lua|html)$/;

/**
 * The Lua action that holds a request while the maintenance map says `mode hold`, sleeping in short
 * steps and reading the map each time, so `off` releases every held request within 100 ms. It reads
 * the bound from the same map (`hold <seconds>`); a request still held at the bound gets
 * txn.hold_expired, and haproxy.cfg answers it 503 with Retry-After.
 */
export function renderHoldLua(maintenanceMapPath: string): string {
    if (!/^\/[A-Za-z0-9_.\/-]+$/.test(maintenanceMapPath)) throw new Error(`internal: unsafe map path ${maintenanceMapPath}`);
    return [
        "-- Rendered by lib/edgeControls.ts: holds requests during maintenance (host/edge-maintenance.sh).",
        `local state = Map.new("${maintenanceMapPath}", Map._str)`,
        'core.register_action("medusa_hold", { "http-req" }, function(txn)',
        "    local started = core.now()",
        `    local bound = tonumber(state:lookup("hold") or "") or ${DEFAULT_HOLD_SECONDS}`,
        `    if bound > ${MAX_HOLD_SECONDS} then bound = ${MAX_HOLD_SECONDS} end`,
        '    while state:lookup("mode") == "hold" do',
        "        local now = core.now()",
        "        if (now.sec - started.sec) + (now.usec - started.usec) / 1000000 >= bound then",
        '            txn:set_var("txn.hold_expired", true)',
        "            return",
        "        end",
        "        core.msleep(100)",
        "    end",
        "end)",
        "",
    ].join("\n");
}

/** Throws, naming the setting, for a page HAProxy could not answer with. */
export function checkMaintenancePage(setting: string, page: string): void {
    const bytes = Buffer.byteLength(page);
    if (bytes === 0) throw new Error(`${setting}: the maintenance page is empty; give an HTML file, or leave the setting out for the built-in page`);
    if (bytes > MAX_MAINTENANCE_PAGE_BYTES) {
        throw new Error(`${setting}: the maintenance page is ${bytes} bytes; at most ${MAX_MAINTENANCE_PAGE_BYTES} fit in one edge response (inline CSS, link images)`);
    }
}

/** The control files for an edge whose config folder the edge sees at `edgeConfigDir`. */
export function edgeControlFiles(edgeConfigDir: string, maintenancePage: string = DEFAULT_MAINTENANCE_PAGE): EdgeControlFiles {
    checkMaintenancePage("maintenancePage", maintenancePage);
    const at = (name: string) => `${edgeConfigDir.replace(/\/$/, "")}/${name}`;
    const maintenanceMap = at(MAINTENANCE_MAP_NAME);
    const lua = contentNamed("maintenance-hold", "lua", renderHoldLua(maintenanceMap));
    const page = contentNamed("maintenance-page", "html", maintenancePage);
    return {
        maintenanceMap,
        previewMap: at(PREVIEW_MAP_NAME),
        holdLua: at(lua.name),
        maintenancePage: at(page.name),
        sideFiles: [lua, page],
    };
}

/** The environment install-edge-config.sh reads the side files from (EDGE_SIDE_FILES + one variable each). */
export function sideFilesEnv(files: EdgeSideFile[]): Record<string, string> {
    const env: Record<string, string> = { EDGE_SIDE_FILES: files.map((f) => f.name).join(" ") };
    files.forEach((file, index) => {
        if (!SIDE_FILE_NAME.test(file.name)) throw new Error(`internal: side file name ${file.name}`);
        env[`EDGE_SIDE_FILE_${index + 1}`] = file.content;
    });
    return env;
}

/** Parses a `show map` dump of the maintenance map into the mode and the hold bound. */
export function parseMaintenanceMap(dump: string): { mode: MaintenanceMode; holdSeconds: number } {
    const entries = new Map<string, string>();
    for (const line of dump.split("\n")) {
        // `show map` prints "<ref> <key> <value>"; the map file itself "<key> <value>".
        const fields = line.trim().split(/\s+/);
        if (fields.length === 3 && fields[0].startsWith("0x")) entries.set(fields[1], fields[2]);
        else if (fields.length === 2 && !fields[0].startsWith("#")) entries.set(fields[0], fields[1]);
    }
    const mode = entries.get("mode") ?? "off";
    const hold = Number(entries.get("hold") ?? DEFAULT_HOLD_SECONDS);
    return { mode: (MAINTENANCE_MODES as readonly string[]).includes(mode) ? (mode as MaintenanceMode) : "off", holdSeconds: Number.isFinite(hold) ? hold : DEFAULT_HOLD_SECONDS };
}
