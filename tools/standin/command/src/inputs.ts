// The inputs of command:local:Command and command:remote:Command as @pulumi/command 1.2.1 sends
// them, checked the way the real provider's Check does (types, the connection's defaults, the
// connection marked secret), plus a clear failure for each input this stand-in does not implement.
import type { CheckFailure } from "@pulumi/pulumi/provider";
import { loggingValues } from "./run";
import { isSecret, isUnknown, makeSecret, present, Props, reveal } from "./values";

export type Kind = "local" | "remote";

const common = ["create", "update", "delete", "triggers", "stdin", "logging", "environment", "addPreviousOutputInEnv"];
/** Input names per resource: what the diff compares and what Read hands back as inputs. */
export const inputNames: Record<Kind, string[]> = {
    local: [...common, "dir", "interpreter", "assetPaths", "archivePaths"],
    remote: [...common, "connection"],
};

const unsupported: Record<Kind, Record<string, string>> = {
    local: {
        interpreter: "it always runs `/bin/sh -c <command>`",
        assetPaths: "it returns no assets",
        archivePaths: "it returns no archive",
    },
    remote: {},
};

const connectionSupported = ["host", "port", "user", "privateKey", "hostKey", "dialErrorLimit", "perDialTimeout"];
const connectionUnsupported: Record<string, string> = {
    password: "it authenticates with privateKey only",
    privateKeyPassword: "it needs an unencrypted privateKey",
    agentSocketPath: "it does not use an ssh agent",
    proxy: "it connects directly, without a bastion",
};
/** The real provider's schema defaults for a connection. */
const connectionDefaults: Props = { user: "root", port: 22, dialErrorLimit: 10, perDialTimeout: 15 };

export const STANDIN = "the medusa-deploy stand-in for pulumi-resource-command (tools/standin/command/README.md)";

const notSupported = (path: string, why: string) => `${path} is not supported by ${STANDIN}: ${why}`;

/** Host key text as ssh prints it: "<type> <base64> [comment]". */
export function parseHostKey(text: string): { type: string; key: string } | undefined {
    const match = /^\s*([a-z0-9@.-]+)\s+([A-Za-z0-9+/]+={0,3})(\s.*)?$/s.exec(text);
    return match ? { type: match[1], key: match[2] } : undefined;
}

export function checkInputs(kind: Kind, news: Props): { inputs: Props; failures: CheckFailure[] } {
    const failures: CheckFailure[] = [];
    const fail = (property: string, reason: string) => failures.push({ property, reason });
    const known = new Set(inputNames[kind]);
    const inputs: Props = {};
    for (const [key, value] of Object.entries(news)) {
        if (value === undefined || value === null) continue;
        if (!known.has(key)) {
            fail(key, `command:${kind}:Command has no input named ${key} (in @pulumi/command 1.2.1)`);
            continue;
        }
        if (unsupported[kind][key]) {
            fail(key, notSupported(key, unsupported[kind][key]));
            continue;
        }
        inputs[key] = value;
    }

    const check = (key: string, ok: (v: unknown) => boolean, what: string) => {
        const value = reveal(inputs[key]);
        if (present(inputs, key) && !isUnknown(value) && !ok(value)) fail(key, `${key} must be ${what}`);
    };
    for (const key of ["create", "update", "delete", "stdin", "dir"]) check(key, (v) => typeof v === "string", "a string");
    check("logging", (v) => loggingValues.includes(v as never), `one of ${loggingValues.join(", ")}`);
    check("triggers", Array.isArray, "a list");
    check("addPreviousOutputInEnv", (v) => typeof v === "boolean", "true or false");
    check(
        "environment",
        (v) =>
            typeof v === "object" &&
            v !== null &&
            !Array.isArray(v) &&
            Object.entries(v).every(([name, value]) => (typeof value === "string" || isUnknown(value)) && (kind === "local" || /^[^=\s"]+$/.test(name))),
        kind === "local" ? "a map of strings" : "a map of strings whose names have no '=', '\"' or whitespace",
    );

    if (kind === "remote") {
        if (!present(inputs, "connection")) fail("connection", "connection is required");
        else inputs.connection = checkConnection(inputs.connection, fail);
    }
    return { inputs, failures };
}

function checkConnection(value: unknown, fail: (property: string, reason: string) => void): unknown {
    const outer = reveal(value);
    if (isUnknown(outer)) return makeSecret(value);
    if (typeof outer !== "object" || outer === null || Array.isArray(outer)) {
        fail("connection", "connection must be an object");
        return value;
    }
    // Keep the inner values as sent (secret or not); the whole connection becomes secret, as in the
    // real provider (its connection input is declared secret).
    const connection = { ...((isSecret(value) ? value.value : value) as Props) };
    const fields = reveal(connection) as Props;
    for (const key of Object.keys(connection)) {
        if (!present(connection, key)) {
            delete connection[key];
            continue;
        }
        if (connectionUnsupported[key]) fail("", notSupported(`connection.${key}`, connectionUnsupported[key]));
        else if (!connectionSupported.includes(key)) fail("", `connection has no field named ${key} (in @pulumi/command 1.2.1)`);
    }
    const known = (key: string) => present(fields, key) && !isUnknown(fields[key]);
    if (!present(fields, "host")) fail("", "connection.host is required");
    for (const key of ["host", "user", "privateKey", "hostKey"]) {
        if (known(key) && typeof fields[key] !== "string") fail("", `connection.${key} must be a string`);
    }
    if (known("host") && !/^[^\s@]+$/.test(String(fields.host))) fail("", "connection.host must be a host name or address (no spaces, no user@)");
    if (known("port") && !(Number.isInteger(fields.port) && (fields.port as number) > 0 && (fields.port as number) < 65536)) fail("", "connection.port must be a port number");
    if (known("dialErrorLimit") && !(Number.isInteger(fields.dialErrorLimit) && (fields.dialErrorLimit as number) >= -1)) fail("", "connection.dialErrorLimit must be an integer, -1 for unlimited");
    if (known("perDialTimeout") && !(Number.isInteger(fields.perDialTimeout) && (fields.perDialTimeout as number) >= 0)) fail("", "connection.perDialTimeout must be a number of seconds, 0 for none");
    if (known("hostKey") && typeof fields.hostKey === "string" && !parseHostKey(fields.hostKey)) {
        fail("", "connection.hostKey must be a public key as ssh prints it: '<type> <base64>', e.g. the content of /etc/ssh/ssh_host_ed25519_key.pub");
    }
    if (!present(fields, "privateKey")) fail("", notSupported("a connection without privateKey", "it authenticates with privateKey only (no password, no ssh agent)"));
    for (const [key, fallback] of Object.entries(connectionDefaults)) if (!present(connection, key)) connection[key] = fallback;
    return makeSecret(connection);
}
