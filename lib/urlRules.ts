// URLs and origins in the stack settings. A browser compares CORS origins as exact strings
// (scheme://host[:port], no path, no trailing slash), so an entry that is almost right silently
// blocks the storefront or the admin; these checks say which entry and why.

/** 127.0.0.0/8, or a name that always means this machine. */
export function isLoopbackHost(host: string): boolean {
    const h = host.replace(/^\[|\]$/g, "").toLowerCase();
    return h === "localhost" || h.endsWith(".localhost") || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

function parse(value: string): URL | undefined {
    try {
        return new URL(value);
    } catch {
        return undefined;
    }
}

/**
 * Why `value` is not an http(s) origin as a browser sends it in its Origin header, or undefined. One
 * trailing "/" is tolerated here (publicUrl drops it); CORS entries are stricter (corsProblems).
 */
export function originProblem(value: string): string | undefined {
    if (/\s/.test(value)) return "contains whitespace";
    const url = parse(value);
    if (!url || !/^https?:$/.test(url.protocol) || !/^https?:\/\/[^/]/i.test(value)) return "is not an http:// or https:// URL";
    if (url.username || url.password) return "carries a user or password, which must never be in a URL that is shown and logged";
    if (value.includes("?") || value.includes("#")) return "has a query or fragment: an origin is scheme://host[:port] only";
    const rest = value.replace(/^https?:\/\//i, "");
    const path = rest.includes("/") ? rest.slice(rest.indexOf("/")) : "";
    if (path !== "" && path !== "/") return `has a path ("${path}"): an origin is scheme://host[:port] only`;
    if (value.replace(/\/$/, "") !== url.origin) return `is not written as browsers send it: ${url.origin}`;
    return undefined;
}

export interface CorsProblem {
    entry: string;
    reason: string;
}

/**
 * Medusa splits STORE_CORS/ADMIN_CORS/AUTH_CORS on commas; each entry is an origin, or a regular
 * expression written /…/ (Medusa's parseCorsOrigins). An origin with a trailing slash or a path never
 * equals a browser's Origin header.
 */
export function corsProblems(value: string): CorsProblem[] {
    const problems: CorsProblem[] = [];
    for (const entry of value.split(",")) {
        if (entry === "") {
            problems.push({ entry, reason: "is empty (a doubled or trailing comma)" });
        } else if (entry !== entry.trim()) {
            problems.push({ entry, reason: "has spaces around it: Medusa does not trim entries, write them comma-separated without spaces" });
        } else if (entry === "*") {
            problems.push({ entry, reason: "is a wildcard, and browsers refuse one for requests with cookies (the admin and customer logins): list the origins" });
        } else if (entry.startsWith("/")) {
            const regex = /^\/(.+)\/([a-z]*)$/.exec(entry);
            let valid = regex !== null;
            if (regex) {
                try {
                    new RegExp(regex[1], regex[2]);
                } catch {
                    valid = false;
                }
            }
            if (!valid) problems.push({ entry, reason: "starts like a regular expression but is not a valid /pattern/flags" });
        } else if (entry.endsWith("/") && !originProblem(entry.replace(/\/+$/, ""))) {
            problems.push({ entry, reason: `ends with "/": browsers send the origin without it, write ${entry.replace(/\/+$/, "")}` });
        } else {
            const why = originProblem(entry);
            if (why) problems.push({ entry, reason: why });
        }
    }
    return problems;
}

/** The host of an http(s) URL, or undefined. */
export function hostOf(value: string): string | undefined {
    return parse(value)?.hostname;
}
